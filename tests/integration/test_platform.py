"""Each local service does real work: Kafka stores and returns records, S3 stores objects (also multipart),
the registry keeps schemas and refuses incompatible ones, and topic drift is reported."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipelines.contract import schemas
from pipelines.contract.topics import ALL_TOPICS, TopicSpec
from pipelines.errors import SchemaError, TopicDrift
from pipelines.kafka.admin import admin_client, ensure_topics
from pipelines.kafka.registry import RegistryClient
from pipelines.release.s3 import s3_client


def test_kafka_round_trip_with_acks_all(services, unique):
    topic = f"test.platform.{unique}"
    ensure_topics(services, [TopicSpec(topic, 2, (), "k", "test", {"retention.ms": "60000"})])
    producer = KafkaProducer(**services.kafka_config(), acks="all")
    sent = [producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode()).get(timeout=30) for i in range(20)]
    producer.close()
    assert {m.partition for m in sent} <= {0, 1}
    consumer = KafkaConsumer(**services.kafka_config(), auto_offset_reset="earliest", consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(topic, p) for p in (0, 1)])
    got = {(m.key.decode(), m.value.decode()) for m in consumer}
    consumer.close()
    assert got == {(f"k{i}", f"v{i}") for i in range(20)}
    admin_client(services).delete_topics([topic])


def test_every_declared_topic_exists_unchanged(services):
    lines = ensure_topics(services, ALL_TOPICS)
    assert all(line.endswith("unchanged") for line in lines), lines


def test_topic_drift_is_reported_not_ignored(services):
    declared = next(t for t in ALL_TOPICS if t.name == "ballotstream.results")
    changed = TopicSpec(declared.name, declared.partitions + 1, (), "k", "drifted", {"retention.ms": "1000"})
    with pytest.raises(TopicDrift, match="partitions 6 != declared 7.*retention.ms=-1 != declared 1000"):
        ensure_topics(services, [changed])
    report = ensure_topics(services, [changed], strict=False)
    assert "drifted" in report[0]


def test_s3_put_get_list_and_multipart(services, unique):
    s3 = s3_client(services)
    bucket = services.release_bucket
    s3.put_object(Bucket=bucket, Key=f"tests/{unique}/a.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key=f"tests/{unique}/a.txt")["Body"].read() == b"hello"
    part = b"x" * (5 * 1024 * 1024)  # S3's minimum size for every part but the last
    upload = s3.create_multipart_upload(Bucket=bucket, Key=f"tests/{unique}/big.bin")
    parts = []
    for number, body in enumerate([part, b"tail"], start=1):
        etag = s3.upload_part(Bucket=bucket, Key=f"tests/{unique}/big.bin", UploadId=upload["UploadId"],
                              PartNumber=number, Body=body)["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
    s3.complete_multipart_upload(Bucket=bucket, Key=f"tests/{unique}/big.bin", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"tests/{unique}/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1]: o["Size"] for o in listed} == {"a.txt": 5, "big.bin": len(part) + 4}


def _record(name: str, fields: list[dict]) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "io.ballotstream.test", "fields": fields})


def test_registry_register_fetch_and_refuse_incompatible(services, unique):
    registry = RegistryClient(services.registry_url)
    assert registry.compatibility() == "BACKWARD"
    subject = f"test.platform.{unique}-io.ballotstream.test.Thing"
    v1 = _record("Thing", [{"name": "id", "type": "string"}])
    schema_id = registry.register(subject, v1)
    assert registry.schema_by_id(schema_id)["fields"][0]["name"] == "id"
    assert registry.register(subject, v1) == schema_id  # idempotent
    # Adding a field with a default is BACKWARD compatible; adding one without a default is not.
    v2 = _record("Thing", [{"name": "id", "type": "string"}, {"name": "n", "type": "int", "default": 0}])
    assert registry.register(subject, v2) != schema_id
    bad = _record("Thing", [{"name": "id", "type": "string"}, {"name": "m", "type": "int"}])
    assert registry.is_compatible(subject, bad) is False
    with pytest.raises(SchemaError, match=f"subject {subject} was refused"):
        registry.register(subject, bad)


@pytest.mark.parametrize("name", ["StationTally", "DivisionDeclared", "ElectionDeclared", "CandidateRegistered",
                                  "ContestDeclared"])
def test_registry_accepts_every_published_version_in_order_under_backward(services, unique, name):
    # The contest model's versions (docs/contests.md): the real registry, not only our checker, must take each
    # published version after the one before it, and the current schema must be the newest published one.
    registry = RegistryClient(services.registry_url)
    assert registry.compatibility() == "BACKWARD"
    subject = f"test.platform.{unique}-{schemas.fullname(name)}"
    versions = schemas.published_versions(name)
    ids = []
    for i, version in enumerate(versions):
        text = json.dumps(version, separators=(",", ":"))
        if i:
            assert registry.is_compatible(subject, text) is True, f"{name} v{i + 1}"
        ids.append(registry.register(subject, text))
    assert len(set(ids)) == len(versions) and len(registry.versions(subject)) == len(versions)
    assert versions[-1] == schemas.raw_schema(name)
    assert registry.register(subject, schemas.schema_json(name)) == ids[-1]
