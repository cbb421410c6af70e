"""Kafka clients built from settings, the one way a Kafka failure becomes ``ServiceUnavailable``, and the one
loop that reads assigned partitions up to given end offsets.

Every client gets its connection and security options from :meth:`Settings.kafka_config`; callers add only
what their use needs (a group id, fetch sizes, batching).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from pipelines.errors import ServiceUnavailable
from pipelines.kafka.record_batches import RecordBlock
from pipelines.settings import Settings


@contextmanager
def kafka_errors(settings: Settings, doing: str = "") -> Iterator[None]:
    """Turn a ``KafkaError`` raised inside the block into ``ServiceUnavailable`` naming the bootstrap servers.

    Args:
        settings: whose ``kafka_bootstrap_servers`` the message names.
        doing: what was being done (``"announcing a release"``), put in the message when given.
    """
    try:
        yield
    except KafkaError as exc:
        what = f"{doing}: " if doing else ""
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {what}{exc}") from exc


def consumer(settings: Settings, **options: Any) -> KafkaConsumer:
    """A consumer with the settings' connection and security options, never auto-committing.

    Args:
        settings: where Kafka is and how to authenticate.
        options: further ``KafkaConsumer`` options (``group_id``, fetch sizes, ...).

    Raises:
        ServiceUnavailable: Kafka does not answer.
    """
    with kafka_errors(settings):
        return KafkaConsumer(**settings.kafka_config(), enable_auto_commit=False, **options)


def producer(settings: Settings, **options: Any) -> KafkaProducer:
    """An idempotent, ``acks=all`` producer with the settings' connection and security options.

    Args:
        settings: where Kafka is and how to authenticate.
        options: further ``KafkaProducer`` options (batching, serializers, ...).

    Raises:
        ServiceUnavailable: Kafka does not answer.
    """
    with kafka_errors(settings):
        return KafkaProducer(**settings.kafka_config(), acks="all", enable_idempotence=True, **options)


def read_until(source: KafkaConsumer, end: Mapping[TopicPartition, int] | None, *,
               poll_ms: int) -> Iterator[tuple[TopicPartition, ConsumerRecord | RecordBlock]]:
    """The messages of ``source``'s assigned partitions, from their current positions, up to ``end``.

    Args:
        source: a consumer with partitions assigned and positioned (seeked).
        end: per partition, the offset to stop before (exclusive); a partition not in it, or already there, is
            not read. None: no end, keep polling (follow).
        poll_ms: how long one poll waits for data.

    Yields:
        ``(partition, message)`` in partition order as the broker delivers them; with
        ``record_batches.install``, a message is a ``RecordBlock`` of a batch's records. A partition that
        reaches its end is paused, so its later messages are not fetched.
    """
    todo = None if end is None else {tp: stop for tp, stop in end.items() if source.position(tp) < stop}
    while todo is None or todo:
        for tp, messages in source.poll(timeout_ms=poll_ms).items():
            stop = None if todo is None else todo.get(tp)
            if todo is not None and stop is None:
                continue
            for msg in messages:
                if stop is not None and msg.offset >= stop:
                    break
                if stop is not None and isinstance(msg, RecordBlock):  # a batch may run past the end
                    msg = msg.upto(stop)
                yield tp, msg
        if todo is not None:
            # Position, not the last offset seen: compaction and transaction markers leave gaps.
            for tp in [tp for tp, stop in todo.items() if source.position(tp) >= stop]:
                del todo[tp]
                source.pause(tp)
