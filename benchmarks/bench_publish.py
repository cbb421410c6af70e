"""Measure a publish of a synthetic election: time per stage and peak memory, beside raw consume rates.

Usage: ``.venv/bin/python -m benchmarks.bench_publish --stations 100000 [--contests N] [--selections M]
[--keep-topics]``

Setup (not part of the publish figures): synthesize the election and ingest it into fresh topics (a unique
prefix) on the running local services. Then one publish through the one path users run: the Dagster job
``publish`` in-process (``dagster_project.run.run_publish``, what ``ballotstream publish`` runs), with its stages
timed inside: consume+decode, fold, write (Parquet), validate (Great Expectations), upload (release +
latest.json) and catalog+announce. Beside it, on the same results topic in the same run: kafka-python's raw consume rate (no
decoding) and Kafka's own Java ``ConsumerPerformance``. ``--contests`` / ``--selections`` are the generator's
(``ballotstream synth``). Figures go to ``benchmarks/results/publish-<N>.json``, or
``publish-<N>x<contests>x<selections>.json`` when either is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from benchmarks.election import fresh_settings, ingest_timed, peak_rss_mb, synthesize_files
from benchmarks.rss import TreeRss
from dagster_project.run import run_publish
from pipelines.contract.topics import RESULTS
from pipelines.kafka.admin import delete_topics, ensure_topics
from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"


def raw_kafka_python(settings: Settings, topic: str) -> dict[str, float]:
    """Records/s of a plain kafka-python consumer reading the whole topic, values left undecoded."""
    consumer = KafkaConsumer(**settings.kafka_config(), enable_auto_commit=False, max_poll_records=10000,
                             fetch_max_bytes=64 << 20, max_partition_fetch_bytes=16 << 20)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        n, started = 0, time.perf_counter()
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=1000).values():
                n += len(batch)
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return {"records": n, "seconds": round(seconds, 2), "records_per_s": round(n / seconds)}


def raw_java(settings: Settings, topic: str, records: int) -> dict[str, object]:
    """Kafka's ``ConsumerPerformance`` (from kafka-tools) on the same topic."""
    libs = ROOT / ".state" / "kafka" / "libs" / "*"
    started = time.perf_counter()
    proc = subprocess.run(
        ["java", "-Xmx512m", "-cp", str(libs), "org.apache.kafka.tools.ConsumerPerformance",
         "--bootstrap-server", settings.kafka_bootstrap_servers, "--topic", topic, "--messages", str(records),
         "--timeout", "60000"],
        capture_output=True, text=True, timeout=600,
    )
    seconds = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or len(lines) < 2:
        return {"error": (proc.stderr or proc.stdout)[-500:]}
    header = [h.strip() for h in lines[0].split(",")]
    values = [v.strip() for v in lines[1].split(",")]
    row = dict(zip(header, values))
    return {"records_per_s": float(row.get("nMsg.sec", 0)), "mb_per_s": float(row.get("MB.sec", 0)),
            "wall_seconds_with_jvm_start": round(seconds, 2), "raw": row}


def run(stations: int, keep_topics: bool, reuse_prefix: str | None = None, contests: int | None = None,
        selections: int | None = None) -> dict[str, object]:
    """Synthesize and ingest (unless reusing topics), publish once, and return the figures."""
    settings = fresh_settings(dataset=f"bench-{stations}")
    if reuse_prefix:
        settings = replace(settings, topic_prefix=reuse_prefix)
    ensure_topics(settings)
    setup: dict[str, object] = {"reused_topics": settings.topic_prefix} if reuse_prefix else {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
            settings = replace(settings, staging_dir=str(Path(tmp) / "staging"))
            if not reuse_prefix:
                files, _, synth_s = synthesize_files(Path(tmp) / "data", stations, contests, selections)
                setup = {"synth_s": round(synth_s, 1), **ingest_timed(files, settings)}

            load_before = [round(x, 2) for x in os.getloadavg()]
            t0 = time.perf_counter()
            with TreeRss() as tree:
                outcome = run_publish(settings, force=True)  # a --reuse-prefix run republishes one snapshot
            assert outcome.manifest is not None and outcome.report is not None
            manifest, gate = outcome.manifest, outcome.report
            publish_s = time.perf_counter() - t0
            results_topic = settings.topic(RESULTS.name)
            python_raw = raw_kafka_python(settings, results_topic)
            java_raw = raw_java(settings, results_topic, python_raw["records"])
    finally:
        if keep_topics or reuse_prefix:
            print(f"topics kept: --reuse-prefix {settings.topic_prefix}")
        else:
            delete_topics(settings)
    timings = {k: round(v, 2) for k, v in outcome.timings.items()}
    # What the timed stages do not cover (Dagster's own step and check overhead):
    timed = outcome.timings.get("stage_total_s", 0.0) + outcome.timings.get("validate_s", 0.0) + sum(
        outcome.timings.get(k, 0.0) for k in ("documents_s", "upload_s", "catalog_announce_s"))
    timings["rest_s"] = round(publish_s - timed, 2)
    slowest = max(("read_wall_s", "fold_s", "write_s", "validate_s", "documents_s", "upload_s", "catalog_announce_s",
                   "rest_s"),
                  key=lambda k: timings.get(k, 0.0))
    events = sum(p["end_offset"] - p["start_offset"] for p in manifest["snapshot"])
    return {
        "stations": stations,
        "contests_per_station": contests or "default (3)",
        "selections": selections or "default",
        "events": events,
        "path": "dagster job publish (run_publish), as ballotstream publish runs it",
        "table_rows": {n: manifest["tables"][n]["rows"] for n in ("station_results", "station_turnout", "contests",
                                                                   "contest_results", "contest_summary")
                       if n in manifest["tables"]},
        "setup": setup,
        "publish_end_to_end_s": round(publish_s, 1),
        "stages_s": timings,
        "slowest_stage": slowest,
        "gate_passed": gate.passed,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_process_tree_sampled_mb": tree.peak_mb,
        # All read workers together: events consumed, decoded and extracted per second of wall time.
        "read_events_per_s": round(events / outcome.timings["read_wall_s"]),
        "raw_consume_results_topic": {"kafka_python": python_raw, "java_ConsumerPerformance": java_raw},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before_publish": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
    }


def result_name(stations: int, contests: int | None, selections: int | None) -> str:
    """``<N>``, or ``<N>x<contests>x<selections>`` (``-`` for a default) when the shape was asked for."""
    if contests is None and selections is None:
        return str(stations)
    return f"{stations}x{contests or '-'}x{selections or '-'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--keep-topics", action="store_true", help="keep the ingested topics for --reuse-prefix")
    parser.add_argument("--reuse-prefix", help="publish topics ingested by an earlier --keep-topics run")
    parser.add_argument("--contests", type=int, default=None, help="contests per station (synth's default: 3)")
    parser.add_argument("--selections", type=int, default=None, help="selections per contest (synth's default)")
    args = parser.parse_args()
    figures = run(args.stations, args.keep_topics, args.reuse_prefix, args.contests, args.selections)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"publish-{result_name(args.stations, args.contests, args.selections)}.json").write_text(
        json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
