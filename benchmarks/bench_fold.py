"""Measure fold (and optionally gate) time and peak memory on a generated election, without services.

Usage:

    .venv/bin/python -m benchmarks.bench_fold --stations 1000000 [--gate]
    .venv/bin/python -m benchmarks.bench_fold --stations 1000000 --contests 1 [--selections S] [--save DIR]
    .venv/bin/python -m benchmarks.bench_fold --load DIR [--profile FILE] [--hashes FILE] [--file-bytes N]
        [--gate [--gate-report F]]

Without ``--contests`` the LogRecords come from ``tests.support.factories.generate_election`` (one default contest
per election, every station a child of the country), generated lazily as a Kafka consumer would decode them; the
time spent generating them is measured in a separate pass and reported apart from the fold's own time.

With ``--contests`` (and ``--selections``) the election is the one ``ballotstream synth`` writes and the publish
benchmark ingests (``pipelines.generator.synth``: councils, regions, constituencies, contest declarations), parsed
from the synthesized files as ingest parses them: the shape the publish path folds. The extraction is timed apart,
and ``--save`` keeps it (``pipelines.fold.extraction_files``) so that ``--load`` can fold it again and again: the
fold step of a publish is ``fold_extracted`` on exactly such a (memory-mapped, merged) extraction.

``--hashes`` writes each table's Parquet sha256 (``pipelines.release.parquet.write_table``), to compare two
versions of the fold on one saved extraction; ``--profile`` writes a cProfile of ``fold_extracted``;
``--file-bytes`` prints the files each large table is cut into at that ``BALLOTSTREAM_TABLE_FILE_BYTES``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.calibration import calibrate  # noqa: E402
from pipelines.contract import vocabulary as v  # noqa: E402
from pipelines.fold import fold  # noqa: E402
from pipelines.fold.buffers import DEFAULT_CHUNK_ROWS  # noqa: E402
from pipelines.fold.core import extract_all, fold_extracted  # noqa: E402
from pipelines.fold.extract import Extracted, Votes, merge  # noqa: E402
from pipelines.fold.extraction_files import load_extraction, save_extraction  # noqa: E402
from tests.support.factories import generate_election  # noqa: E402
from tests.support.synth_log import synth_records  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _chunked(table: pa.Table) -> pa.Table:
    """In the extraction pass's 32,768-row batches (``pipelines.fold.buffers``), as a worker's files hold it."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=DEFAULT_CHUNK_ROWS), schema=table.schema)


