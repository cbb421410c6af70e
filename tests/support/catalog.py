"""A small fake release (Parquet bytes, manifest, validation report) in the documented layout, shared by the
catalog unit tests and the public-access and browser integration tests."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.fold.tables import DIVISIONS, KEYS, OBSERVATIONS, PARTIES, SCHEMAS, SEATS, STATION_TURNOUT

ELECTION = "local.az.2025-01-29"
MUNIS = {"ocd-division/country:az/region:a/municipality:baku": "Baku",
         "ocd-division/country:az/region:a/municipality:ganja": "Ganja",
         "ocd-division/country:az/region:a/municipality:sumqayit": "Sumqayit"}
T0 = datetime(2025, 1, 29, 8, 0, tzinfo=UTC)
TRACE = {"event_id": "00000000-0000-4000-8000-000000000000", "topic": "ballotstream.results", "partition": 0,
         "offset": 0}


def _rows(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = SCHEMAS[name]
    full = [{f: r.get(f, TRACE.get(f)) for f in schema.names} for r in rows]
    return pa.Table.from_pylist(full, schema=schema)


def fake_tables(extra_station: bool = False) -> dict[str, pa.Table]:
    """Tables a tiny election folds into: 3 municipalities, 6 stations, seats, 5 incidents."""
    stations = []
    for i, muni in enumerate(sorted(MUNIS) * 2):
        registered = 1000 + 100 * i
        stations.append({"election_id": ELECTION, "station_id": f"ocd-division/country:az/polling_station:{i}",
                         "municipality_id": muni, "status": "FINAL", "registered_voters": registered,
                         "ballots_cast": 300 + 50 * i, "valid_ballots": 290 + 50 * i, "invalid_ballots": 10,
                         "turnout": (300 + 50 * i) / registered})
    if extra_station:
        stations.append({**stations[0], "station_id": "ocd-division/country:az/polling_station:99"})
    seats = [{"election_id": ELECTION, "municipality_id": m, "candidate_id": f"candidate:{m[-4:]}-{k}",
              "party_id": None if k == 2 else ("party:real" if k == 0 else "party:ybp"), "total_seats": 3}
             for m in sorted(MUNIS) for k in range(3)]
    categories = ["CAROUSEL_VOTING", "BALLOT_STUFFING", "CAROUSEL_VOTING", "THREAT", "PROTOCOL_NOT_POSTED"]
    observations = [{"incident_id": f"incident:i{k}", "election_id": ELECTION, "category": c,
                     "division_id": sorted(MUNIS)[k % 3], "station_id": None, "reporter": "Observers",
                     "reporter_kind": "OBSERVER_MISSION", "description": "seen", "evidence_urls": [],
                     "count": 1, "status": "RECEIVED", "status_note": None, "status_event_id": None,
                     "occurred_at": T0 + timedelta(hours=k * 2), "recorded_at": T0 + timedelta(hours=k * 2)}
                    for k, c in enumerate(categories)]
    divisions = [{"division_id": m, "name": n, "kind": "MUNICIPALITY", "parent_id": "ocd-division/country:az",
                  "election_id": ELECTION, "municipality_id": None, "seats": 3} for m, n in MUNIS.items()]
    parties = [{"party_id": "party:real", "name": "REAL Party", "abbreviation": "REAL"},
               {"party_id": "party:ybp", "name": "New Azerbaijan Party", "abbreviation": "YAP"}]
    return {STATION_TURNOUT: _rows(STATION_TURNOUT, stations), SEATS: _rows(SEATS, seats),
            OBSERVATIONS: _rows(OBSERVATIONS, observations), DIVISIONS: _rows(DIVISIONS, divisions),
            PARTIES: _rows(PARTIES, parties)}


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def fake_release(dataset: str, release_id: str, *, base_url: str, previous: str | None = None,
                 tables: dict[str, pa.Table] | None = None, changes: dict[str, Any] | None = None,
                 created_at: str = "2025-01-31T12:00:00Z") -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any]]:
    """(manifest, files by key relative to the bucket, validation report) of one release, as docs/releases.md
    describes. ``base_url`` is the public URL of the bucket (``Settings.public_url('')`` without the slash)."""
    tables = fake_tables() if tables is None else tables
    prefix = f"{dataset}/releases/{release_id}"
    files: dict[str, bytes] = {}
    entries = {}
    for name, table in tables.items():
        body = parquet_bytes(table)
        files[f"{prefix}/tables/{name}.parquet"] = body
        entries[name] = {
            "path": f"tables/{name}.parquet", "url": f"{base_url}/{prefix}/tables/{name}.parquet",
            "rows": table.num_rows, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "key": list(KEYS[name]), "description": f"The {name} table.",
            "columns": [{"name": f.name, "type": str(f.type), "description": f"Column {f.name}."}
                        for f in table.schema],
        }
    checks = [{"name": "cast_le_registered", "table": STATION_TURNOUT, "blocking": True, "success": True,
               "failing_rows": 0, "checked_rows": 6, "rule": "ballots_cast <= registered_voters", "sample": []},
              {"name": "evidence_present", "table": OBSERVATIONS, "blocking": False, "success": False,
               "failing_rows": 5, "checked_rows": 5, "rule": "evidence_urls not empty", "sample": []}]
    report = {"passed": True, "tolerance": 0.001, "checks_run": 2, "checks_failed": 1, "blocking_failed": [],
              "checks": checks}
    manifest = {
        "format": "ballotstream.release/1", "dataset": dataset, "release_id": release_id,
        "created_at": created_at, "previous_release": previous, "dagster_run_id": None,
        "snapshot": [{"topic": "ballotstream.results", "partition": 0, "start_offset": 0, "end_offset": 6}],
        "schemas": [], "tables": entries,
        "gate": {"passed": True, "report": "validation.json",
                 "checks": [{k: c[k] for k in ("name", "table", "blocking", "success", "failing_rows")}
                            for c in checks]},
        "changes": changes or {"previous_release": previous, "tables": {}, "corrections": []},
    }
    files[f"{prefix}/validation.json"] = json.dumps(report).encode()
    files[f"{prefix}/manifest.json"] = json.dumps(manifest).encode()
    return manifest, files, report


def two_releases(dataset: str, base_url: str) -> tuple[list[dict[str, Any]], dict[str, bytes], dict[str, Any]]:
    """A first release and a second one with one station added, one tally corrected, and its reason."""
    first_id, second_id = "20250130T120000Z-aaaaaaaaaaaa", "20250131T120000Z-bbbbbbbbbbbb"
    m1, f1, r1 = fake_release(dataset, first_id, base_url=base_url, created_at="2025-01-30T12:00:00Z")
    changes = {"previous_release": first_id,
               "tables": {STATION_TURNOUT: {"added": 1, "changed": 1, "removed": 0},
                          SEATS: {"added": 0, "changed": 0, "removed": 0}},
               "corrections": [{"correction_event_id": "c-1", "target_event_id": "t-1", "kind": "supersede",
                                "reason": "Protocol re-counted: 12 ballots were misread.",
                                "key": f"{ELECTION}|ocd-division/country:az/polling_station:1"}]}
    m2, f2, r2 = fake_release(dataset, second_id, base_url=base_url, previous=first_id,
                              tables=fake_tables(extra_station=True), changes=changes)
    return [m1, m2], {**f1, **f2}, {first_id: r1, second_id: r2}
