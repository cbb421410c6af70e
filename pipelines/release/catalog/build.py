"""``catalog.json``: every published release of a dataset, newest first, built from the releases' manifests.

Every publish uploads it again, so its size must not follow the election's: the newest release's entry lists its
tables with their files and columns, older releases' entries are summaries (their manifest keeps the detail), and
of the latest release's contests only the ``MAX_LISTED_CONTESTS`` with the most votes are listed.

Paths in the catalog are relative to the dataset folder (``<dataset>/``), where ``catalog.json`` and
``index.html`` live, so the page links work wherever the bucket is served from, and a script resolves them against
the URL it fetched ``catalog.json`` from. A table in one file also has its absolute ``url`` (from its manifest);
the files of a split table and the parts of a document have a path only: at a million stations the latest
release has about 800, and their URLs were 0.15 MB of a document every publish uploads (the manifest gives their
bucket keys and the ``base_url`` of those keys)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.release.catalog.contests import LISTING_ORDER, SUMMARY, contest_count, contest_sections

# 2: older releases as summaries, and the contests section bounded (an object: counts, order, items).
# 3: the files of a split table and a document's parts without ``url`` (resolve ``path`` instead).
CATALOG_FORMAT = "ballotstream.catalog/3"
# How many of the newest releases keep their full entry (tables with files and columns, documents, snapshot,
# corrections). A full entry is 40-110 KB at a million stations (the files of the split tables); a publish a minute
# would add one a minute to a document every publish uploads. A summary is 1-2 KB.
FULL_ENTRIES = 1
# The folder of one release inside the dataset folder (docs/releases.md, "Layout in the bucket").
RELEASES_FOLDER = "releases"
MANIFEST_NAME = "manifest.json"
# Where the gate's report sits in a release folder when a manifest does not say.
DEFAULT_REPORT = "validation.json"


def release_path(release_id: str, name: str) -> str:
    """The path of a file of a release, relative to the dataset folder."""
    return f"{RELEASES_FOLDER}/{release_id}/{name}"


def _tables(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    release_id = manifest["release_id"]
    out: dict[str, dict[str, Any]] = {}
    for name, table in sorted(manifest.get("tables", {}).items()):
        split = table.get("path") is None and len(table.get("files") or []) > 1
        out[name] = {
            "path": None if split else release_path(release_id, table.get("path") or f"tables/{name}.parquet"),
            "url": table.get("url"),
            # A large table's files (docs/releases.md), relative to the dataset folder like ``path``.
            "files": [{"path": f["key"].split("/", 1)[1], "rows": f["rows"], "bytes": f["bytes"],
                       "sha256": f["sha256"]} for f in table["files"]] if split else [],
            "rows": table.get("rows"),
            "bytes": table.get("bytes"),
            "sha256": table.get("sha256"),
            "key": list(table.get("key") or []),
            "description": table.get("description", ""),
            "columns": [
                {"name": c["name"], "type": c.get("type", ""), "description": c.get("description", "")}
                for c in table.get("columns", [])
            ],
        }
    return out


def _gate(manifest: dict[str, Any], report: dict[str, Any] | None) -> dict[str, Any]:
    """The gate's outcome: from the validation report when given, else from the checks in the manifest."""
    gate = manifest.get("gate") or {}
    checks = (report or {}).get("checks") or gate.get("checks") or []
    failed = [c for c in checks if not c.get("success", True)]
    passed = gate.get("passed", (report or {}).get("passed"))
    return {
        "passed": bool(passed),
        "report": release_path(manifest["release_id"], gate.get("report") or DEFAULT_REPORT),
        "checks_run": (report or {}).get("checks_run", len(checks)),
        "checks_failed": (report or {}).get("checks_failed", len(failed)),
        "blocking_failed": sorted(f"{c.get('table')}.{c.get('name')}" for c in failed if c.get("blocking")),
        # Non-blocking failures did not stop the release, but a reader should know about them.
        "warnings": sorted(f"{c.get('table')}.{c.get('name')}" for c in failed if not c.get("blocking")),
    }


