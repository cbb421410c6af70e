"""Measure a publish's write stage (``pipeline.stage_tables``) on a saved extraction, without services: once with
an empty cache (every table file written), then after a correction of some tallies with the first run's files
kept, as an election-night publish writes them (most files linked from the cache, the changed ones encoded).

Usage: ``.venv/bin/python -m benchmarks.bench_write --load DIR [--tallies 1000] [--spread region|random]
[--runs 2] [--profile] [--out FILE]``

DIR is a ``bench_fold --save`` extraction. It is folded and staged into a temporary staging folder with an empty
file cache; the file records a checkpoint would keep (``Staged.file_records``) become the next run's
``reuse_from``. Then ``--tallies`` tallies are corrected in a fresh load of the extraction (one vote moved from
each one's second candidate to its first: station_results and the aggregates change; the events a real correction
adds are not made up), either a run of consecutive station ids (``region``, as when a region reports) or drawn
at random, folded again and staged ``--runs`` times, each into a new folder with the first run's records. The
last run's files are checked against a fresh write of the same tables (every file's sha256), so a figure that
reuse does not bear out fails instead of printing. Then one pass writes the tables one after another, for each
table's CPU seconds (``--profile``: under cProfile, its top functions printed). Prints, and with ``--out``
writes, wall and CPU seconds (the machine may be shared: CPU time is the steadier figure, and ``cores_free``,
measured just before each run, says how many cores two threads got), files written and reused, and peak RSS.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.bench_fold import _load
from pipelines.fold.core import fold_extracted
from pipelines.fold.extract import Extracted
from pipelines.fold.tables import file_layout
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import checkpoint, reuse
from pipelines.release.parquet import write_table_files
from pipelines.release.pipeline import Staged, stage_tables
from pipelines.settings import Settings

SEED = 7


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def correct_tallies(ex: Extracted, tallies: int, spread: str) -> int:
    """Move one vote from the second candidate to the first in ``tallies`` tallies of ``ex`` (in place); returns
    how many votes moved (a tally whose second candidate has none keeps its votes)."""
    stations = ex.content["StationTally"].column("station_id")
    if spread == "region":
        by_id = pc.sort_indices(stations).to_numpy()
        start = int(len(by_id) * 0.4)  # somewhere inside the country, not at either end of the key range
        chosen = by_id[start:start + tallies]
    else:
        chosen = np.random.default_rng(SEED).choice(len(stations), size=min(tallies, len(stations)), replace=False)
    rows, _, votes = ex.votes.numpy()
    entries = np.flatnonzero(np.isin(rows, chosen))
    firsts = entries[np.r_[True, rows[entries][1:] != rows[entries][:-1]]]
    seconds = firsts + 1
    seconds = seconds[(seconds < len(rows)) & (rows[np.minimum(seconds, len(rows) - 1)] == rows[firsts])]
    seconds = seconds[votes[seconds] > 0]
    votes[seconds] -= 1
    votes[seconds - 1] += 1
    return len(seconds)


def _fold(directory: Path, tallies: int = 0, spread: str = "region") -> tuple[dict[str, pa.Table], int]:
    ex = _load(directory)
    moved = correct_tallies(ex, tallies, spread) if tallies else 0
    return fold_extracted(ex), moved


def _stage(settings: Settings, tables: dict[str, pa.Table], reuse_from: dict | None, run: str) -> tuple[Staged, float]:
    cpu = time.process_time()
    staged = stage_tables(settings, Snapshot({}, {}), tables, run_id=run, reuse_from=reuse_from)
    return staged, time.process_time() - cpu


def cores_free() -> float:
    """How many cores two threads hashing (sha256 releases the GIL) get just now: about 2 on an idle two-core
    machine, about 1 when another job holds a core. The write stage's wall time means little without it."""
    chunks = [os.urandom(200_000) for _ in range(250)]

    def work() -> None:
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)

    start = time.perf_counter()
    work()
    work()
    serial = time.perf_counter() - start
    threads = [threading.Thread(target=work) for _ in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round(serial / (time.perf_counter() - start), 2)


def _figures(staged: Staged, cpu: float, cores: float) -> dict[str, Any]:
    t = staged.timings
    return {"write_s": round(t["write_s"], 2), "cpu_s": round(cpu, 2), "files_written": t["files_written"],
            "files_reused": t["files_reused"], "cores_free": cores}


def per_table_cpu(settings: Settings, tables: dict[str, pa.Table], reuse_from: dict, folder: Path,
                  profile: bool) -> dict[str, float]:
    """CPU seconds of each table's files staged one table after another (the pool runs them side by side)."""
    cache = reuse.TableFileCache(checkpoint.table_files_folder(settings), reuse.kept_files(reuse_from))
    profiler = cProfile.Profile() if profile else None
    out = {}
    for name in sorted(tables, key=lambda n: -tables[n].nbytes):
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        write_table_files(name, tables[name], folder, **file_layout(name, settings.table_file_bytes),
                          write=cache.write)
        if profiler:
            profiler.disable()
        out[name] = round(time.process_time() - cpu, 3)
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return out


def _check(settings: Settings, staged: Staged, tables: dict[str, pa.Table], tmp: Path) -> None:
    fresh = stage_tables(Settings(staging_dir=str(tmp / "fresh"), dataset=settings.dataset), Snapshot({}, {}),
                         tables, run_id="fresh")
    differ = [n for n in tables if staged.files[n].sha256 != fresh.files[n].sha256]
    if differ or fresh.timings["files_reused"]:
        raise SystemExit(f"staged files differ from a fresh write: {differ}")


def run(directory: Path, tallies: int, spread: str, runs: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings(staging_dir=str(tmp / "staging"))
        tables, _ = _fold(directory)
        cores = cores_free()
        first, cpu = _stage(settings, tables, None, "first")
        figures: dict[str, Any] = {"rows": {n: t.num_rows for n, t in tables.items() if t.num_rows >= 100_000},
                                   "first": _figures(first, cpu, cores)}
        print(f"first publish (empty cache): {figures['first']}")
        del tables
        tables, moved = _fold(directory, tallies, spread)
        figures.update({"tallies": tallies, "spread": spread, "votes_moved": moved, "runs": []})
        for i in range(runs):
            cores = cores_free()
            staged, cpu = _stage(settings, tables, first.file_records, f"again-{i}")
            figures["runs"].append(_figures(staged, cpu, cores))
            print(f"after {tallies:,} tallies ({spread}), run {i + 1}: {figures['runs'][-1]}")
        _check(settings, staged, tables, tmp)
        figures["per_table_cpu_s"] = per_table_cpu(settings, tables, first.file_records, tmp / "serial", profile)
        print(f"CPU per table, one after another: {figures['per_table_cpu_s']}")
    figures.update({"peak_rss_mb": round(_rss_mb()), "load_average": [round(x, 2) for x in os.getloadavg()]})
    print(f"peak RSS {figures['peak_rss_mb']:,} MB; load average {figures['load_average']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=Path, required=True, help="a bench_fold --save extraction")
    parser.add_argument("--tallies", type=int, default=1000, help="tallies corrected before the second publish")
    parser.add_argument("--spread", choices=("region", "random"), default="region")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="cProfile the tables staged one after another")
    parser.add_argument("--out", type=Path, help="write the figures here (JSON)")
    args = parser.parse_args()
    figures = run(args.load, args.tallies, args.spread, args.runs, args.profile)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"figures -> {args.out}")


if __name__ == "__main__":
    main()
