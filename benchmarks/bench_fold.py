"""Measure fold (and optionally gate) time and peak memory on a generated election.

Usage: ``.venv/bin/python benchmarks/bench_fold.py --stations 1000000 [--gate]``

The LogRecords are generated lazily, as a Kafka consumer would decode them; the time spent generating
them is measured in a separate pass and reported apart from the fold's own time.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.fold import fold  # noqa: E402
from tests.support.factories import generate_election  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    """Run the benchmark and print one line per phase."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--gate", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    n = sum(1 for _ in generate_election(args.stations, args.candidates))
    gen = time.perf_counter() - start
    print(f"generate: {n:,} records in {gen:.1f} s (peak RSS {_rss_mb():,.0f} MB)")

    cpu_gen = time.process_time()
    start = time.perf_counter()
    tables = fold(generate_election(args.stations, args.candidates))
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu_gen
    rows = {name: t.num_rows for name, t in tables.items()}
    print(f"fold: {total:.1f} s incl. generation, {total - gen:.1f} s fold alone (CPU {cpu:.1f} s incl. "
          f"generation); peak RSS {_rss_mb():,.0f} MB")
    print(f"rows: station_results={rows['station_results']:,} station_turnout={rows['station_turnout']:,} "
          f"events={rows['events']:,}")

    if args.gate:
        from pipelines.gate import run_gate

        start, cpu_start = time.perf_counter(), time.process_time()
        report = run_gate(tables)
        print(f"gate: {time.perf_counter() - start:.1f} s (CPU {time.process_time() - cpu_start:.1f} s), "
              f"passed={report.passed}; peak RSS {_rss_mb():,.0f} MB")
        for line in report.summary_lines():
            if "FAIL" in line:
                print("  " + line)


if __name__ == "__main__":
    main()
