"""Who may read Kafka, against the real broker: the subscriber principal, on the SASL/SCRAM-SHA-512 listener,
consumes the public topics (results, releases) and writes nothing. Every write it attempts (a produce to each
topic, creating and deleting topics, changing a topic's config, granting itself an ACL, changing a SCRAM
credential, committing offsets of a group outside its prefix) is counted and must be refused: 100 %. The
dead-letter topic (raw rejected input) is neither listed nor readable. The grant is made by
``infra.kafka_access.ensure_subscriber``, the function `make up` runs, for this test's own topic prefix."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ConfigResource,
    ConfigResourceType,
    NewTopic,
    ResourcePattern,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kafka.errors import AuthorizationError
from kafka.structs import OffsetAndMetadata

from infra.health import port_open
from infra.kafka_access import PUBLIC_TOPICS, ensure_subscriber, live_acls, principal, remove_topic_acls
from pipelines.contract import topics
from pipelines.settings import Settings


@pytest.fixture
def granted(isolated: Settings) -> Iterator[Settings]:
    address = isolated.kafka_subscriber_bootstrap_servers.split(",")[0]
    assert port_open(address), (f"Kafka's subscriber listener {address} is closed: the running broker predates it, "
                                "restart it (make down && make up)")
    ensure_subscriber(isolated)
    yield isolated
    remove_topic_acls(isolated)


def _produce(settings: Settings, records: dict[str, list[bytes]]) -> None:
    """The pipeline's principal (PLAINTEXT listener, a super user) writes raw records."""
    producer = KafkaProducer(**settings.kafka_config())
    for topic, values in records.items():
        for i, value in enumerate(values):
            producer.send(topic, key=f"k{i}".encode(), value=value)
    producer.flush(30)
    producer.close()


def _end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(**settings.kafka_config())
    try:
        partitions = [TopicPartition(settings.topic(spec.name), p) for spec in topics.ALL_TOPICS
                      for p in range(spec.partitions)]
        return dict(consumer.end_offsets(partitions))
    finally:
        consumer.close()


def _subscriber_consumer(settings: Settings, **options: Any) -> KafkaConsumer:
    return KafkaConsumer(**settings.subscriber_kafka_config(), enable_auto_commit=False,
                         auto_offset_reset="earliest", request_timeout_ms=15000, **options)


def _consume(settings: Settings, topic: str, group: str, expected: int) -> list[bytes]:
    consumer = _subscriber_consumer(settings, group_id=group)
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while len(values) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                values.extend(r.value for r in batch)
        consumer.commit()  # offsets of a group under the granted prefix
    finally:
        consumer.close()
    return values


def test_subscriber_reads_results_and_releases(granted: Settings, unique: str):
    results, releases = granted.topic(topics.RESULTS.name), granted.topic(topics.RELEASES.name)
    _produce(granted, {results: [b"tally-1", b"tally-2", b"tally-3"], releases: [b"release-1"]})
    group = f"{granted.kafka_subscriber_group_prefix}{unique}"
    assert sorted(_consume(granted, results, group, 3)) == [b"tally-1", b"tally-2", b"tally-3"]
    assert _consume(granted, releases, group, 1) == [b"release-1"]


def _assigned_poll(consumer: KafkaConsumer, partition: TopicPartition, seconds: float) -> list[bytes]:
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    values: list[bytes] = []
    deadline = time.monotonic() + seconds
    while not values and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            values.extend(r.value for r in batch)
    return values


def test_subscriber_cannot_see_or_read_the_dead_letter_topic(granted: Settings):
    deadletter = granted.topic(topics.DEAD_LETTER.name)
    raw = b'{"raw": "rejected input"}'
    _produce(granted, {deadletter: [raw]})
    partition = TopicPartition(deadletter, 0)
    pipeline = KafkaConsumer(**granted.kafka_config(), enable_auto_commit=False)
    try:  # the control: the record is there for the pipeline's principal
        assert _assigned_poll(pipeline, partition, 30) == [raw]
    finally:
        pipeline.close()
    consumer = _subscriber_consumer(granted)
    try:
        visible = consumer.topics()
        assert granted.topic(topics.RESULTS.name) in visible and deadletter not in visible
        with pytest.raises(AuthorizationError):  # ListOffsets answers TOPIC_AUTHORIZATION_FAILED
            consumer.end_offsets([partition])
        # kafka-python logs a refused fetch instead of raising: nothing arrives.
        assert _assigned_poll(consumer, partition, 5) == []
    finally:
        consumer.close()


