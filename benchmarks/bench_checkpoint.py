"""Measure how long a publish takes to load its base checkpoint's segments from the local cache, without services.

Usage:

    .venv/bin/python -m benchmarks.bench_checkpoint --load DIR [--publishes 2] [--fold] [--without-copy] [--cache DIR]

``DIR`` is an extraction saved by ``benchmarks.bench_fold --save`` (its worker parts are merged, as a publish
merges them). It is saved once as a checkpoint segment (``checkpoint.save_segment``) into the cache (a temporary
folder unless ``--cache``); then each publish runs in a fresh process, as a publish does, and times what
``checkpoint.combine`` counts as ``checkpoint_load_s`` for one cached segment: ``fetch_segments`` (no bucket)
and ``load_segments``. ``--fold`` also folds what the last publish loaded (``fold_extracted``), to see that the
way the segment is loaded does not slow the fold. ``--without-copy`` removes the segment's memory-mappable copy
(``mapped_copy``) before the first publish, which then makes it, as after a download. Peak RSS is each process's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_fold import _load  # noqa: E402
from pipelines.fold.core import fold_extracted  # noqa: E402
from pipelines.fold.extract import merge  # noqa: E402
from pipelines.release import checkpoint, mapped_copy  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _memory() -> str:
    """This process's peak RSS and what its RSS holds now: anonymous memory, and mapped files' pages (which the
    kernel can drop and read again)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    mb = {k: int(status[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon", "RssFile")}
    # VmHWM, not ru_maxrss: a process started by fork and exec inherits its parent's ru_maxrss.
    return f"peak RSS {mb['VmHWM']:,.0f} MB; now {mb['RssAnon']:,.0f} MB anonymous, {mb['RssFile']:,.0f} MB files"


def _save(source: Path, cache: Path, without_copy: bool) -> checkpoint.Segment:
    extracted = _load(source)
    t0 = time.perf_counter()
    segment, folder = checkpoint.save_segment(extracted, cache)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"save_segment: {time.perf_counter() - t0:.2f} s, {size / 1e6:,.0f} MB on disk in {folder.name} "
          f"(peak RSS {_rss_mb():,.0f} MB)")
    if without_copy:
        mapped_copy.discard(folder)
    return segment


def _publish(cache: Path, segment: checkpoint.Segment, fold: bool) -> None:
    """One publish's load of its base segment (and, with ``fold``, the fold of it), in this process."""
    # pyarrow imports pandas at its first conversion to Python or numpy; a publishing process has done that
    # long before it loads a checkpoint (Dagster and Great Expectations import pandas), so it is not timed here.
    pa.array(["warm-up"]).to_pylist()
    t0 = time.perf_counter()
    folders = checkpoint.fetch_segments(None, [segment], cache)
    fetched = time.perf_counter()
    parts = checkpoint.load_segments(folders)
    loaded = time.perf_counter()
    print(f"  fetch_segments {fetched - t0:.3f} s + load_segments {loaded - fetched:.3f} s = "
          f"checkpoint load {loaded - t0:.3f} s ({_memory()})")
    if fold:
        extracted = merge(parts)
        del parts
        cpu, t0 = time.process_time(), time.perf_counter()
        tables = fold_extracted(extracted)
        print(f"  fold_extracted {time.perf_counter() - t0:.2f} s (CPU {time.process_time() - cpu:.2f} s), "
              f"{len(tables)} tables ({_memory()})")


def main() -> None:
    """Save the segment once, then run each publish's load in a process of its own."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", help="the extraction to save as a segment (a bench_fold --save folder)")
    parser.add_argument("--publishes", type=int, default=2)
    parser.add_argument("--fold", action="store_true", help="fold what the last publish loaded")
    parser.add_argument("--without-copy", action="store_true",
                        help="remove the segment's uncompressed copy before the first publish (made by it)")
    parser.add_argument("--cache", help="the segment cache (default: a temporary folder, removed at the end)")
    parser.add_argument("--segment", help=argparse.SUPPRESS)  # a publish process: the segment's JSON
    args = parser.parse_args()
    if args.segment:
        _publish(Path(args.cache), checkpoint.Segment.from_json(json.loads(args.segment)), args.fold)
        return
    if not args.load:
        parser.error("--load DIR is required")
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as tmp:
        cache = Path(args.cache or tmp)
        segment = _save(Path(args.load), cache, args.without_copy)
        for i in range(args.publishes):
            print(f"publish {i + 1}:")
            fold = args.fold and i == args.publishes - 1
            subprocess.run([sys.executable, "-m", "benchmarks.bench_checkpoint", "--cache", str(cache),
                            "--segment", json.dumps(segment.to_json()), *(["--fold"] if fold else [])],
                           check=True)


if __name__ == "__main__":
    main()
