"""Read and extract a snapshot in several processes: consuming and decoding Avro is CPU-bound Python.

The snapshot's partitions are dealt out to workers so each gets about the same number of records. Each worker
consumes its partitions, decodes them through the registry and runs the fold's extraction pass; the parent
then merges the columnar extractions (``pipelines.fold.extract.merge``). The fold
does not depend on record order, so the tables are the same as from one pass (a test holds it to that).

Workers hand their extraction over as Arrow IPC files in a scratch folder under the staging directory, which
the parent memory-maps: nothing is pickled, and no second copy of a worker's share sits in the parent. A caller
that only keeps the extraction (the publish saves it as checkpoint segments) passes ``keep`` instead: each worker
keeps its own share, side by side, and hands back what ``keep`` returned; nothing is merged here.
Workers are spawned (not forked: the caller may be a Dagster run with threads of its own), so a script that
publishes must guard its entry point with ``if __name__ == "__main__":``, as with any ``multiprocessing``.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import ReadWorkerFailed
from pipelines.fold.core import extract_all
from pipelines.fold.extract import Extracted, merge
from pipelines.fold.extract_runs import COLUMNAR_TYPES
from pipelines.fold.extraction_files import load_extraction, save_extraction
from pipelines.kafka import snapshot
from pipelines.kafka.log_record import ColumnRun, LogRecord
from pipelines.kafka.serde import deserializer
from pipelines.settings import Settings

# Below this many records a second process costs more (start-up, imports, transfer) than it saves.
MIN_RECORDS_PER_WORKER = 100_000


@dataclass
class ReadResult:
    """A snapshot's extraction (None when each share was kept: ``kept``) with what reading it took."""

    extracted: Extracted | None
    schema_ids: dict[tuple[str, str], int]  # (topic, record type) -> registry schema id seen
    workers: int
    # Per worker: seconds spent consuming+decoding and extracting; the stage's wall time is in ``wall_s``.
    worker_seconds: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0
    merge_s: float = 0.0
    kept: list[Any] = field(default_factory=list)  # what ``keep`` returned for each share, in merge order

    def timings(self) -> dict[str, float]:
        """Stage timings for the publish report: the slowest worker's figures are the critical path."""
        return {
            "consume_decode_s": max(w["consume_decode_s"] for w in self.worker_seconds),
            "extract_s": max(w["extract_s"] for w in self.worker_seconds),
            "merge_s": self.merge_s,
            "read_wall_s": self.wall_s,
        }


def split(snap: snapshot.Snapshot, parts: int) -> list[snapshot.Snapshot]:
    """Deal the non-empty partitions into at most ``parts`` snapshots of about equal record counts.

    Largest partitions first, each to the currently lightest part; deterministic for a given snapshot.
    """
    sizes = sorted(((snap.end[tp] - snap.start[tp], tp) for tp in snap.end if snap.end[tp] > snap.start[tp]),
                   key=lambda item: (-item[0], item[1]))
    parts = max(1, min(parts, len(sizes)))
    loads = [0] * parts
    members: list[list[tuple[str, int]]] = [[] for _ in range(parts)]
    for size, tp in sizes:
        lightest = loads.index(min(loads))
        loads[lightest] += size
        members[lightest].append(tp)
    return [snapshot.Snapshot(start={tp: snap.start[tp] for tp in m}, end={tp: snap.end[tp] for tp in m})
            for m in members if m]


class _Timed:
    """Wraps the record stream to time consume+decode apart from the extraction that pulls from it."""

    def __init__(self, records: Iterator[LogRecord | ColumnRun]):
        self.records = records
        self.seconds = 0.0
        self.schema_ids: dict[tuple[str, str], int] = {}

    def __iter__(self) -> Iterator[LogRecord | ColumnRun]:
        clock = time.perf_counter
        seen = self.schema_ids
        while True:
            t0 = clock()
            try:
                record = next(self.records)
            except StopIteration:
                self.seconds += clock() - t0
                return
            self.seconds += clock() - t0
            seen[(record.topic, record.record_type)] = record.schema_id
            yield record


