"""Measure ``ballotstream ingest`` on a synthetic election: events/s overall and per stage, and peak memory.

Usage: ``.venv/bin/python -m benchmarks.bench_ingest --stations 100000 [--contests N] [--selections M] [--workers N]
[--keep-topics]``

The election is synthesized into a temporary directory first (not timed), then ingested into fresh topics
(a unique prefix) on the running local services; the topics are deleted afterwards unless ``--keep-topics``.
Stage figures: ``read_validate`` and ``encode`` are CPU seconds summed over the worker processes (so they
can exceed the wall time), ``produce`` is the main process checking references and handing bytes to the
producer, ``flush`` the wait for the last acknowledgements. ``--contests`` / ``--selections`` are the generator's
(``ballotstream synth``). Figures go to ``benchmarks/results/ingest.json``, or
``ingest-<N>x<contests>x<selections>.json`` when either is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.bench_publish import result_name
from benchmarks.election import fresh_settings, synthesize_files
from benchmarks.rss import TreeRss
from pipelines.contract.topics import RESULTS as RESULTS_TOPIC
from pipelines.generator.contests import DEFAULT_CONTESTS
from pipelines.ingest.run import ingest
from pipelines.ingest.sink import bulk_producer as ingest_producer
from pipelines.kafka.admin import delete_topics, ensure_topics
from pipelines.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"


def _rate(events: int, seconds: float) -> float:
    return round(events / seconds) if seconds else 0.0


def producer_ceiling(settings: Settings, messages: int = 200_000, value_bytes: int = 560) -> dict[str, float]:
    """kafka-python's own limit: ``send()`` of pre-encoded bytes to explicit partitions, nothing else.

    The same producer settings as ingest (idempotent, ``acks=all``, 1 MiB batches) and keys of the same shape,
    so the gap between this and the ingest rate is what reading, checking and encoding cost.
    """
    producer = ingest_producer(settings)
    topic = settings.topic(RESULTS_TOPIC.name)
    partitions = len(producer.partitions_for(topic))
    value = os.urandom(value_bytes)
    keys = [f"local.xs.2030-05-05|ocd-division/country:xs/station:{i:07d}".encode() for i in range(messages)]
    try:
        started = time.perf_counter()
        for i, key in enumerate(keys):
            producer.send(topic, key=key, value=value, partition=i % partitions)
        producer.flush()
        seconds = time.perf_counter() - started
    finally:
        producer.close()
    return {"messages": messages, "value_bytes": value_bytes, "seconds": round(seconds, 2),
            "messages_per_second": _rate(messages, seconds)}


def run(stations: int, workers: int | None, keep_topics: bool, contests: int | None = None,
        selections: int | None = None) -> dict[str, object]:
    """Synthesize, ingest, and return the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        files, synth, synth_seconds = synthesize_files(Path(tmp), stations, contests, selections)
        input_mb = sum(p.stat().st_size for p in files) / 1e6
        settings = fresh_settings()
        ensure_topics(settings)
        load_before = [round(x, 2) for x in os.getloadavg()]
        try:
            started = time.perf_counter()
            with TreeRss() as tree:
                report = ingest(files, settings, workers=workers)
            seconds = time.perf_counter() - started
            ceiling = producer_ceiling(settings)
        finally:
            if not keep_topics:
                delete_topics(settings)
    main_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_kib = {pid: kib for pid, kib in report.peak_rss_kib.items() if pid != os.getpid()}
    stages = dict(report.stages)
    return {
        "stations": stations,
        "contests_per_station": contests or "default (3)",
        "selections": selections or "default",
        "contests_declared": synth.contests,
        "tallies": stations * (contests or DEFAULT_CONTESTS),  # one per station and contest
        "events": report.read,
        "produced": report.produced_total,
        "rejected": report.rejected_total,
        "failed": len(report.failed),
        "input_mb": round(input_mb, 1),
        "synthesize_seconds": round(synth_seconds, 2),
        "seconds": round(seconds, 2),
        "events_per_second": _rate(report.read, seconds),
        "workers": len(workers_kib),
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
        # Per stage: events over that stage's own seconds (worker stages summed over workers: per-core rates).
        "stage_events_per_second": {k: _rate(report.read, v) for k, v in stages.items()},
        "kafka_python_send_ceiling": ceiling,
        "peak_rss_mb": {"main": round(main_kib / 1024, 1),
                        "workers": [round(k / 1024, 1) for k in workers_kib.values()],
                        "total": round((main_kib + sum(workers_kib.values())) / 1024, 1),
                        "process_tree_sampled": tree.peak_mb},
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "topics_deleted": not keep_topics,
    }


def main() -> None:
    """Run the benchmark, print the figures and write them to ``benchmarks/results/ingest.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: ingest's choice)")
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument("--contests", type=int, default=None, help="contests per station (synth's default: 3)")
    parser.add_argument("--selections", type=int, default=None, help="selections per contest (synth's default)")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/ingest[-<shape>].json")
    args = parser.parse_args()
    if args.out is None:
        name = result_name(args.stations, args.contests, args.selections)
        args.out = RESULTS if name == str(args.stations) else RESULTS.with_name(f"ingest-{name}.json")

    figures = run(args.stations, args.workers, args.keep_topics, args.contests, args.selections)
    print(f"ingest: {figures['events']:,} events ({figures['input_mb']} MB) in {figures['seconds']} s = "
          f"{figures['events_per_second']:,} events/s with {figures['workers']} worker processes")
    for stage, secs in figures["stage_seconds"].items():  # type: ignore[attr-defined]
        print(f"  {stage:14s} {secs:8.2f} s  {figures['stage_events_per_second'][stage]:>10,} events/s")  # type: ignore[index]
    print(f"peak RSS: {figures['peak_rss_mb']}")
    print(f"kafka-python send() of pre-encoded bytes alone: {figures['kafka_python_send_ceiling']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
