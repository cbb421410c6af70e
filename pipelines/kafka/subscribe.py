"""Subscribe to Ballotstream's topics: decoded events as JSON-ready dicts.

``subscribe`` reads one topic from its beginning (or its end) and either stops at the end offsets captured when
it started (a reproducible read, like a snapshot) or follows new events. With a consumer group it resumes where
the group left off: the offsets of events the caller has moved past are committed as it goes and on close
(at-least-once: the event being handled when the caller stops is read again on resume).
The group is used for resuming, not for sharing partitions: every subscriber reads all partitions of the topic
(the partitions are assigned, not balanced), so a reader never waits for a group rebalance.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipelines.contract import topics
from pipelines.errors import ConfigError, ServiceUnavailable
from pipelines.kafka.clients import consumer, kafka_errors, read_until
from pipelines.kafka.serde import deserializer
from pipelines.settings import Settings

# Short names a user may give instead of a topic's full name (`ballotstream subscribe results`): the ingest
# kinds, plus the two topics Ballotstream writes itself.
SHORT_NAMES: dict[str, topics.TopicSpec] = {
    **topics.TOPIC_BY_KIND,
    "releases": topics.RELEASES,
    "deadletter": topics.DEAD_LETTER,
}
_POLL_MS = 500
# Commit at most this often while reading: a commit per event would be a round trip per event.
_COMMIT_EVERY = 1000


def resolve_topic(settings: Settings, topic: str) -> str:
    """The live topic name for a short name (``results``), a declared name or an already live name.

    Raises:
        ConfigError: the name is neither a short name nor a declared topic (with or without the prefix).
    """
    if topic in SHORT_NAMES:
        return settings.topic(SHORT_NAMES[topic].name)
    declared = {t.name for t in topics.ALL_TOPICS}
    if topic in declared:
        return settings.topic(topic)
    if topic.startswith(settings.topic_prefix) and topic[len(settings.topic_prefix):] in declared:
        return topic
    raise ConfigError(f"unknown topic {topic!r}; use one of {', '.join(SHORT_NAMES)} or a full topic name")


def json_ready(value: Any) -> Any:
    """A decoded Avro value with datetimes and dates as ISO 8601 text and bytes as base64 (json.dumps-able)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _start(source: KafkaConsumer, partitions: list[TopicPartition], from_beginning: bool,
           group: str | None, start: Mapping[int, int] | None = None) -> None:
    """Seek each partition to the group's committed offset, else to its ``start`` offset (not before its
    beginning), else to its beginning or end."""
    first = source.beginning_offsets(partitions) if from_beginning or start else {}
    fallback = first if from_beginning else source.end_offsets(partitions)
    for tp in partitions:
        position = source.committed(tp) if group else None
        if position is None and start and tp.partition in start:
            position = max(start[tp.partition], first[tp])
        source.seek(tp, position if position is not None else fallback[tp])


def subscribe(settings: Settings, topic: str, *, from_beginning: bool = False, follow: bool = False,
              group: str | None = None, start: Mapping[int, int] | None = None) -> Iterator[dict[str, Any]]:
    """Yield the events of one topic, decoded through the schema registry.

    Args:
        settings: Kafka and registry addresses, and the topic prefix.
        topic: a short name (reference, results, observations, news, releases, deadletter) or a full name.
        from_beginning: start at the oldest event; otherwise at the end (only new events). A group with
            committed offsets resumes from them either way; else a partition in ``start`` starts at its offset.
        follow: keep waiting for new events; otherwise stop at the end offsets captured at the start.
        group: consumer group id whose committed offsets make the read resumable; None commits nothing.

    Yields:
        ``{"topic", "partition", "offset", "key", "timestamp", "record_type", "schema_id", "value"}``, JSON-ready
        (timestamps ISO 8601); a tombstone has ``record_type`` and ``value`` None.

    Raises:
        ConfigError: the topic is unknown.
        ServiceUnavailable: Kafka does not answer or the topic does not exist.
        SerializationError: a message cannot be decoded.
    """
    live = resolve_topic(settings, topic)
    decoder = deserializer(settings)
    source = consumer(settings, group_id=group)
    done: dict[TopicPartition, int] = {}
    try:
        with kafka_errors(settings):
            numbers = source.partitions_for_topic(live)
            if not numbers:
                raise ServiceUnavailable(f"topic {live} does not exist on {settings.kafka_bootstrap_servers}")
            partitions = [TopicPartition(live, p) for p in sorted(numbers)]
            source.assign(partitions)
            _start(source, partitions, from_beginning, group, start)
            if group:
                # Commit where every partition starts, read or not: a resumed read of a partition this run never
                # reached must start where this run would have, not at the end.
                done = {tp: source.position(tp) for tp in partitions}
            # Captured before reading: what "up to now" means without --follow.
            end = None if follow else source.end_offsets(partitions)
            since_commit = 0
            for tp, msg in read_until(source, end, poll_ms=_POLL_MS):
                schema_id, name, value = (None, None, None) if msg.value is None else \
                    decoder.decode(tp.topic, msg.value)
                yield {"topic": tp.topic, "partition": tp.partition, "offset": msg.offset,
                       "key": msg.key.decode() if msg.key is not None else None,
                       "timestamp": dt.datetime.fromtimestamp(msg.timestamp / 1000, dt.UTC).isoformat(),
                       "record_type": name, "schema_id": schema_id, "value": json_ready(value)}
                # Reached only when the caller asks for the next event: this one is handled.
                done[tp] = msg.offset + 1
                since_commit += 1
                if group and since_commit >= _COMMIT_EVERY:
                    source.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in done.items()})
                    since_commit = 0
    finally:
        try:
            if group and done:
                with kafka_errors(settings):
                    source.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in done.items()})
        finally:
            source.close()
