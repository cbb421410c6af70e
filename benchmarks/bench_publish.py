"""Measure a publish of a synthetic election: time per stage and peak memory, beside raw consume rates.

Usage: ``.venv/bin/python -m benchmarks.bench_publish --stations 100000 [--keep-topics]``

Setup (not part of the publish figures): synthesize the election and ingest it into fresh topics (a unique
prefix) on the running local services. Then one publish through the one path users run: the Dagster job
``publish`` in-process (``dagster_project.run.run_publish``, what ``ballotstream publish`` runs), with its stages
timed inside: consume+decode, fold, write (Parquet), validate (Great Expectations), upload (release +
latest.json) and catalog+announce. Beside it, on the same results topic in the same run: kafka-python's raw consume rate (no
decoding) and Kafka's own Java ``ConsumerPerformance``. Figures go to ``benchmarks/results/publish-<N>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from dagster_project.run import run_publish
from pipelines.contract.topics import RESULTS
from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from pipelines.kafka.admin import delete_topics, ensure_topics
from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class TreeRss:
    """Samples the summed RSS of this process and its children: the read workers run beside the parent, so
    the parent's own peak understates what the machine must hold."""

    def __init__(self, every_s: float = 0.25) -> None:
        self.peak_mb = 0.0
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss_kb(pid: str) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _tree(self) -> list[str]:
        me, pids = str(os.getpid()), []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            if ppid == me:
                pids.append(stat.parent.name)
        return [me, *pids]

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(self._rss_kb(pid) for pid in self._tree())
            self.peak_mb = max(self.peak_mb, round(total / 1024, 1))
            self._stop.wait(self._every)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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


def run(stations: int, keep_topics: bool, reuse_prefix: str | None = None) -> dict[str, object]:
    settings = replace(Settings.from_env(), topic_prefix=reuse_prefix or f"bench{uuid.uuid4().hex[:10]}.",
                       dataset=f"bench-{stations}")
    ensure_topics(settings)
    setup: dict[str, object] = {"reused_topics": settings.topic_prefix} if reuse_prefix else {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
            settings = replace(settings, staging_dir=str(Path(tmp) / "staging"))
            if not reuse_prefix:
                t0 = time.perf_counter()
                synthesize(Path(tmp) / "data", stations=stations, seed=1)
                synth_s = time.perf_counter() - t0
                files = [p for p in sorted((Path(tmp) / "data").iterdir()) if p.name != "faults.jsonl"]
                t0 = time.perf_counter()
                report = ingest(files, settings)
                ingest_s = time.perf_counter() - t0
                setup = {"synth_s": round(synth_s, 1), "ingest_s": round(ingest_s, 1),
                         "ingest_events_per_s": round(report.read / ingest_s)}

            t0 = time.perf_counter()
            with TreeRss() as tree:
                outcome = run_publish(settings)
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
    slowest = max(("read_wall_s", "fold_s", "write_s", "validate_s", "upload_s", "catalog_announce_s"),
                  key=lambda k: outcome.timings.get(k, 0.0))
    events = sum(p["end_offset"] - p["start_offset"] for p in manifest["snapshot"])
    return {
        "stations": stations,
        "events": events,
        "path": "dagster job publish (run_publish), as ballotstream publish runs it",
        "station_results_rows": manifest["tables"]["station_results"]["rows"],
        "setup": setup,
        "publish_end_to_end_s": round(publish_s, 1),
        "stages_s": timings,
        "slowest_stage": slowest,
        "gate_passed": gate.passed,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_rss_process_tree_sampled_mb": tree.peak_mb,
        # All read workers together: events consumed, decoded and extracted per second of wall time.
        "read_events_per_s": round(events / outcome.timings["read_wall_s"]),
        "raw_consume_results_topic": {"kafka_python": python_raw, "java_ConsumerPerformance": java_raw},
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--keep-topics", action="store_true", help="keep the ingested topics for --reuse-prefix")
    parser.add_argument("--reuse-prefix", help="publish topics ingested by an earlier --keep-topics run")
    args = parser.parse_args()
    figures = run(args.stations, args.keep_topics, args.reuse_prefix)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"publish-{args.stations}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
