"""docs/asyncapi.yaml is exactly what pipelines.contract.asyncapi generates today, describes every topic and record type
with its Avro schema, and its internal references resolve."""

from __future__ import annotations

from typing import Any

import fastavro
import yaml

from pipelines.contract import asyncapi, schemas
from pipelines.contract.topics import ALL_TOPICS

REGENERATE = ".venv/bin/python -m pipelines.contract.asyncapi docs/asyncapi.yaml"


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_committed_document_is_up_to_date():
    committed = asyncapi.DOCUMENT_PATH.read_text(encoding="utf-8")
    assert committed == asyncapi.render(), f"docs/asyncapi.yaml is out of date: run {REGENERATE}"


def test_every_topic_and_record_type_is_described():
    doc = yaml.safe_load(asyncapi.DOCUMENT_PATH.read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["local"] == {**doc["servers"]["local"], "host": "127.0.0.1:19092", "protocol": "kafka"}
    channels = {c["address"]: c for c in doc["channels"].values()}
    assert set(channels) == {t.name for t in ALL_TOPICS}
    for spec in ALL_TOPICS:
        channel = channels[spec.name]
        assert set(channel["messages"]) == set(spec.record_types)
        assert channel["bindings"]["kafka"]["partitions"] == spec.partitions
        assert spec.key in channel["description"] and spec.description in channel["description"]
    messages = doc["components"]["messages"]
    assert set(messages) == {r for t in ALL_TOPICS for r in t.record_types}
    for name, message in messages.items():
        assert message["payload"]["schemaFormat"] == "application/vnd.apache.avro+json;version=1.9.0"
        assert message["payload"]["schema"] == schemas.raw_schema(name)
        fastavro.parse_schema(message["payload"]["schema"])
        assert message["bindings"]["kafka"]["schemaIdPayloadEncoding"] == "confluent"
    assert "magic byte" in doc["info"]["description"] and "TopicRecordNameStrategy" in doc["info"]["description"]


def test_references_resolve():
    doc = yaml.safe_load(asyncapi.DOCUMENT_PATH.read_text(encoding="utf-8"))
    for channel in doc["channels"].values():
        for ref in channel["messages"].values():
            assert _resolve(doc, ref["$ref"])["name"]
    for operation in doc["operations"].values():
        assert operation["action"] in ("send", "receive")
        channel = _resolve(doc, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            # Operation messages must point into their own channel's messages (AsyncAPI 3.0 rule).
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
            assert _resolve(doc, ref["$ref"]) in channel["messages"].values()
