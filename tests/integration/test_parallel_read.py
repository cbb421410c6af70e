"""Reading a snapshot in several processes against the real Kafka and registry gives the same tables."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from pipelines import snapshot
from pipelines.fold import TABLE_NAMES, fold
from pipelines.fold.core import fold_extracted
from pipelines.ingest.run import ingest
from pipelines.parallel_read import read_snapshot
from pipelines.publish import event_topic_names
from pipelines.synth import synthesize


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
