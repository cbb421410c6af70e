"""Measure the NIST SP 1500-100 v2 export of a release as the release step runs it, without Kafka or S3.

Usage: ``.venv/bin/python -m benchmarks.bench_cdf --stations 1000000 [--contests C] [--selections S] [--cache DIR]
[--runs N] [--profile] [--out FILE]``

Setup (not timed, in a child process so that its memory is not counted): ``ballotstream synth``'s files are
parsed and reference-checked as ingest does, folded, and the export's tables (``cdf.TABLES``) staged under
``--cache`` as a publish stages them (``write_table_files``: large tables in content-defined files); a second run
starts from there. Then, ``--runs`` times: ``release_documents`` on the staged files as the release step calls it
(read the tables, build, gzip: what is uploaded), ``read_export_tables`` alone (the reading part of that),
``release_documents`` again as the next release with unchanged tables calls it (the document is carried over),
and twice with a cache of the document's blocks (``cdf_blocks``) and frame (``cdf_frame``): empty, then holding
every block and the frame (what a publish whose tallies changed no contest of the document pays; one that did adds
its blocks' builds). Prints
and, with ``--out``, writes wall and CPU seconds
(the machine may be shared: CPU time is the steadier figure), the document's bytes (JSON and gzip) and the peak
RSS of this process.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import json
import multiprocessing
import os
import pstats
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset  # noqa: F401 (loaded in a publish before the release step: its import is not the export's)
import pyarrow.parquet as pq

from pipelines.release import cdf
from pipelines.release.parquet import StagedFile, file_sha256, tree_sha256

SEED = 1
AT = datetime(2030, 5, 5, 23, 0, tzinfo=UTC)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _setup(stations: int, contests: int, selections: int | None, folder: Path) -> None:
    from pipelines.fold import fold
    from pipelines.fold.tables import file_layout
    from pipelines.generator.synth import synthesize
    from pipelines.release.parquet import write_table_files
    from pipelines.settings import Settings
    from tests.support.synth_log import synth_records

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), stations, SEED, contests=contests, selections=selections)
        tables = fold(synth_records(Path(tmp)))
    file_bytes = Settings().table_file_bytes  # the default, as a publish cuts files
    for name in cdf.TABLES:
        if name in tables:
            write_table_files(name, tables[name], folder, **file_layout(name, file_bytes))
    (folder / "done").touch()
    print(f"setup: synth + parse + fold + stage in {time.perf_counter() - t0:.1f} s -> {folder}")


def staged_files(stations: int, contests: int, selections: int | None, cache: Path) -> dict[str, StagedFile]:
    """The export's tables of a synthetic election as a publish stages them, made once under ``cache``."""
    folder = cache / f"cdf-staged-{stations}x{contests}x{selections or '-'}"
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        child = multiprocessing.get_context("spawn").Process(target=_setup,
                                                             args=(stations, contests, selections, folder))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"setup failed (exit code {child.exitcode})")
    files = {}
    for name in cdf.TABLES:
        if (folder / f"{name}.parquet").exists():
            path = folder / f"{name}.parquet"
            files[name] = StagedFile(name, path, pq.ParquetFile(path).metadata.num_rows, path.stat().st_size,
                                     file_sha256(path))
        elif (folder / name).is_dir():
            parts = tuple(StagedFile(name, p, pq.ParquetFile(p).metadata.num_rows, p.stat().st_size, file_sha256(p))
                          for p in sorted((folder / name).glob("part-*.parquet")))
            files[name] = StagedFile(name, folder / name, sum(p.rows for p in parts), sum(p.bytes for p in parts),
                                     tree_sha256([p.sha256 for p in parts]), parts)
    return files


def _timed(fn: Any, profile: bool) -> tuple[Any, float, float]:
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    result = fn()
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--contests", type=int, default=1, help="contests per station")
    parser.add_argument("--selections", type=int, default=None, help="selections per contest (synth's default)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ballotstream-bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions (first run)")
    parser.add_argument("--out", type=Path, help="write the figures here (JSON)")
    args = parser.parse_args()

    files = staged_files(args.stations, args.contests, args.selections, args.cache)
    print("staged rows: " + ", ".join(f"{n}={f.rows:,}" for n, f in files.items()))
    rss_before = _rss_mb()
    runs = []
    for i in range(args.runs):
        # What the release step runs (documents_s in a publish's timings): read the staged tables, build, gzip.
        (docs, entries), export_s, export_cpu = _timed(
            lambda: cdf.release_documents(files, generated_at=AT), args.profile and i == 0)
        # Every table read, those only the document's frame reads too (they are read lazily).
        _, read_s, read_cpu = _timed(lambda: dict(cdf.read_export_tables(files).tables), False)
        # The next release with the same tables: the document is carried over.
        previous = {"release_id": "previous", "documents": entries}
        (carried, _), carry_s, _ = _timed(
            lambda previous=previous: cdf.release_documents(files, generated_at=AT, previous=previous),
            False)
        assert carried == {}  # the same parts, listed again
        with tempfile.TemporaryDirectory() as blocks:
            (cold, _), cold_s, _ = _timed(
                lambda: cdf.release_documents(files, generated_at=AT, cache=Path(blocks)), False)
            (warm, _), warm_s, warm_cpu = _timed(
                lambda: cdf.release_documents(files, generated_at=AT, cache=Path(blocks)), False)
        assert cold == warm == docs  # the same bytes, whatever the cache holds
        runs.append({"export_s": round(export_s, 2), "export_cpu_s": round(export_cpu, 2),
                     "of_which_read_s": round(read_s, 2), "of_which_read_cpu_s": round(read_cpu, 2),
                     "carried_over_s": round(carry_s, 3), "blocks_cached_none_s": round(cold_s, 2),
                     "blocks_cached_all_s": round(warm_s, 2), "blocks_cached_all_cpu_s": round(warm_cpu, 2)})
        print(f"run {i + 1}: export {export_s:.2f} s (CPU {export_cpu:.2f}), of which reading the tables "
              f"{read_s:.2f} s (CPU {read_cpu:.2f}); unchanged tables: {carry_s:.3f} s; with the blocks cached: "
              f"none {cold_s:.2f} s, all {warm_s:.2f} s (CPU {warm_cpu:.2f})")
    sizes = {key: {"json_bytes": len(gzip.decompress(doc.body)), "gzip_bytes": len(doc.body),
                   "format": json.loads(gzip.decompress(doc.body))["Format"]} for key, doc in docs.items()}
    for key, size in sizes.items():
        print(f"{key}: {size['format']}, JSON {size['json_bytes'] / 1e6:,.1f} MB, gzip {size['gzip_bytes'] / 1e6:,.2f} MB")
    figures = {"stations": args.stations, "contests": args.contests, "selections": args.selections,
               "staged_rows": {n: f.rows for n, f in files.items()}, "runs": runs, "documents": sizes,
               "peak_rss_mb": round(_rss_mb()), "rss_before_mb": round(rss_before),
               "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(f"peak RSS {_rss_mb():,.0f} MB ({rss_before:,.0f} MB before the first read); load average "
          f"{figures['load_average']}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"figures -> {args.out}")


if __name__ == "__main__":
    main()
