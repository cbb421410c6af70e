"""Reading a snapshot in several processes against the real Kafka and registry gives the same tables."""

from __future__ import annotations

import io
from dataclasses import replace

import pyarrow.parquet as pq

from pipelines.fold import TABLE_NAMES, fold
from pipelines.fold import read as read_module
from pipelines.fold.core import fold_extracted
from pipelines.fold.read import read_snapshot
from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from pipelines.kafka import snapshot
from pipelines.release import checkpoint
from pipelines.release.pipeline import event_topic_names


def _bytes(table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def test_three_worker_read_folds_to_the_same_bytes_as_one_pass(isolated, tmp_path):
    synthesize(tmp_path, stations=300, seed=11, faults=0.02)  # corrections, retractions, duplicates too
    files = sorted((p for p in tmp_path.iterdir() if p.name != "faults.jsonl"), key=lambda p: "reference" not in p.name)
    ingest(files, isolated)
    snap = snapshot.capture(isolated, event_topic_names(isolated))

    parallel = read_snapshot(isolated, snap, workers=3, min_records_per_worker=1)
    assert parallel.workers == 3
    assert sum(1 for _ in parallel.worker_seconds) == 3
    assert parallel.extracted.envelope.num_rows == snap.total()
    schema_ids = dict(parallel.schema_ids)
    split_tables = fold_extracted(parallel.extracted, "x")

    single = read_snapshot(isolated, snap, workers=1)
    assert single.workers == 1 and single.schema_ids == schema_ids
    whole = fold(snapshot.read(isolated, snap), "x")
    for name in TABLE_NAMES:
        assert _bytes(split_tables[name]) == _bytes(whole[name]), name


def test_read_workers_save_their_shares_as_segments_that_fold_to_the_same_bytes(isolated, tmp_path, monkeypatch):
    """The publish's read: each worker saves its share as a checkpoint segment where it read it, and nothing
    passes through the parent; combined, the segments fold to the bytes of one pass."""
    synthesize(tmp_path, stations=300, seed=12, faults=0.02)
    files = sorted((p for p in tmp_path.iterdir() if p.name != "faults.jsonl"), key=lambda p: "reference" not in p.name)
    ingest(files, isolated)
    snap = snapshot.capture(isolated, event_topic_names(isolated))
    monkeypatch.setattr(read_module, "MIN_RECORDS_PER_WORKER", 1)
    settings = replace(isolated, read_workers=3)
    cache = tmp_path / "segments"
    done = checkpoint.read_range(settings, snap, cache)
    assert done.workers == 3 and len(done.segments) == 3
    assert done.timings["checkpoint_save_s"] > 0  # the slowest worker's save
    ext = checkpoint.combine(settings, snap, checkpoint.Base(None, "full rebuild"), [done], None, cache)
    assert ext.extracted.envelope.num_rows == snap.total()
    assert [s.segment_id for s in ext.pending.checkpoint.segments] == [s.segment_id for s in done.segments]
    split_tables = fold_extracted(ext.extracted, "x")
    whole = fold(snapshot.read(isolated, snap), "x")
    for name in TABLE_NAMES:
        assert _bytes(split_tables[name]) == _bytes(whole[name]), name


def test_a_killed_worker_is_a_clear_error(isolated, tmp_path):
    """What the out-of-memory killer would do to a worker: the read fails with a typed error saying what to try."""
    import multiprocessing
    import os
    import signal
    import threading
    import time

    import pytest

    from pipelines.errors import ReadWorkerFailed

    synthesize(tmp_path, stations=300, seed=3)
    ingest(sorted((p for p in tmp_path.iterdir() if p.name != "faults.jsonl"),
                  key=lambda p: "reference" not in p.name), isolated)
    snap = snapshot.capture(isolated, event_topic_names(isolated))
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_snapshot(isolated, snap, workers=2, min_records_per_worker=1)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    # Daemon: should the pool ever hang, the test fails instead of holding pytest open.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    # Both workers started (killing one while the pool is still spawning the other is not the case tested).
    while len(multiprocessing.active_children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
    reader.join(timeout=60)
    assert outcome, "the read neither finished nor failed within 60 s"
    assert isinstance(outcome[0], ReadWorkerFailed), outcome[0]
    with pytest.raises(ReadWorkerFailed, match="BALLOTSTREAM_READ_WORKERS=1"):
        raise outcome[0]
