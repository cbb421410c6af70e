"""Generate the AsyncAPI 3.0 document of every Kafka topic (``docs/asyncapi.yaml``).

Built only from the declarations (``pipelines/contract/topics.py``, ``pipelines/contract/record_types.py``) and the Avro contracts
(``schemas/*.avsc``), so it cannot disagree with them; tests/unit/test_asyncapi.py fails when the committed file
is out of date. Regenerate with::

    .venv/bin/python -m pipelines.contract.asyncapi docs/asyncapi.yaml
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from pipelines.contract import schemas
from pipelines.contract.record_types import EVENT_TYPE_BY_NAME
from pipelines.contract.topics import ALL_TOPICS, TopicSpec, subject_name
from pipelines.settings import Settings

ASYNCAPI_VERSION = "3.0.0"
AVRO_SCHEMA_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
# The message body is binary: Confluent framing around Avro binary encoding.
CONTENT_TYPE = "application/octet-stream"
KAFKA_BINDING_VERSION = "0.5.0"
SERVER = "local"
DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"

WIRE_FORMAT = """\
Every message value uses the Confluent wire format: byte 0 is the magic byte `0`, bytes 1-4 the schema id
(big-endian unsigned 32-bit int) in the schema registry, then the Avro binary encoding of the record with that
writer schema. Any Confluent deserializer reads it (e.g. confluent-kafka's `AvroDeserializer` with a
`SchemaRegistryClient` pointed at the registry's Confluent API). Subjects follow TopicRecordNameStrategy:
`<topic>-<record full name>`, e.g. `ballotstream.results-io.ballotstream.StationTally`, because a topic carries
several record types. Message keys are plain UTF-8 strings (no framing). The schemas below are the current
versions; older published versions stay readable (BACKWARD compatibility, enforced by the registry).
Topic names may carry an environment prefix (`BALLOTSTREAM_TOPIC_PREFIX`).""".replace("\n", " ")


def _channel_id(spec: TopicSpec) -> str:
    # "ballotstream.results" -> "results": short, and what `ballotstream subscribe` accepts.
    return spec.name.rsplit(".", 1)[-1]


def _topic_configuration(spec: TopicSpec) -> dict[str, Any]:
    conf: dict[str, Any] = {}
    if "cleanup.policy" in spec.config:
        conf["cleanup.policy"] = spec.config["cleanup.policy"].split(",")
    if "retention.ms" in spec.config:
        conf["retention.ms"] = int(spec.config["retention.ms"])
    return conf


def _channel(spec: TopicSpec) -> dict[str, Any]:
    return {
        "address": spec.name,
        "title": spec.name,
        "description": f"{spec.description}\n\nKey: {spec.key}. Partitions: {spec.partitions}.",
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in spec.record_types},
        "bindings": {"kafka": {"topic": spec.name, "partitions": spec.partitions,
                               "topicConfiguration": _topic_configuration(spec),
                               "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _message(name: str, specs: list[TopicSpec]) -> dict[str, Any]:
    raw = schemas.raw_schema(name)
    event = EVENT_TYPE_BY_NAME.get(name)
    subjects = ", ".join(f"`{subject_name(s.name, schemas.fullname(name))}`" for s in specs)
    return {
        "name": name,
        "title": name,
        "summary": event.doc if event else raw.get("doc", ""),
        "description": (f"{raw.get('doc', '')}\n\nAvro record `{schemas.fullname(name)}`, registry subject(s) "
                        f"{subjects}. Schema fingerprint (SHA-256 of the Parsing Canonical Form): "
                        f"`{schemas.fingerprint(name)}`."),
        "contentType": CONTENT_TYPE,
        "payload": {"schemaFormat": AVRO_SCHEMA_FORMAT, "schema": raw},
        "bindings": {"kafka": {
            "key": {"type": "string", "description": "UTF-8 message key; see the channel for what it holds."},
            "schemaIdLocation": "payload",
            "schemaIdPayloadEncoding": "confluent",
            "schemaLookupStrategy": "TopicRecordNameStrategy",
            "bindingVersion": KAFKA_BINDING_VERSION,
        }},
    }


def _version() -> str:
    try:
        return metadata.version("ballotstream")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def build_document(settings: Settings | None = None) -> dict[str, Any]:
    """The AsyncAPI document as plain data.

    Args:
        settings: where the server and registry are; default: the built-in local defaults (not the
            environment), so the committed document does not depend on who generated it.
    """
    settings = settings or Settings()
    owners: dict[str, list[TopicSpec]] = {}
    for spec in ALL_TOPICS:
        for name in spec.record_types:
            owners.setdefault(name, []).append(spec)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:io:ballotstream:events",
        "info": {
            "title": "Ballotstream event streams",
            "version": _version(),
            "description": "Election events (reference data, results, observations, news), rejected input and "
                           "release announcements, as Avro on Kafka.\n\n" + WIRE_FORMAT,
            "license": {"name": "Data: see each release's datapackage.json"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {SERVER: {
            "host": settings.kafka_bootstrap_servers.split(",")[0],
            "protocol": "kafka",
            "description": "The local Kafka started by `make up` (PLAINTEXT).",
            "bindings": {"kafka": {"schemaRegistryUrl": settings.registry_url,
                                   "schemaRegistryVendor": "apicurio (Confluent-compatible API)",
                                   "bindingVersion": KAFKA_BINDING_VERSION}},
        }},
        "channels": {_channel_id(spec): _channel(spec) for spec in ALL_TOPICS},
        "operations": {
            f"receive_{_channel_id(spec)}": {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{_channel_id(spec)}"},
                "summary": f"Subscribe to {spec.name}: `ballotstream subscribe {_channel_id(spec)}`.",
                "messages": [{"$ref": f"#/channels/{_channel_id(spec)}/messages/{n}"} for n in spec.record_types],
            }
            for spec in ALL_TOPICS
        },
        "components": {"messages": {name: _message(name, owners[name]) for name in sorted(owners)}},
    }


class _Dumper(yaml.SafeDumper):
    """Safe YAML with multi-line text as literal blocks (readable descriptions instead of quoted lines)."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render(settings: Settings | None = None) -> str:
    """The document as YAML (key order as built, so diffs of the committed file stay readable)."""
    header = "# Generated by `python -m pipelines.contract.asyncapi docs/asyncapi.yaml`; do not edit by hand.\n"
    body = yaml.dump(build_document(settings), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return header + body


def main(argv: list[str] | None = None) -> None:
    """Write the document to the path given, or to stdout."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
