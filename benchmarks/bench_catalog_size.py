"""Measure how large ``catalog.json`` and ``index.html`` grow as releases accumulate, on generated manifests of the
shape a publish writes and a latest release with many contests, without Kafka or S3.

Usage: ``.venv/bin/python -m benchmarks.bench_catalog_size [--releases 100] [--contests 7000] [--selections 5]
[--stations 1000000]``

Each release's manifest lists every table of the fold with its real columns and descriptions; a table of more than
its file size at ``--stations`` (``BALLOTSTREAM_TABLE_FILE_BYTES``, or the share of it ``tables.file_layout`` gives)
is listed as files, as a publish splits it. The
releases are catalogued one at a time, each build keeping the entries of the catalog before it (as a publish does),
and the documents' sizes are printed after the first, the second, the tenth, ... and the last release, with the
bytes the contests section and the release entries take.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from typing import Any

import pyarrow as pa

from pipelines.fold.tables import SCHEMAS, TABLE_NAMES, empty_table, file_layout
from pipelines.release.catalog import LATEST_COLUMNS, build_catalog, render_index
from pipelines.release.manifest import TABLE_DESCRIPTIONS, column_docs
from pipelines.release.parquet import ONE_FILE_UP_TO, columns
from pipelines.release.s3 import json_document
from pipelines.settings import Settings

DATASET = "bench"
ELECTION = "general.bench.2030-05-05"
# Rows per table per station (a million stations x 1 contest: 12.5M station_results rows, 2.25M events, ...).
ROWS_PER_STATION = {"station_results": 12.5, "contest_results": 13.0, "events": 2.25, "station_turnout": 1.0,
                    "divisions": 1.01}
# Their Parquet bytes per station, as written at a million stations x 1 contest.
BYTES_PER_STATION = {"station_results": 44.8, "contest_results": 22.8, "events": 55.2, "station_turnout": 36.3,
                     "divisions": 26.2}
# Tables a live update of 1% of the stations changes (the others keep their rows).
TOUCHED = ("events", "station_results", "station_turnout", "contest_results", "contest_summary",
           "municipality_results", "national_summary", "seats")
REPORTED = (1, 2, 10, 50, 100, 200, 500, 1000)


def _sha(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def contest_tables(contests: int, selections: int) -> dict[str, pa.Table]:
    """The latest release's contest tables, with the columns the catalog reads (``LATEST_COLUMNS``): ``contests``
    contests of ``selections`` candidates each; contest i has about i votes per 1,000, so totals differ."""
    def table(name: str, data: dict[str, list[Any]]) -> pa.Table:
        schema = SCHEMAS[name]
        return pa.table({c: pa.array(data[c], schema.field(c).type) for c in LATEST_COLUMNS[name]})

    ids = [f"council.bench.c{i:05d}.2030-05-05" for i in range(contests)]
    pairs = [(cid, f"candidate:c{i:05d}-{k}", (i % 997 + 1) * (selections - k) * 10)
             for i, cid in enumerate(ids) for k in range(selections)]
    totals: dict[str, int] = {}
    for cid, _, votes in pairs:
        totals[cid] = totals.get(cid, 0) + votes
    return {
        "elections": table("elections", {"election_id": [ELECTION], "name": ["Bench election"], "date": [None]}),
        "contests": table("contests", {"contest_id": ids, "election_id": [ELECTION] * contests,
                                       "name": [f"Council {i}" for i in range(contests)],
                                       "kind": ["CANDIDATE"] * contests, "office": ["Council"] * contests}),
        "candidates": table("candidates", {"candidate_id": [s for _, s, _ in pairs],
                                           "name": [f"Candidate {s[-9:]}" for _, s, _ in pairs]}),
        "contest_selections": table("contest_selections", {"contest_id": [c for c, _, _ in pairs],
                                                           "selection_id": [s for _, s, _ in pairs],
                                                           "label": [None] * len(pairs)}),
        "contest_summary": table("contest_summary", {
            "contest_id": ids, "total_votes": [totals[c] for c in ids],
            "winners": [[f"candidate:c{i:05d}-0"] for i in range(contests)],
            "margin": [(i % 997 + 1) * 10 for i in range(contests)],
            "stations_reporting": [100] * contests, "stations_expected": [100] * contests}),
        "contest_results": table("contest_results", {"contest_id": [c for c, _, _ in pairs],
                                                     "selection_id": [s for _, s, _ in pairs],
                                                     "level": ["contest"] * len(pairs),
                                                     "votes": [v for _, _, v in pairs]}),
    }


def manifest(i: int, previous: str | None, stations: int, contests: int, file_bytes: int) -> dict[str, Any]:
    """Release ``i``'s manifest as ``pipelines.release.manifest`` writes it (sizes, not bytes, are real)."""
    rid = f"20300505T{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}.000000Z-{i:012x}-{i:08x}"
    prefix = f"{DATASET}/releases/{rid}/"
    docs = column_docs()
    tables = {}
    for name in TABLE_NAMES:
        rows = int(stations * ROWS_PER_STATION[name]) if name in ROWS_PER_STATION else contests
        size = stations * BYTES_PER_STATION.get(name, 0)
        its_file_bytes = file_layout(name, file_bytes)["file_bytes"]  # as the publish cuts this table
        split = size > ONE_FILE_UP_TO * its_file_bytes
        parts = math.ceil(size / its_file_bytes) if split else 1
        # A file keeps its bytes until its stations change: the same few files change from release to release.
        files = [{"key": f"{DATASET}/tables/{name}/{_sha(name, n, i if n == i % parts else -1)}.parquet"
                  if split else prefix + f"tables/{name}.parquet",
                  "rows": rows // parts, "bytes": rows // parts * 20, "sha256": _sha(name, n, i)}
                 for n in range(parts)]
        url = f"http://127.0.0.1:17070/ballotstream-releases/{files[0]['key']}"
        tables[name] = {"path": None if split else f"tables/{name}.parquet", "url": None if split else url,
                        "rows": rows, "bytes": rows * 20, "sha256": _sha(name, i), "files": files,
                        "key": [], "description": TABLE_DESCRIPTIONS.get(name, ""),
                        "columns": [{**c, "description": docs.get(c["name"], "")}
                                    for c in columns(empty_table(name))]}
    checks = [{"name": f"rule_{k}", "table": TABLE_NAMES[k % len(TABLE_NAMES)], "blocking": k != 0,
               "success": k != 0, "failing_rows": 0 if k else 3} for k in range(30)]
    cdf = f"cdf/{ELECTION}.json.gz"
    return {
        "format": "ballotstream.release/2", "dataset": DATASET, "release_id": rid,
        "base_url": "http://127.0.0.1:17070/ballotstream-releases/",
        "created_at": f"2030-05-05T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z", "previous_release": previous,
        "snapshot": [{"topic": "ballotstream.results", "partition": p, "start_offset": 0, "end_offset": 1000 * i}
                     for p in range(12)],
        "tables": tables,
        "documents": {cdf: {"path": cdf, "url": f"http://127.0.0.1:17070/ballotstream-releases/{prefix}{cdf}",
                            "format": "NIST SP 1500-100 v2 JSON ElectionReport", "election_id": ELECTION}},
        "gate": {"passed": True, "report": "validation.json", "checks": checks},
        "changes": {"previous_release": previous,
                    "tables": {n: {"added": 0, "changed": (stations // 100 if n in TOUCHED else 0), "removed": 0}
                               for n in TABLE_NAMES},
                    "corrections": [{"kind": "supersede", "key": f"{ELECTION}|station:{i}-{k}",
                                     "reason": "Protocol re-counted.", "correction_event_id": _sha("c", i, k),
                                     "target_event_id": _sha("t", i, k)} for k in range(2)]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--contests", type=int, default=7000)
    parser.add_argument("--selections", type=int, default=5)
    parser.add_argument("--stations", type=int, default=1_000_000)
    args = parser.parse_args()

    tables = contest_tables(args.contests, args.selections)
    file_bytes = Settings().table_file_bytes
    previous: dict[str, Any] | None = None
    reported = sorted({r for r in REPORTED if r < args.releases} | {args.releases})
    print(f"{'releases':>8} {'catalog.json':>13} {'contests':>11} {'releases[]':>11} {'index.html':>11}")
    last: tuple[int, int] | None = None
    for i in range(args.releases):
        older = previous["releases"][0]["release_id"] if previous and previous["releases"] else None
        m = manifest(i, older, args.stations, args.contests, file_bytes)
        catalog = build_catalog([m], {}, tables, previous)
        body = json_document(catalog, sort_keys=False)
        previous = json.loads(body)
        n = i + 1
        if n in reported:
            contests = len(json_document(catalog["contests"], sort_keys=False))
            entries = len(json_document(catalog["releases"], sort_keys=False))
            page = len(render_index(catalog, tables).encode())
            growth = f"  +{(len(body) - last[1]) / (n - last[0]):,.0f} B/release" if last else ""
            print(f"{n:>8} {len(body):>13,} {contests:>11,} {entries:>11,} {page:>11,}{growth}", flush=True)
            last = (n, len(body))


if __name__ == "__main__":
    main()
