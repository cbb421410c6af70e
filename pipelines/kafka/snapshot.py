"""Read topics from the beginning up to a captured set of end offsets: the snapshot a release is built from.

Capturing end offsets first makes a run reproducible: events produced while it runs are left for the next one,
and the manifest records exactly which offsets a release covers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from kafka import TopicPartition

from pipelines.kafka import avro_columns, record_batches
from pipelines.kafka.clients import consumer, kafka_errors, read_until
from pipelines.kafka.log_record import ColumnRun, LogRecord
from pipelines.kafka.record_batches import RecordBlock, key_text
from pipelines.kafka.serde import HEADER_SIZE, MAGIC_BYTE, AvroDeserializer, deserializer
from pipelines.settings import Settings


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Per topic-partition start and end offsets (end exclusive), as captured at the start of a run."""

    start: dict[tuple[str, int], int]
    end: dict[tuple[str, int], int]

    def total(self) -> int:
        return sum(self.end[tp] - self.start[tp] for tp in self.end)

    def to_json(self) -> list[dict[str, object]]:
        return [
            {"topic": t, "partition": p, "start_offset": self.start[(t, p)], "end_offset": self.end[(t, p)]}
            for (t, p) in sorted(self.end)
        ]

    def fingerprint(self) -> str:
        """A short stable id for these offsets (two runs of one snapshot share it)."""
        import hashlib

        return hashlib.sha256(repr(sorted(self.end.items())).encode()).hexdigest()[:12]


# Large fetches: a snapshot reads whole topics, so throughput matters more than latency.
_FETCH = {
    "max_poll_records": 10000,
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    "receive_buffer_bytes": 4 * 1024 * 1024,
}
_POLL_MS = 2000


def capture(settings: Settings, topics: Iterable[str]) -> Snapshot:
    """Capture the beginning and end offsets of every partition of ``topics``."""
    source = consumer(settings, **_FETCH)
    try:
        with kafka_errors(settings):
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(source.partitions_for_topic(topic) or ())
            ]
            begin = source.beginning_offsets(partitions)
            end = source.end_offsets(partitions)
    finally:
        source.close()
    return Snapshot(
        start={(tp.topic, tp.partition): begin[tp] for tp in partitions},
        end={(tp.topic, tp.partition): end[tp] for tp in partitions},
    )


def read(settings: Settings, snapshot: Snapshot, decoder: AvroDeserializer | None = None,
         columnar: Collection[str] = ()) -> Iterator[LogRecord | ColumnRun]:
    """Every record of the snapshot, decoded through the registry's schemas, partition by partition.

    Records of the types in ``columnar`` come as ``ColumnRun``s (records of one partition and schema id, decoded
    at once) when the decoder can decode their schema as columns; all others as ``LogRecord``s (``decoded``).
    The consumer hands over whole record batches (``record_batches``), not a Python object per record.
    """
    decoder = decoder or deserializer(settings)
    source = consumer(settings, **_FETCH)
    try:
        with kafka_errors(settings):
            record_batches.install(source)
            todo = {TopicPartition(t, p): end for (t, p), end in snapshot.end.items() if end > snapshot.start[(t, p)]}
            source.assign(list(todo))
            for tp in todo:
                source.seek(tp, snapshot.start[(tp.topic, tp.partition)])
            yield from decoded(read_until(source, todo, poll_ms=_POLL_MS), decoder, columnar)
    finally:
        source.close()


def decoded(blocks: Iterable[tuple[TopicPartition, RecordBlock]], decoder: AvroDeserializer,
            columnar: Collection[str] = ()) -> Iterator[LogRecord | ColumnRun]:
    """``read``'s decoding of consumed record blocks.

    A partition's records of one columnar schema id are collected into a run until it holds ``RUN_RECORDS`` or
    the blocks end, so a run is long even where other record types come between (a reference topic interleaves
    each municipality's divisions and candidates). Each run is in log order, but other records may come out
    before a run's earlier records: the fold does not depend on the order it reads events in
    (``pipelines.fold.versions``).
    """
    runs: dict[tuple[TopicPartition, int], _Run] = {}
    as_columns: dict[int, bool] = {-1: False}
    for tp, block in blocks:
        ids = _schema_ids(block)
        for schema_id in np.unique(ids).tolist():
            rows = block.rows(ids == schema_id)
            wanted = as_columns.get(schema_id)
            if wanted is None:
                wanted = as_columns[schema_id] = decoder.columns_name(schema_id) in columnar
            if not wanted:
                yield from _records(tp, rows, decoder)
                continue
            while len(rows):
                run = runs.get((tp, schema_id))
                if run is None:
                    run = runs[(tp, schema_id)] = _Run(tp, schema_id)
                room = RUN_RECORDS - run.records
                run.add(rows.rows(slice(0, room)))
                rows = rows.rows(slice(room, None))
                if run.records >= RUN_RECORDS:
                    yield runs.pop((tp, schema_id)).decode(decoder)
    for run in runs.values():
        yield run.decode(decoder)


def _records(tp: TopicPartition, block: RecordBlock, decoder: AvroDeserializer) -> Iterator[LogRecord]:
    """A block's records decoded one by one (record types not decoded as columns)."""
    source = _source(tp)
    for row, offset in enumerate(block.offsets.tolist()):
        key = block.key(row)
        schema_id, name, value = decoder.decode(tp.topic, block.value(row))
        yield LogRecord(tp.topic, tp.partition, offset, key_text(key, source, offset) if key else "", name, schema_id,
                        value)


def _source(tp: TopicPartition) -> str:
    return f"topic {tp.topic} partition {tp.partition}"


# Records a run decodes at once: large enough that the per-column work is a small share, small enough that the
# fold's buffers are not held up.
RUN_RECORDS = 4096


def _schema_ids(block: RecordBlock) -> np.ndarray:
    """Each record's Confluent header schema id, -1 when its value is not framed (``decode`` reports why)."""
    at = block.value_at
    data = block.data
    framed = (block.value_size >= HEADER_SIZE) & (data[at] == MAGIC_BYTE)
    word = np.zeros(len(at), np.int64)
    for k in range(1, HEADER_SIZE):
        word = (word << 8) | data[at + k].astype(np.int64)
    return np.where(framed, word, -1)


class _Run:
    """Records of one partition and schema id waiting to be decoded as columns."""

    def __init__(self, tp: TopicPartition, schema_id: int):
        self.tp = tp
        self.schema_id = schema_id
        self.blocks: list[RecordBlock] = []
        self.records = 0

    def add(self, block: RecordBlock) -> None:
        self.blocks.append(block)
        self.records += len(block)

    def decode(self, decoder: AvroDeserializer) -> ColumnRun:
        bodies = [block.values(skip=HEADER_SIZE) for block in self.blocks]
        joined = avro_columns.Joined(b"".join(data for data, _ in bodies), np.concatenate([s for _, s in bodies]))
        values = decoder.decode_run(self.tp.topic, self.schema_id, joined)
        name = decoder.columns_name(self.schema_id) or ""
        keys = pa.concat_arrays([block.keys(_source(self.tp)) for block in self.blocks])
        offsets = np.concatenate([block.offsets for block in self.blocks])
        return ColumnRun(self.tp.topic, self.tp.partition, name, self.schema_id, offsets, keys, values)