def _refused(attempt: Callable[[], Any]) -> bool:
    """True when the broker refused the attempt as unauthorised, False when it went through.

    Admin calls answer some refusals in their result instead of raising (create_acls, alter_configs,
    alter_user_scram_credentials); any other error fails the test, since it would prove nothing.
    """
    try:
        outcome = attempt()
    except AuthorizationError:
        return True
    answers = [answer.lower() for answer in _answers(outcome)]
    # The controller answers a refused SCRAM change with "... needs ALTER permission.", not an error name.
    return bool(answers) and all("authoriz" in answer or "needs alter permission" in answer for answer in answers)


def _answers(outcome: Any) -> list[str]:
    """Each per-item answer in an admin result, as text ("ok" for a success)."""
    if isinstance(outcome, dict) and "failed" in outcome:  # create_acls: {"succeeded": [...], "failed": [...]}
        return [getattr(e, "__name__", str(e)) for e in outcome["failed"]] + ["ok"] * len(outcome["succeeded"])
    if isinstance(outcome, dict):  # alter_configs: {type: {name: "OK" | error}}; SCRAM: {user: None | error}
        return [a for value in outcome.values() for a in (_answers(value) if isinstance(value, dict)
                                                         else [str(value or "ok")])]
    return ["ok"]


def _write_attempts(settings: Settings, unique: str, producer: KafkaProducer,
                    admin: KafkaAdminClient) -> dict[str, Callable[[], Any]]:
    """Every kind of write, each as the subscriber: one produce per declared topic, then the admin writes."""
    results = settings.topic(topics.RESULTS.name)
    def produce(topic: str) -> Callable[[], Any]:
        return lambda: producer.send(topic, b"forged").get(timeout=30)

    attempts = {f"produce to {spec.name}": produce(settings.topic(spec.name)) for spec in topics.ALL_TOPICS}
    attempts |= {
        "create a topic": lambda: admin.create_topics([NewTopic(settings.topic(f"intruder-{unique}"), 1, 1)]),
        "delete the results topic": lambda: admin.delete_topics([results]),
        "change the results topic's retention": lambda: admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, results, configs={"retention.ms": "1000"})],
            raise_on_unknown=False, incremental=True),
        "grant itself WRITE on results": lambda: admin.create_acls([ACL(
            principal(settings), "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
            ResourcePattern(ResourceType.TOPIC, results))]),
        "change its SCRAM credential": lambda: admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            settings.kafka_subscriber_username, ScramMechanism.SCRAM_SHA_512, "changed")]),
        "commit offsets of a group outside its prefix": lambda: _commit_outside_prefix(settings, unique),
    }
    return attempts


def _commit_outside_prefix(settings: Settings, unique: str) -> None:
    consumer = _subscriber_consumer(settings, group_id=f"intruder-{unique}")
    try:
        partition = TopicPartition(settings.topic(topics.RESULTS.name), 0)
        consumer.assign([partition])
        consumer.commit({partition: OffsetAndMetadata(0, "", -1)})
    finally:
        consumer.close()


def test_every_write_by_the_subscriber_is_refused(granted: Settings, unique: str):
    before = _end_offsets(granted)
    producer = KafkaProducer(**granted.subscriber_kafka_config(), enable_idempotence=False, retries=0,
                             max_block_ms=15000, request_timeout_ms=15000)
    admin = KafkaAdminClient(**granted.subscriber_kafka_config(), request_timeout_ms=15000)
    try:
        refused = {label: _refused(attempt) for label, attempt in _write_attempts(granted, unique, producer,
                                                                                   admin).items()}
    finally:
        producer.close()
        admin.close()
    print(f"\nchaos: subscriber writes refused: {sum(refused.values())} of {len(refused)} "
          f"({100 * sum(refused.values()) / len(refused):.0f} %)")
    assert [label for label, ok in refused.items() if not ok] == []
    assert len(refused) == len(topics.ALL_TOPICS) + 6
    # And nothing changed: no record written, no topic created, the grant exactly as provisioned.
    assert _end_offsets(granted) == before
    admin = KafkaAdminClient(**granted.kafka_config())
    try:
        assert not [t for t in admin.list_topics() if "intruder" in t]
    finally:
        admin.close()
    ours = {a for a in live_acls(granted)
            if a.resource_pattern.resource_name in {granted.topic(s.name) for s in topics.ALL_TOPICS}}
    assert ours == {a for a in ours if a.resource_pattern.resource_name in
                    {granted.topic(s.name) for s in PUBLIC_TOPICS}}
    assert {a.operation for a in ours} == {ACLOperation.READ, ACLOperation.DESCRIBE}
    still = _subscriber_consumer(granted)  # its credential is the provisioned one still
    try:
        assert granted.topic(topics.RESULTS.name) in still.topics()
    finally:
        still.close()
