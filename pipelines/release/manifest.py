"""The documents that describe a release: ``manifest.json`` and a Frictionless ``datapackage.json``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from pipelines.contract import schemas
from pipelines.fold.tables import KEYS, LOG_ORDER
from pipelines.kafka.snapshot import Snapshot
from pipelines.release.parquet import StagedFile

# 2: file entries and document parts give their bucket ``key`` only; ``base_url`` + key is the URL (1 gave ``url``).
MANIFEST_FORMAT = "ballotstream.release/2"

_IN_LOG_ORDER = f"; rows in log order (by {', then '.join(LOG_ORDER)})."
TABLE_DESCRIPTIONS: dict[str, str] = {
    "events": "Every event in the snapshot, every version, once (one row per event_id), with the topic, "
              "partition and offset of its first delivery and how many times it was delivered" + _IN_LOG_ORDER,
    "noncurrent_events": "Each event of the events table that is no longer current (outdated, superseded or "
                         "retracted), with its log position; an event not listed is current" + _IN_LOG_ORDER,
    "corrections": "Each correction (supersede) or retraction, with its reason and both event ids" + _IN_LOG_ORDER,
    "elections": "Elections declared.",
    "divisions": "Divisions: country, regions, municipalities, constituencies and polling stations.",
    "parties": "Political parties.",
    "candidates": "Registered candidates, with party (null: independent), gender, age band and education.",
    "contests": "Contests (offices, party lists, ballot measures), incl. each election's default contest.",
    "contest_selections": "The choices on each contest's ballot: candidates, parties, options, write-ins.",
    "station_results": "Votes per polling station, contest and selection (current version of each tally).",
    "station_turnout": "Registered, cast, valid, invalid, over/under/blank votes, write-ins and turnout per "
                       "polling station and contest (null where not reported).",
    "contest_results": "Votes per contest and selection at each station, each division it composes into, and "
                       "overall, by vote method.",
    "contest_summary": "Per contest: stations reporting and expected, figures over known values, winners, margin.",
    "municipality_results": "Votes per municipality and candidate, summed from stations, with rank and seats.",
    "seats": "Council seats as allocated per municipality (one row per elected member).",
    "national_summary": "National figures computed from stations beside the figures as reported.",
    "observations": "Incident reports with their current verification status.",
    "observations_by_division": "Incidents and occurrences per division and category.",
    "news": "News articles about the election.",
    "news_mentions": "People, organisations, places and divisions each article mentions.",
}

_EXTRA_DOCS = {
    "topic": "Kafka topic of the event the row comes from.",
    "partition": "Kafka partition of that event.",
    "offset": "Kafka offset of that event.",
    "turnout": "ballots_cast / registered_voters.",
    "computed": "The figure computed from the published tables.",
    "reported": "The figure as reported by the source.",
    "difference": "computed - reported.",
    "rank": "Rank of the candidate by votes within the municipality (1 = most votes).",
    "elected_by_votes": "Whether the candidate's rank is within the municipality's seats.",
    "elected": "Whether the candidate appears in the reported seat allocation.",
    "status": "Current status (for noncurrent_events: outdated, superseded or retracted; for corrections, the "
              "correction event's: current or one of those).",
    "record_type": "Avro record name of the event.",
    "contest_id": "The contest (the election id for the election's default contest).",
    "overvotes": "Overvotes (null: not reported).",
    "undervotes": "Undervotes (null: not reported).",
    "blank_votes": "Blank votes (null: not reported).",
    "write_ins": "Write-in votes (null: not reported).",
    "known": "How many values the computed figure was taken over (stations or candidates where it is known).",
    "selection_kind": "CANDIDATE, PARTY, OPTION, WRITE_IN or OTHER (null: unknown).",
    "level": "station, division or contest: the unit the row sums over.",
    "unit_id": "The station, division or contest id of the unit.",
    "methods_unknown": "Vote-method figures reported without votes (null: no method reported).",
    "stations": "Tallies summed.",
    "stations_reporting": "Stations with a current tally of the contest.",
    "stations_expected": "Stations composing into the contest's district (null: unknown).",
    "registered_known": "Tallies reporting registered voters.",
    "ballots_cast_known": "Tallies reporting ballots cast.",
    "total_votes": "Votes for all selections.",
    "winners": "Selections that won (null: seats unknown).",
    "margin": "Votes of the last winner minus the best loser.",
    **{f"votes_{m.lower()}": f"Votes cast {m.lower().replace('_', ' ')} (null: not reported)."
       for m in ("ELECTION_DAY", "EARLY", "MAIL", "ABSENTEE", "PROVISIONAL", "OTHER")},
    "deliveries": "At how many Kafka log positions the event was found (2 or more: re-delivered, counted once).",
}


@lru_cache(maxsize=1)
def column_docs() -> dict[str, str]:
    """Column name -> description, from the Avro ``doc`` of the field with that name (first one found)."""
    docs: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "record":
                for f in node.get("fields", []):
                    if f.get("doc"):
                        docs.setdefault(f["name"], f["doc"])
                    walk(f.get("type"))
            elif "items" in node:
                walk(node["items"])
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for name in schemas.record_types():
        walk(schemas.raw_schema(name))
    return {**docs, **_EXTRA_DOCS}


def table_entry(staged: StagedFile, schema_columns: list[dict[str, str]], *, release_prefix: str,
                object_key: Callable[[str, str], str], url: Callable[[str], str]) -> dict[str, Any]:
    """A table's manifest entry. ``files`` lists its files in order, each with its bucket ``key`` (its URL is the
    manifest's ``base_url`` followed by the key): one file in the release folder (also given as ``path`` and
    ``url``), or for a large table several content-addressed files (``object_key(table, sha256)``), shared with
    every release that has the same one; ``sha256`` is then ``parquet.tree_sha256`` of theirs, and ``path`` and
    ``url`` are null. A file's absolute URL is not repeated in its entry: every publish uploads a manifest that
    lists every file, and at a million stations the URLs were a third of it (0.14 MB)."""
    docs = column_docs()
    if staged.parts:
        path = None
        files = [{"key": object_key(p.table, p.sha256), "rows": p.rows, "bytes": p.bytes, "sha256": p.sha256}
                 for p in staged.parts]
    else:
        path = f"tables/{staged.table}.parquet"
        files = [{"key": release_prefix + path, "rows": staged.rows, "bytes": staged.bytes, "sha256": staged.sha256}]
    return {
        "path": path,
        "url": url(files[0]["key"]) if path else None,
        "rows": staged.rows,
        "bytes": staged.bytes,
        "sha256": staged.sha256,
        "files": files,
        "key": list(KEYS[staged.table]),
        "description": TABLE_DESCRIPTIONS.get(staged.table, ""),
        "columns": [{**c, "description": docs.get(c["name"], "")} for c in schema_columns],
    }


def release_id_for(snapshot: Snapshot, now: datetime, nonce: str | None = None) -> str:
    """``YYYYMMDDTHHMMSS.ffffffZ-<snapshot fingerprint>-<8 random hex>``: sorts by time (microseconds, fixed
    width), names the data it holds, and never collides: two publishers of one snapshot in one microsecond still
    differ by the random suffix, so neither can write into the other's release folder."""
    stamp = f"{now.strftime('%Y%m%dT%H%M%S')}.{now.microsecond:06d}Z"
    return f"{stamp}-{snapshot.fingerprint()}-{nonce or secrets.token_hex(4)}"