def _changes(manifest: dict[str, Any], previous: str | None) -> dict[str, Any]:
    changes = manifest.get("changes") or {}
    corrections = changes.get("corrections") or []
    return {
        "previous_release": changes.get("previous_release", manifest.get("previous_release", previous)),
        "tables": {name: {k: int(v.get(k, 0)) for k in ("added", "changed", "removed")}
                   for name, v in sorted((changes.get("tables") or {}).items())},
        "correction_count": len(corrections),
        "corrections": [
            {k: c.get(k) for k in ("kind", "key", "reason", "correction_event_id", "target_event_id")}
            for c in corrections
        ],
    }


def _documents(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Documents beside the tables (NIST SP 1500-100 exports), with paths relative to the dataset folder: a
    document in parts (docs/releases.md) has no path of its own, its parts joined in order are the file."""
    out = {}
    for key, doc in sorted((manifest.get("documents") or {}).items()):
        parts = doc.get("parts") or []
        out[key] = {"path": None if parts else release_path(manifest["release_id"], doc.get("path") or key),
                    "url": doc.get("url"), "format": doc.get("format"), "election_id": doc.get("election_id"),
                    "bytes": doc.get("bytes"), "sha256": doc.get("sha256"),
                    "parts": [{"path": p["key"].split("/", 1)[1], "bytes": p["bytes"], "sha256": p["sha256"]}
                              for p in parts]}
    return out


def _entry(manifest: dict[str, Any], report: dict[str, Any] | None, older: str | None) -> dict[str, Any]:
    """One release's entry in ``catalog.json`` (all of how it is derived lives in this module: ENTRIES_VERSION)."""
    release_id = manifest["release_id"]
    tables = _tables(manifest)
    return {
        "release_id": release_id,
        "created_at": manifest.get("created_at"),
        "previous_release": manifest.get("previous_release", older),
        "manifest": release_path(release_id, MANIFEST_NAME),
        "rows": sum(int(t["rows"] or 0) for t in tables.values()),
        "bytes": sum(int(t["bytes"] or 0) for t in tables.values()),
        "snapshot": manifest.get("snapshot", []),
        "tables": tables,
        "documents": _documents(manifest),
        "gate": _gate(manifest, report),
        "changes": _changes(manifest, older),
    }


def _source_digest() -> str | None:
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    except OSError:
        return None  # no source to tell versions apart: never reuse an earlier catalog


# Which derivation of a release's entry an earlier catalog.json was built with (it travels as the object's
# metadata, not in the document): the digest of this module, so any change here rebuilds every entry once rather
# than keeping entries an older derivation built.
ENTRIES_VERSION = _source_digest()
_ENTRY_KEYS = ("release_id", "created_at", "previous_release", "manifest", "rows", "bytes", "snapshot", "tables",
               "documents", "gate", "changes")
_SUMMARY_KEYS = ("release_id", "created_at", "previous_release", "manifest", "rows", "bytes", "gate", "changes")


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """A release's entry without what its manifest lists in full: no tables, documents or snapshot, and of its
    changes the tables whose rows changed and how many corrections it carries (a summary gives itself back)."""
    changes = entry["changes"]
    return {**{k: entry[k] for k in _SUMMARY_KEYS[:-1]},
            "changes": {"previous_release": changes["previous_release"],
                        "tables": {name: c for name, c in changes["tables"].items() if any(c.values())},
                        "correction_count": changes["correction_count"]}}


def is_full(entry: dict[str, Any]) -> bool:
    """Whether a catalog entry lists the release's tables (else it is a :func:`summary`)."""
    return "tables" in entry


def reusable_entries(previous: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Release id -> entry of an earlier ``catalog.json`` of this format (empty for None, another format, or an
    entry of another shape). A release never changes, so neither does its entry: the releases an earlier catalog
    lists need neither their manifest nor their report again (a full entry becomes a summary when newer releases
    push it out of the ``FULL_ENTRIES``)."""
    if not previous or previous.get("format") != CATALOG_FORMAT:
        return {}
    entries = previous.get("releases")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and tuple(e) in (_ENTRY_KEYS, _SUMMARY_KEYS)
                                                 and isinstance(e["release_id"], str) for e in entries):
        return {}
    return {e["release_id"]: e for e in entries}


def _sort_key(item: dict[str, Any]) -> tuple[str, str]:
    # Release ids start with a UTC timestamp, so they sort by time even when created_at is missing.
    return str(item.get("created_at") or ""), str(item["release_id"])


def _contests(tables: dict[str, pa.Table], latest: dict[str, Any] | None) -> dict[str, Any]:
    """The contests section: how many contests the latest release has, how many are listed and in which order,
    where all of them are (its ``contest_summary`` table), and the listed ones."""
    items = contest_sections(tables) if latest else []
    total = contest_count(tables) if latest else 0
    table = ((latest or {}).get("tables") or {}).get(SUMMARY) or {}
    where = None if not total or latest is None else {
        "table": SUMMARY, "release_id": latest["release_id"], "manifest": latest["manifest"],
        "path": table.get("path"), "url": table.get("url"), "files": table.get("files") or []}
    return {"total": total, "listed": len(items), "order": LISTING_ORDER, "all_in": where, "items": items}


def build_catalog(manifests: list[dict[str, Any]], reports: dict[str, dict[str, Any]],
                  latest_tables: dict[str, pa.Table] | None = None,
                  previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build ``catalog.json`` from the published releases' manifests.

    Args:
        manifests: every published release's ``manifest.json`` of one dataset, in any order; with ``previous``,
            those it lacks are enough.
        reports: the gate's ``validation.json`` per release id; releases without one use the manifest's checks.
        latest_tables: the latest release's tables, for the contests section (``contests``, ``contest_summary``,
            ``contest_results`` at least; without them the section is empty).
        previous: the dataset's ``catalog.json`` as the last publish wrote it: the releases it lists are kept
            from it (:func:`reusable_entries`) instead of built from their manifests.

    Returns:
        ``{"format", "dataset", "latest", "updated_at", "releases": [...], "contests": {...}}`` with releases
        newest first. Each has its manifest's path, rows, bytes, gate outcome with a link to its report, and
        changes since the previous release; the newest ``FULL_ENTRIES`` also list their tables (rows, bytes,
        sha256, files, columns with descriptions, relative path and download url), documents, snapshot and
        corrections, the others are :func:`summary` entries. ``contests`` is ``{"total", "listed", "order",
        "all_in", "items"}``: the latest release's contest count, the ``MAX_LISTED_CONTESTS`` with the most votes
        (:func:`~pipelines.release.catalog.contests.contest_sections`) and where every contest is.

    Raises:
        ValueError: the manifests (and ``previous``) belong to more than one dataset.
    """
    kept = reusable_entries(previous)
    if manifests:
        # Not past the newest release given: a racing publisher's newer one would head the page of this one.
        newest = max(_sort_key(m) for m in manifests)
        kept = {rid: e for rid, e in kept.items() if _sort_key(e) <= newest}
    datasets = {m.get("dataset") for m in manifests} | ({(previous or {}).get("dataset")} if kept else set())
    if len(datasets) > 1:
        raise ValueError(f"manifests of several datasets: {sorted(map(str, datasets))}")
    given = {m["release_id"]: m for m in manifests}
    # Each release is either kept or built from its manifest; "older" is the next release either way.
    ordered = sorted([*kept.values(), *(m for m in manifests if m["release_id"] not in kept)], key=_sort_key,
                     reverse=True)
    releases = []
    for i, item in enumerate(ordered):
        older = ordered[i + 1]["release_id"] if i + 1 < len(ordered) else None
        release_id = item["release_id"]
        entry = kept.get(release_id)
        full = i < FULL_ENTRIES
        # A kept summary cannot list the tables again: its manifest can, when given (else it stays a summary).
        if entry is None or (full and not is_full(entry) and release_id in given):
            entry = _entry(given[release_id], reports.get(release_id), older)
        releases.append(entry if full else summary(entry))
    return {
        "format": CATALOG_FORMAT,
        "dataset": next(iter(datasets)) if datasets else None,
        "latest": releases[0]["release_id"] if releases else None,
        # Derived from the data, not the clock: the same releases always give the same bytes.
        "updated_at": releases[0]["created_at"] if releases else None,
        "releases": releases,
        "contests": _contests(latest_tables or {}, releases[0] if releases else None),
    }
