"""Measure the catalog of a publish (``build_catalog`` and ``render_index``) on a synthetic election's tables,
without Kafka or S3.

Usage: ``.venv/bin/python -m benchmarks.bench_catalog --stations 1000000 [--contests C] [--selections S]
[--releases R] [--cache DIR] [--profile]``

Setup (not timed): ``ballotstream synth``'s files are parsed as ingest parses them and folded in this process;
the tables the catalog reads (``CHART_TABLES``, contest_results at level ``contest`` only, as ``announce`` reads
them back) are kept as Parquet under ``--cache`` so a second run starts from there. Then ``build_catalog`` and
``render_index`` are timed on those tables with ``--releases`` manifests of the same shape, and the sizes of
``catalog.json`` and ``index.html`` printed. ``--profile`` prints cProfile's top functions of each.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.fold import fold
from pipelines.generator.synth import synthesize
from pipelines.ingest.readers import Parsed, read_path
from pipelines.kafka.log_record import LogRecord
from pipelines.release.catalog import build_catalog, render_index
from pipelines.release.pipeline import CHART_TABLES
from pipelines.release.s3 import json_document

ROOT = Path(__file__).resolve().parent.parent
SEED = 1


def _records(folder: Path) -> Iterator[LogRecord]:
    """The generated events as the fold receives them; offsets count up per topic like a one-partition log."""
    offsets: dict[str, int] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".jsonl", ".csv")):
        for item in read_path(path):
            if isinstance(item, Parsed):
                offset = offsets.get(item.topic, 0)
                offsets[item.topic] = offset + 1
                yield LogRecord(item.topic, 0, offset, item.key, item.record_type, 1, item.value)


def chart_tables(stations: int, contests: int, selections: int | None, cache: Path) -> dict[str, Any]:
    """The catalog's tables of a synthetic election, folded once and then read from ``cache``."""
    folder = cache / f"catalog-{stations}x{contests}x{selections or '-'}"
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            synthesize(Path(tmp), stations, SEED, contests=contests, selections=selections)
            tables = fold(_records(Path(tmp)))
        for name in CHART_TABLES:
            table = tables[name]
            if name == "contest_results":
                table = table.filter(pc.equal(table.column("level"), "contest"))
            pq.write_table(table, folder / f"{name}.parquet")
        (folder / "done").touch()
        print(f"setup: synth + parse + fold in {time.perf_counter() - t0:.1f} s -> {folder}")
    return {name: pq.read_table(folder / f"{name}.parquet") for name in CHART_TABLES}


def manifests(tables: dict[str, Any], releases: int) -> list[dict[str, Any]]:
    """``releases`` manifests of one dataset, each listing the catalog tables (what build_catalog reads)."""
    out = []
    for i in range(releases):
        rid = f"20300505T{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}Z-{i:012x}"
        entries = {n: {"path": f"tables/{n}.parquet", "url": None, "rows": t.num_rows, "bytes": t.nbytes,
                       "sha256": "0" * 64, "key": [], "description": n,
                       "columns": [{"name": f.name, "type": str(f.type), "description": f.name} for f in t.schema]}
                   for n, t in tables.items()}
        out.append({"dataset": "bench", "release_id": rid, "created_at": rid[:15], "tables": entries,
                    "previous_release": out[-1]["release_id"] if out else None,
                    "gate": {"passed": True, "checks": []}, "changes": {}})
    return out


def _timed(label: str, profile: bool, fn: Any, *args: Any) -> Any:
    profiler = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    result = fn(*args)
    if profiler:
        profiler.disable()
    print(f"{label}: {time.perf_counter() - t0:.2f} s")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--contests", type=int, default=1, help="contests per station")
    parser.add_argument("--selections", type=int, default=None, help="selections per contest (synth's default)")
    parser.add_argument("--releases", type=int, default=1, help="manifests in the catalog")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ballotstream-bench")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()

    tables = chart_tables(args.stations, args.contests, args.selections, args.cache)
    print("rows: " + ", ".join(f"{n}={t.num_rows:,}" for n, t in tables.items()))
    listed = manifests(tables, args.releases)
    started = time.perf_counter()
    catalog = _timed("build_catalog", args.profile, build_catalog, listed, {}, tables)
    body = _timed("json.dumps", args.profile, lambda: json_document(catalog, sort_keys=False))
    page = _timed("render_index", args.profile, lambda: render_index(catalog, tables).encode())
    print(f"catalog total: {time.perf_counter() - started:.2f} s; catalog.json {len(body) / 1e6:.2f} MB, "
          f"index.html {len(page) / 1e6:.2f} MB, {catalog['contests']['listed']:,} of "
          f"{catalog['contests']['total']:,} contests listed")


if __name__ == "__main__":
    main()
