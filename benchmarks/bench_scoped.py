"""Measure an election-night publish's scoped stage and incremental gate on a saved extraction, without services:
the minutes-long loop of ``bench_live`` cut to the two stages that fold, splice and check.

Usage: ``.venv/bin/python -m benchmarks.bench_scoped --load DIR [--tallies 10000] [--runs 2] [--profile FILE]
[--gate [--gate-profile FILE]] [--check] [--out FILE]``

DIR is a ``bench_fold --save`` extraction. The history is the extraction without its last ``--tallies`` tallies
in log order (as a region reports last); it is folded and its tables staged into a file cache, as the last
release left them. Then the extraction of the history followed by those tallies (``extract.merge``, the new
events after the checkpoint's, as a publish merges them) is staged from the new tallies' scope
(``scoped.stage_scoped``) ``--runs`` times, each into a new folder from the history's files. ``--gate`` gates
the history in full and then the last run's tables from the history's gate outcomes
(``gate.incremental.gate_tables``, as ``pipeline.validate`` does). ``--check`` stages the whole extraction
folded in full too and fails unless every table's files have the sha256 of the scoped stage's. Prints, and with
``--out`` writes, wall seconds per run, the stage's own timings, and peak RSS; ``--profile`` / ``--gate-profile``
write cProfile statistics of the last run; ``documents_ready_s`` is when, into a run, the tables the NIST documents
read were all staged (a publish starts their build then).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.bench_fold import _load, _part
from benchmarks.calibration import calibrate
from pipelines.contract import vocabulary as v
from pipelines.fold.core import fold_tables
from pipelines.fold.extract import Extracted, merge
from pipelines.fold.sliced import SlicedTable
from pipelines.fold.tables import file_layout
from pipelines.gate.incremental import GateRun
from pipelines.gate.keyprints import KeyPrints
from pipelines.release import cdf_tables, reuse, scoped
from pipelines.release.gating import gate_staged
from pipelines.release.parquet import StagedFile, write_table_files
from pipelines.settings import Settings

DATASET = "bench"
RELEASE = "history"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stage_whole(ex: Extracted, directory: Path, cache: reuse.TableFileCache, file_bytes: int
                 ) -> dict[str, StagedFile]:
    out = {}
    for name, table in fold_tables(ex, DATASET):
        table = table.table() if isinstance(table, SlicedTable) else table
        out[name] = write_table_files(name, table, directory, **file_layout(name, file_bytes), write=cache.write)
    return out


def _manifest(files: dict[str, StagedFile], file_bytes: int) -> dict[str, Any]:
    return {"release_id": RELEASE, "write": {"cutting": scoped.cutting(file_bytes)}, "tables": {
        name: {"path": None if f.parts else f"tables/{name}.parquet",
               "files": [{"sha256": p.sha256, "rows": p.rows} for p in f.parts or (f,)]}
        for name, f in files.items()}}


def _parts(directory: Path, tallies: int) -> tuple[Extracted, Extracted, Extracted]:
    """(the history, history + new tallies merged, the whole extraction): the history cut twice, since a fold
    and a merge of the same part share (and change) its buffers."""
    ex = _load(directory)
    ords = ex.content[v.STATION_TALLY]["ord"].to_numpy()
    new = np.sort(ords[-tallies:])
    keep = np.ones(ex.envelope.num_rows, bool)
    keep[new] = False
    history = np.flatnonzero(keep)
    return _part(ex, history), merge([_part(ex, history), _part(ex, new)]), ex


def _gate(files: dict[str, StagedFile], kept: dict[str, Any] | None, prints: KeyPrints) -> GateRun:
    """``pipeline.validate``'s gate of ``files``, from the outcomes ``kept`` (None: check every file)."""
    return gate_staged(files, Settings().gate_tolerance, kept, prints.folder)


def _timed(profile: str | None, call: Any) -> tuple[Any, float]:
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    out = call()
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    return out, time.perf_counter() - started


class _DocumentsReady:
    """Seconds into the stage when the tables the NIST documents read were all staged (their build starts then)."""

    def __init__(self) -> None:
        self.started, self.ready_s = time.perf_counter(), None

    def __call__(self, files: Any) -> None:
        if self.ready_s is None and all(name in files for name in cdf_tables.TABLES):
            self.ready_s = round(time.perf_counter() - self.started, 2)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    file_bytes = Settings().table_file_bytes
    history, both, whole = _parts(args.load, args.tallies)
    new_from = history.envelope.num_rows
    cache = reuse.TableFileCache(tmp / "cache", {})
    started = time.perf_counter()
    last = _stage_whole(history, tmp / "history", cache, file_bytes)
    figures: dict[str, Any] = {"calibration": calibrate(), "tallies": args.tallies,
                               "history_staged_s": round(time.perf_counter() - started, 1), "runs": []}
    kept = reuse.kept_files(cache.records(last.values()))
    for i in range(args.runs):
        ready = _DocumentsReady()
        # As a publish stages: station_turnout files' figures kept by sha256 (the first run finds none kept).
        writing = scoped.Writing(tmp / f"run-{i}", file_bytes, reuse.TableFileCache(tmp / "cache", kept), ready,
                                 tmp / "figures")
        done, seconds = _timed(args.profile if i == args.runs - 1 else None, lambda w=writing: scoped.stage_scoped(
            SimpleNamespace(extracted=both, new_from=new_from), _manifest(last, file_bytes), RELEASE, DATASET, w))
        figures["runs"].append({"stage_s": round(seconds, 2), "documents_ready_s": ready.ready_s,
                                **{k: round(x, 3) for k, x in done.timings.items()}})
        print(f"scoped stage {i + 1}: {seconds:.2f} s ({done.note}); {figures['runs'][-1]}")
    if args.gate:
        prints = KeyPrints(tmp / "keyprints")
        first, seconds = _timed(None, lambda: _gate(last, None, prints))
        again, gated = _timed(args.gate_profile, lambda: _gate(done.files, first.cache, prints))
        figures["gate"] = {"full_s": round(seconds, 2), "incremental_s": round(gated, 2),
                           "files_checked": again.checked_files, "files_reused": again.reused_files}
        print(f"gate: history in full {seconds:.1f} s, then {gated:.2f} s ({again.checked_files} files checked, "
              f"{again.reused_files} kept)")
    if args.check:
        full = _stage_whole(whole, tmp / "whole", reuse.TableFileCache(tmp / "unused", {}), file_bytes)
        differ = [n for n in full if full[n].sha256 != done.files[n].sha256]
        if differ:
            raise SystemExit(f"the scoped stage's files differ from a full fold's: {differ}")
        print("checked: every table's files are a full fold's")
    figures["peak_rss_mb"] = round(_rss_mb())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=Path, required=True, help="a bench_fold --save extraction")
    parser.add_argument("--tallies", type=int, default=10_000, help="the last tallies, new after the history")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", help="cProfile the last scoped stage into this file")
    parser.add_argument("--gate", action="store_true", help="gate the history, then the last run incrementally")
    parser.add_argument("--gate-profile", help="with --gate: cProfile the incremental gate into this file")
    parser.add_argument("--check", action="store_true", help="compare with a full fold's files")
    parser.add_argument("--out", type=Path, help="write the figures here (JSON)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scoped-") as tmp:
        figures = run(args, Path(tmp))
    print(f"peak RSS {figures['peak_rss_mb']:,} MB")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"figures -> {args.out}")


if __name__ == "__main__":
    main()