def read_part(settings: Settings, part: snapshot.Snapshot) -> tuple[Extracted, dict[tuple[str, str], int],
                                                                    dict[str, float]]:
    """Consume, decode and extract one share of a snapshot (runs in a worker process or in the caller)."""
    started = time.perf_counter()
    timed = _Timed(snapshot.read(settings, part, deserializer(settings, logical_types=False), COLUMNAR_TYPES))
    extracted = extract_all(timed)
    total = time.perf_counter() - started
    return extracted, timed.schema_ids, {"consume_decode_s": timed.seconds, "extract_s": total - timed.seconds}


# Run on each share's extraction where it was read (so it must pickle: a module's function, or a partial of one).
Keep = Callable[[Extracted], Any]


def _read_part_to(settings: Settings, part: snapshot.Snapshot, directory: Path, keep: Keep | None = None
                  ) -> tuple[dict[tuple[str, str], int], dict[str, float], Any]:
    """A worker's job: ``read_part``, with the extraction left as Arrow files in ``directory``, or kept by
    ``keep`` (its result handed back, its seconds as ``keep_s``)."""
    extracted, schema_ids, seconds = read_part(settings, part)
    if keep is None:
        save_extraction(extracted, directory)
        return schema_ids, seconds, None
    started = time.perf_counter()
    kept = keep(extracted)
    seconds["keep_s"] = time.perf_counter() - started
    return schema_ids, seconds, kept


def read_snapshot(settings: Settings, snap: snapshot.Snapshot, workers: int | None = None, *,
                  min_records_per_worker: int | None = None, keep: Keep | None = None) -> ReadResult:
    """Read and extract a whole snapshot with up to ``workers`` processes (default: ``settings.read_workers``).

    Small snapshots use fewer processes: each gets at least ``min_records_per_worker`` records (default:
    ``MIN_RECORDS_PER_WORKER``). With ``keep``, each share's extraction is kept by ``keep`` where it was read, and
    the result holds what it returned (``kept``) instead of the merged extraction.

    Raises:
        ServiceUnavailable: Kafka or the registry cannot be reached (from any worker).
        SerializationError: a record cannot be decoded or lacks an envelope field.
        ReadWorkerFailed: a worker process died without raising (killed, out of memory).
    """
    wanted = settings.read_workers if workers is None else workers
    per_worker = MIN_RECORDS_PER_WORKER if min_records_per_worker is None else min_records_per_worker
    parts = split(snap, max(1, min(wanted, snap.total() // max(1, per_worker))))
    started = time.perf_counter()
    if len(parts) <= 1:
        extracted, schema_ids, seconds = read_part(settings, snap)
        if keep is None:
            return ReadResult(extracted, schema_ids, 1, [seconds], time.perf_counter() - started)
        t0 = time.perf_counter()
        kept = keep(extracted)
        seconds["keep_s"] = time.perf_counter() - t0
        return ReadResult(None, schema_ids, 1, [seconds], time.perf_counter() - started, kept=[kept])
    scratch = Path(settings.staging_dir) / f".read-{uuid.uuid4().hex[:12]}"
    try:
        context = multiprocessing.get_context("spawn")
        # Every share goes to a worker, none to this process: decoding leaves the Python heap fragmented
        # (hundreds of MB that are never handed back), and this process goes on to fold.
        with ProcessPoolExecutor(max_workers=len(parts), mp_context=context) as pool:
            futures = [pool.submit(_read_part_to, settings, part, scratch / str(i), keep)
                       for i, part in enumerate(parts)]
            try:
                done = [f.result() for f in futures]
            except BrokenProcessPool as exc:
                raise ReadWorkerFailed(
                    f"a snapshot read worker died ({exc}); if memory is short, set BALLOTSTREAM_READ_WORKERS=1 "
                    "to read in this process") from exc
        wall = time.perf_counter() - started
        t0 = time.perf_counter()
        # Mapped, not read: the files can go once loaded (the mapping keeps the data until the tables go).
        extracted = None if keep else merge([load_extraction(scratch / str(i)) for i in range(len(parts))])
        merge_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    schema_ids: dict[tuple[str, str], int] = {}
    for ids, _, _ in done:
        schema_ids.update(ids)
    return ReadResult(extracted, schema_ids, len(parts), [sec for _, sec, _ in done], wall, merge_s,
                      [kept for _, _, kept in done] if keep else [])
