"""Read topics from the beginning up to a captured set of end offsets: the snapshot a release is built from.

Capturing end offsets first makes a run reproducible: events produced while it runs are left for the next one,
and the manifest records exactly which offsets a release covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kafka import TopicPartition

from pipelines.kafka.clients import consumer, kafka_errors, read_until
from pipelines.kafka.log_record import LogRecord
from pipelines.kafka.serde import AvroDeserializer, deserializer
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


def read(settings: Settings, snapshot: Snapshot, decoder: AvroDeserializer | None = None) -> Iterator[LogRecord]:
    """Every record of the snapshot, decoded through the registry's schemas, partition by partition."""
    decoder = decoder or deserializer(settings)
    source = consumer(settings, **_FETCH)
    try:
        with kafka_errors(settings):
            todo = {TopicPartition(t, p): end for (t, p), end in snapshot.end.items() if end > snapshot.start[(t, p)]}
            source.assign(list(todo))
            for tp in todo:
                source.seek(tp, snapshot.start[(tp.topic, tp.partition)])
            for tp, msg in read_until(source, todo, poll_ms=_POLL_MS):
                schema_id, name, value = decoder.decode(tp.topic, msg.value)
                yield LogRecord(tp.topic, tp.partition, msg.offset, msg.key.decode() if msg.key else "",
                                name, schema_id, value)
    finally:
        source.close()
