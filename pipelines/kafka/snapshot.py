"""Read topics from the beginning up to a captured set of end offsets: the snapshot a release is built from.

Capturing end offsets first makes a run reproducible: events produced while it runs are left for the next one,
and the manifest records exactly which offsets a release covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipelines.errors import ServiceUnavailable
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


def _consumer(settings: Settings) -> KafkaConsumer:
    try:
        return KafkaConsumer(
            **settings.kafka_config(),
            enable_auto_commit=False,
            # Large fetches: a snapshot reads whole topics, so throughput matters more than latency.
            max_poll_records=10000,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            receive_buffer_bytes=4 * 1024 * 1024,
        )
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc


def capture(settings: Settings, topics: Iterable[str]) -> Snapshot:
    """Capture the beginning and end offsets of every partition of ``topics``."""
    consumer = _consumer(settings)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        begin = consumer.beginning_offsets(partitions)
        end = consumer.end_offsets(partitions)
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()
    return Snapshot(
        start={(tp.topic, tp.partition): begin[tp] for tp in partitions},
        end={(tp.topic, tp.partition): end[tp] for tp in partitions},
    )


def read(settings: Settings, snapshot: Snapshot, decoder: AvroDeserializer | None = None) -> Iterator[LogRecord]:
    """Every record of the snapshot, decoded through the registry's schemas, partition by partition."""
    decoder = decoder or deserializer(settings)
    consumer = _consumer(settings)
    try:
        todo = {TopicPartition(t, p): end for (t, p), end in snapshot.end.items() if end > snapshot.start[(t, p)]}
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, snapshot.start[(tp.topic, tp.partition)])
        while todo:
            batches = consumer.poll(timeout_ms=2000)
            for tp, messages in batches.items():
                end = todo.get(tp)
                if end is None:
                    continue
                for msg in messages:
                    if msg.offset >= end:
                        break
                    schema_id, name, value = decoder.decode(tp.topic, msg.value)
                    yield LogRecord(tp.topic, tp.partition, msg.offset, msg.key.decode() if msg.key else "",
                                    name, schema_id, value)
            # Position, not the last offset seen: compaction and transaction markers leave gaps.
            for tp in [tp for tp, end in todo.items() if consumer.position(tp) >= end]:
                del todo[tp]
                consumer.pause(tp)
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()
