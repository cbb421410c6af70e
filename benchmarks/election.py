"""The synthetic election the benchmarks start from: settings on fresh topics, the generated files, a timed ingest.

Shared by ``bench_ingest``, ``bench_publish`` and ``bench_live`` so they build the same election the same way.
"""

from __future__ import annotations

import resource
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.rss import TreeRss
from pipelines.generator.synth import SynthReport, synthesize
from pipelines.ingest.run import ingest
from pipelines.settings import Settings

# Written by the generator beside the events when it injects faults; never an input.
FAULT_LOG = "faults.jsonl"


def shape(contests: int | None, selections: int | None) -> dict[str, Any]:
    """The generator's keyword arguments for ``--contests`` / ``--selections`` (None: the generator's default)."""
    return {"contests": contests, "selections": selections} if contests is not None else {"selections": selections}


def fresh_settings(**changes: Any) -> Settings:
    """Settings from the environment with a unique topic prefix (and ``changes``), so a run never sees another's
    events."""
    return replace(Settings.from_env(), topic_prefix=f"bench{uuid.uuid4().hex[:10]}.", **changes)


def synthesize_files(out_dir: Path, stations: int, contests: int | None, selections: int | None
                     ) -> tuple[list[Path], SynthReport, float]:
    """Generate the election (seed 1) into ``out_dir``: its input files, the generator's report and the seconds."""
    started = time.perf_counter()
    report = synthesize(out_dir, stations=stations, seed=1, **shape(contests, selections))
    seconds = time.perf_counter() - started
    return [p for p in sorted(out_dir.iterdir()) if p.name != FAULT_LOG], report, seconds


def ingest_timed(files: list[Path], settings: Settings) -> dict[str, Any]:
    """Ingest ``files`` as ``ballotstream ingest`` does; the figures of the setup step (not a benchmark result).

    Raises:
        RuntimeError: Kafka did not acknowledge every record (the figures built on it would be wrong).
    """
    started = time.perf_counter()
    with TreeRss() as tree:
        report = ingest(files, settings)
    seconds = time.perf_counter() - started
    if report.failed:
        raise RuntimeError(f"ingest: {len(report.failed)} records not acknowledged, e.g. {report.failed[:3]}")
    return {"ingest_s": round(seconds, 1), "ingest_events_per_s": round(report.read / seconds),
            "ingest_rejected": report.rejected_total, "ingest_peak_rss_process_tree_sampled_mb": tree.peak_mb,
            "ingest_produced": report.produced_total}


def peak_rss_mb() -> float:
    """This process's own peak resident memory so far."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