def _part(ex: Extracted, ords: np.ndarray) -> Extracted:
    """The extraction of the events at ``ords`` (old ordinals, in their new order), renumbered from 0."""
    new = np.full(ex.envelope.num_rows, -1, np.int64)
    new[ords] = np.arange(len(ords))

    def rows(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
        at = new[table["ord"].to_numpy()] if table.num_rows else np.zeros(0, np.int64)
        keep = np.flatnonzero(at >= 0)
        keep = keep[np.argsort(at[keep], kind="stable")]
        out = table.take(pa.array(keep, pa.int64()))
        return _chunked(out.set_column(0, "ord", pa.array(at[keep], pa.int64()))), keep

    content, tally_rows = {}, None
    for name, table in ex.content.items():
        content[name], kept = rows(table)
        if name == v.STATION_TALLY:
            tally_rows = kept
    tally_new = np.full(ex.content[v.STATION_TALLY].num_rows, -1, np.int64)
    tally_new[tally_rows] = np.arange(len(tally_rows))
    tally_row, codes, votes = ex.votes.numpy()
    at = tally_new[tally_row] if len(tally_row) else np.zeros(0, np.int64)
    keep = np.flatnonzero(at >= 0)
    keep = keep[np.argsort(at[keep], kind="stable")]
    part_votes, candidates = ex.votes.to_tables()
    part_votes = pa.table([at[keep].astype(np.int32), codes[keep], votes[keep]], schema=part_votes.schema)
    return Extracted(envelope=_chunked(ex.envelope.take(pa.array(ords, pa.int64()))), content=content,
                     mentions=rows(ex.mentions)[0], votes=Votes.from_tables(part_votes, candidates))


def publish_parts(ex: Extracted, workers: int) -> list[Extracted]:
    """``ex`` cut as a publish reads it: the (topic, partition)s dealt to ``workers`` read workers (largest first,
    each to the lightest: ``pipelines.fold.read.split``), each worker's events partition by partition in offset
    order. Kafka's polls interleave a worker's partitions in batches; here they follow one another."""
    env = ex.envelope
    topics, topic_code = np.unique(env["topic"].to_numpy(zero_copy_only=False), return_inverse=True)
    partition = env["partition"].to_numpy().astype(np.int64)
    tp = topic_code * 1024 + partition
    sizes = np.bincount(tp)
    loads, worker_of = [0] * workers, {}
    for key in sorted(np.flatnonzero(sizes).tolist(), key=lambda k: (-sizes[k], str(topics[k // 1024]), k % 1024)):
        lightest = loads.index(min(loads))
        loads[lightest] += int(sizes[key])
        worker_of[key] = lightest
    worker = np.array([worker_of.get(k, 0) for k in range(len(sizes))], np.int64)[tp]
    order = np.lexsort((env["offset"].to_numpy(), tp, worker))
    return [_part(ex, order[worker[order] == w]) for w in range(workers) if (worker == w).any()]


def _synth_extraction(args: argparse.Namespace) -> object:
    from pipelines.generator.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="bench-fold-") as tmp:
        start = time.perf_counter()
        synthesize(Path(tmp), stations=args.stations, seed=1, faults=args.faults, contests=args.contests,
                   selections=args.selections)
        print(f"synth: {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        rejected: list[int] = []
        ex = extract_all(synth_records(Path(tmp), rejected if args.faults else None))
    print(f"parse + extract: {ex.envelope.num_rows:,} events ({len(rejected):,} rejected) in "
          f"{time.perf_counter() - start:.1f} s (peak RSS {_rss_mb():,.0f} MB)")
    return ex


def _load(directory: Path) -> Extracted:
    """A saved extraction, or the merge of its saved worker parts (``part-<i>``), as a publish merges them."""
    parts = sorted(directory.glob("part-*"), key=lambda p: int(p.name.split("-")[1]))
    return merge([load_extraction(p) for p in parts]) if parts else load_extraction(directory)


def _fold_saved(args: argparse.Namespace) -> dict:
    print(f"machine calibration (benchmarks/calibration.py): {calibrate()['calibration_s']} s")
    ex = _load(Path(args.load))
    rss_before = _rss_mb()
    profiler = cProfile.Profile() if args.profile else None
    cpu, start = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    tables = fold_extracted(ex, args.dataset)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    total = time.perf_counter() - start
    print(f"fold_extracted: {total:.2f} s (CPU {time.process_time() - cpu:.2f} s); peak RSS {_rss_mb():,.0f} MB "
          f"(after loading the extraction: {rss_before:,.0f} MB)")
    return tables


def _write_hashes(tables: dict, path: str) -> None:
    from pipelines.release.parquet import write_table

    with tempfile.TemporaryDirectory(prefix="bench-fold-parquet-") as tmp:
        digests = {name: {"rows": table.num_rows, "sha256": write_table(name, table, Path(tmp)).sha256}
                   for name, table in tables.items()}
    Path(path).write_text(json.dumps(digests, indent=1) + "\n")
    print(f"hashes of {len(digests)} tables -> {path}")


def _print_files(tables: dict, file_bytes: int) -> None:
    """Each table that a publish cuts into files at ``file_bytes``: how many, and their sizes."""
    from pipelines.fold.tables import file_layout
    from pipelines.release.parquet import write_table_files

    with tempfile.TemporaryDirectory(prefix="bench-fold-files-") as tmp:
        for name, table in tables.items():
            staged = write_table_files(name, table, Path(tmp), **file_layout(name, file_bytes))
            if staged.parts:
                mb = np.array([p.bytes for p in staged.parts]) / 1e6
                print(f"files of {name}: {len(mb)}, {mb.sum():.1f} MB; MB per file: median {np.median(mb):.2f}, "
                      f"90th percentile {np.quantile(mb, 0.9):.2f}, max {mb.max():.2f}")


def main() -> None:
    """Run the benchmark and print one line per phase."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=12, help="per station, without --contests")
    parser.add_argument("--contests", type=int, help="the synth generator's shape: contests per station")
    parser.add_argument("--selections", type=int, help="with --contests: selections per contest")
    parser.add_argument("--faults", type=float, default=0.0,
                        help="with --contests: the generator's fault rate (duplicates, corrections, retractions)")
    parser.add_argument("--workers", type=int, default=2,
                        help="with --contests: read workers whose extractions the fold merges, as a publish with "
                             "BALLOTSTREAM_READ_WORKERS (default 2); 1: one pass in file order")
    parser.add_argument("--save", help="with --contests: keep the extraction in this (new) folder")
    parser.add_argument("--load", help="fold the extraction saved in this folder (and nothing else)")
    parser.add_argument("--profile", help="with --load: write a cProfile of fold_extracted here")
    parser.add_argument("--hashes", help="write each table's Parquet sha256 here (JSON)")
    parser.add_argument("--file-bytes", type=int,
                        help="print the files each large table is cut into at this BALLOTSTREAM_TABLE_FILE_BYTES")
    parser.add_argument("--dataset", default="bench")
    parser.add_argument("--gate", action="store_true")
    parser.add_argument("--gate-report", help="with --gate: write the gate's report (JSON) here, to compare two "
                                              "versions of the gate on one saved extraction")
    args = parser.parse_args()

    if args.load:
        tables = _fold_saved(args)
    elif args.contests is not None:
        ex = _synth_extraction(args)
        if args.workers > 1:
            parts = publish_parts(ex, args.workers)  # type: ignore[arg-type]
            if args.save:
                Path(args.save).mkdir(parents=True)
                for i, part in enumerate(parts):
                    save_extraction(part, Path(args.save) / f"part-{i}")
            ex = merge(parts)
        elif args.save:
            save_extraction(ex, Path(args.save))  # type: ignore[arg-type]
        if args.save:
            print(f"extraction saved to {args.save}")
        cpu, start = time.process_time(), time.perf_counter()
        tables = fold_extracted(ex, args.dataset)  # type: ignore[arg-type]
        print(f"fold_extracted: {time.perf_counter() - start:.2f} s (CPU {time.process_time() - cpu:.2f} s); "
              f"peak RSS {_rss_mb():,.0f} MB")
    else:
        start = time.perf_counter()
        n = sum(1 for _ in generate_election(args.stations, args.candidates))
        gen = time.perf_counter() - start
        print(f"generate: {n:,} records in {gen:.1f} s (peak RSS {_rss_mb():,.0f} MB)")

        cpu_gen = time.process_time()
        start = time.perf_counter()
        tables = fold(generate_election(args.stations, args.candidates), args.dataset)
        total = time.perf_counter() - start
        cpu = time.process_time() - cpu_gen
        print(f"fold: {total:.1f} s incl. generation, {total - gen:.1f} s fold alone (CPU {cpu:.1f} s incl. "
              f"generation); peak RSS {_rss_mb():,.0f} MB")
    rows = {name: t.num_rows for name, t in tables.items()}
    print(f"rows: station_results={rows['station_results']:,} contest_results={rows['contest_results']:,} "
          f"station_turnout={rows['station_turnout']:,} contests={rows['contests']:,} events={rows['events']:,}")
    if args.hashes:
        _write_hashes(tables, args.hashes)
    if args.file_bytes:
        _print_files(tables, args.file_bytes)

    if args.gate:
        from pipelines.gate import run_gate

        start, cpu_start = time.perf_counter(), time.process_time()
        report = run_gate(tables)
        print(f"gate: {time.perf_counter() - start:.1f} s (CPU {time.process_time() - cpu_start:.1f} s), "
              f"passed={report.passed}; peak RSS {_rss_mb():,.0f} MB")
        for line in report.summary_lines():
            if "FAIL" in line:
                print("  " + line)
        if args.gate_report:
            Path(args.gate_report).write_text(report.to_json())


if __name__ == "__main__":
    main()
