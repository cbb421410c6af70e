"""Subscribe to Ballotstream's topics: decoded events as JSON-ready dicts, and release announcements.

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
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from pipelines.contract import topics
from pipelines.contract.record_types import derive_event_id
from pipelines.errors import ConfigError, ServiceUnavailable
from pipelines.kafka.serde import deserializer, serializer
from pipelines.settings import Settings

RECORD_TYPE = "ReleasePublished"
# Short names a user may give instead of a topic's full name (`ballotstream subscribe results`).
SHORT_NAMES: dict[str, topics.TopicSpec] = {
    "reference": topics.REFERENCE,
    "results": topics.RESULTS,
    "observations": topics.OBSERVATIONS,
    "news": topics.NEWS,
    "releases": topics.RELEASES,
    "deadletter": topics.DEAD_LETTER,
}
# Who the announcements come from (the Source of the ReleasePublished envelope).
PUBLISHER = {"organisation": "Ballotstream", "kind": "OTHER", "url": None}
_POLL_MS = 500
# Commit at most this often while reading: a commit per event would be a round trip per event.
_COMMIT_EVERY = 1000
_SEND_TIMEOUT_S = 30.0


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


def _consumer(settings: Settings, group: str | None) -> KafkaConsumer:
    try:
        return KafkaConsumer(**settings.kafka_config(), group_id=group, enable_auto_commit=False)
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc


def _start(consumer: KafkaConsumer, partitions: list[TopicPartition], from_beginning: bool,
           group: str | None) -> None:
    """Seek each partition to the group's committed offset, else to its beginning or end."""
    fallback = consumer.beginning_offsets(partitions) if from_beginning else consumer.end_offsets(partitions)
    for tp in partitions:
        committed = consumer.committed(tp) if group else None
        consumer.seek(tp, committed if committed is not None else fallback[tp])


def subscribe(settings: Settings, topic: str, *, from_beginning: bool = False, follow: bool = False,
              group: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the events of one topic, decoded through the schema registry.

    Args:
        settings: Kafka and registry addresses, and the topic prefix.
        topic: a short name (reference, results, observations, news, releases, deadletter) or a full name.
        from_beginning: start at the oldest event; otherwise at the end (only new events). A group with
            committed offsets resumes from them either way.
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
    consumer = _consumer(settings, group)
    done: dict[TopicPartition, int] = {}
    try:
        numbers = consumer.partitions_for_topic(live)
        if not numbers:
            raise ServiceUnavailable(f"topic {live} does not exist on {settings.kafka_bootstrap_servers}")
        partitions = [TopicPartition(live, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        _start(consumer, partitions, from_beginning, group)
        if group:
            # Commit where every partition starts, read or not: a resumed read of a partition this run never
            # reached must start where this run would have, not at the end.
            done = {tp: consumer.position(tp) for tp in partitions}
        # Captured before reading: what "up to now" means without --follow.
        end = consumer.end_offsets(partitions)
        todo = {tp for tp in partitions if consumer.position(tp) < end[tp]}
        since_commit = 0
        while follow or todo:
            for tp, messages in consumer.poll(timeout_ms=_POLL_MS).items():
                for msg in messages:
                    if not follow and msg.offset >= end[tp]:
                        break
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
                consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in done.items()})
                since_commit = 0
            if not follow:
                # Position, not the last offset seen: compaction and transaction markers leave gaps.
                todo = {tp for tp in todo if consumer.position(tp) < end[tp]}
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
    finally:
        try:
            if group and done:
                consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in done.items()})
        finally:
            consumer.close()


def release_published_event(manifest: dict[str, Any], manifest_url: str, *,
                            published_at: dt.datetime | None = None) -> dict[str, Any]:
    """The ``ReleasePublished`` value announcing a release, built from its manifest.

    Args:
        manifest: the release's ``manifest.json`` (dataset, release_id, tables with rows, gate).
        manifest_url: public URL of that manifest.
        published_at: when ``latest.json`` was switched; default now.

    Returns:
        A value for the ``ReleasePublished`` schema; its ``event_id`` is derived from the content, so
        announcing one release twice gives one id.
    """
    now = dt.datetime.now(dt.UTC)
    value: dict[str, Any] = {
        "occurred_at": published_at or now,
        "recorded_at": now,
        "source": dict(PUBLISHER),
        "supersedes": None,
        "synthetic": False,
        "dataset": manifest["dataset"],
        "release_id": manifest["release_id"],
        "manifest_url": manifest_url,
        "rows": {name: int(t["rows"]) for name, t in manifest.get("tables", {}).items()},
        "gate_passed": bool((manifest.get("gate") or {}).get("passed", False)),
    }
    return {"event_id": derive_event_id(RECORD_TYPE, value), **value}


def announce_release(settings: Settings, value: dict[str, Any]) -> dict[str, Any]:
    """Produce a ``ReleasePublished`` value to the releases topic, keyed by dataset, and wait for the ack.

    Returns:
        ``{"topic", "partition", "offset"}`` of the announcement.

    Raises:
        ServiceUnavailable: Kafka did not acknowledge it.
        SerializationError: the value does not fit the schema.
    """
    live = settings.topic(topics.RELEASES.name)
    # Encoded before connecting, so a value that does not fit the schema fails without touching Kafka.
    body = serializer(settings).encode(live, RECORD_TYPE, value)
    try:
        # One small message: a dedicated idempotent acks=all producer, not the bulk-load one of ingest.
        sender = KafkaProducer(**settings.kafka_config(), acks="all", enable_idempotence=True)
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
    try:
        meta = sender.send(live, key=str(value["dataset"]).encode(), value=body).get(timeout=_SEND_TIMEOUT_S)
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: announcing a release: {exc}") from exc
    finally:
        sender.close()
    return {"topic": meta.topic, "partition": meta.partition, "offset": meta.offset}
