"""Read topics from the beginning up to a captured set of end offsets: the snapshot a release is built from.

Capturing end offsets first makes a run reproducible: events produced while it runs are left for the next one,
and the manifest records exactly which offsets a release covers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import TopicPartition

from pipelines.kafka.clients import consumer, kafka_errors, read_until
from pipelines.kafka.log_record import ColumnRun, LogRecord
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
    """
    decoder = decoder or deserializer(settings)
    source = consumer(settings, **_FETCH)
    try:
        with kafka_errors(settings):
            todo = {TopicPartition(t, p): end for (t, p), end in snapshot.end.items() if end > snapshot.start[(t, p)]}
            source.assign(list(todo))
            for tp in todo:
                source.seek(tp, snapshot.start[(tp.topic, tp.partition)])
            yield from decoded(read_until(source, todo, poll_ms=_POLL_MS), decoder, columnar)
    finally:
        source.close()


def decoded(messages: Iterable[tuple[TopicPartition, Any]], decoder: AvroDeserializer,
            columnar: Collection[str] = ()) -> Iterator[LogRecord | ColumnRun]:
    """``read``'s decoding of consumed messages (anything with ``offset``, ``key`` and ``value``).

    A partition's records of one columnar schema id are collected into a run until it is full or the messages
    end, so a run is long even where other record types come between (a reference topic interleaves each
    municipality's divisions and candidates). Each run is in log order, but other records may come out before
    a run's earlier records: the fold does not depend on the order it reads events in (``pipelines.fold.versions``).
    """
    runs: dict[tuple[TopicPartition, int], _Run] = {}
    as_columns: dict[int | None, bool] = {None: False}
    for tp, msg in messages:
        schema_id = _schema_id(msg.value)
        wanted = as_columns.get(schema_id)
        if wanted is None:
            wanted = as_columns[schema_id] = decoder.columns_name(schema_id) in columnar
        if wanted:
            run = runs.get((tp, schema_id))
            if run is None:
                run = runs[(tp, schema_id)] = _Run(tp, schema_id)
            run.add(msg)
            if len(run.offsets) >= RUN_RECORDS:
                yield runs.pop((tp, schema_id)).decode(decoder)
            continue
        schema_id, name, value = decoder.decode(tp.topic, msg.value)
        yield LogRecord(tp.topic, tp.partition, msg.offset, msg.key.decode() if msg.key else "", name, schema_id,
                        value)
    for run in runs.values():
        yield run.decode(decoder)


# Records a run decodes at once: large enough that the per-column work is a small share, small enough that the
# fold's buffers are not held up.
RUN_RECORDS = 4096


def _schema_id(payload: bytes | None) -> int | None:
    """The Confluent header's schema id, None when the payload is not framed (``decode`` reports why)."""
    if payload is None or len(payload) < HEADER_SIZE or payload[0] != MAGIC_BYTE:
        return None
    return int.from_bytes(payload[1:HEADER_SIZE], "big")


class _Run:
    """Messages of one partition and schema id waiting to be decoded as columns."""

    def __init__(self, tp: TopicPartition, schema_id: int):
        self.tp = tp
        self.schema_id = schema_id
        self.offsets: list[int] = []
        self.keys: list[str] = []
        self.bodies: list[memoryview] = []

    def add(self, msg: Any) -> None:
        self.offsets.append(msg.offset)
        self.keys.append(msg.key.decode() if msg.key else "")
        self.bodies.append(memoryview(msg.value)[HEADER_SIZE:])

    def decode(self, decoder: AvroDeserializer) -> ColumnRun:
        values = decoder.decode_run(self.tp.topic, self.schema_id, self.bodies)
        name = decoder.columns_name(self.schema_id) or ""
        return ColumnRun(self.tp.topic, self.tp.partition, name, self.schema_id, self.offsets, self.keys, values)