def datapackage(dataset: str, release_id: str, tables: dict[str, dict[str, Any]], url: Callable[[str], str]
                ) -> dict[str, Any]:
    """A Frictionless Data Package for the release's Parquet tables; ``url`` gives a bucket key's public URL."""
    frictionless_types = {"string": "string", "int": "integer", "bool": "boolean", "double": "number",
                          "float": "number", "timestamp": "datetime", "date32": "date", "list": "array"}

    def field_type(arrow: str) -> str:
        for prefix, name in frictionless_types.items():
            if arrow.startswith(prefix) or f"<values={prefix}" in arrow:
                return name
        return "any"

    return {
        "profile": "data-package",
        "name": f"{dataset}-{release_id}".lower(),
        "title": f"Ballotstream release {release_id} of {dataset}",
        "licenses": [{"name": "CC-BY-4.0", "title": "Creative Commons Attribution 4.0"}],
        "resources": [
            {
                "name": name,
                # Frictionless allows a list of paths for a resource in several files (same schema, in order).
                "path": entry["path"] if entry["path"] else [url(f["key"]) for f in entry["files"]],
                "format": "parquet",
                "mediatype": "application/vnd.apache.parquet",
                "bytes": entry["bytes"],
                # One file's checksum; the files of a split table carry theirs in the manifest.
                **({"hash": f"sha256:{entry['sha256']}"} if entry["path"] else {}),
                "description": entry["description"],
                "schema": {
                    "fields": [{"name": c["name"], "type": field_type(c["type"]), "description": c["description"]}
                               for c in entry["columns"]],
                    "primaryKey": entry["key"],
                },
            }
            for name, entry in tables.items()
        ],
    }
