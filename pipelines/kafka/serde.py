"""Avro serializer and deserializer classes with explicit Confluent framing.

Wire format (what every Confluent deserializer reads): byte 0 is the magic byte ``0``, bytes 1-4 the
schema id (big-endian unsigned int), then the Avro binary body. Schemas are registered once per process and
parsed once per id.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import fastavro
import fastavro.read
import fastavro.schema
import pyarrow as pa
from kafka.serializer import Deserializer, Serializer

from pipelines.contract import schemas
from pipelines.contract.topics import subject_name
from pipelines.errors import SchemaError, SerializationError
from pipelines.kafka import avro_columns
from pipelines.kafka.registry import RegistryClient
from pipelines.settings import Settings

MAGIC_BYTE = 0
# Decoded uuids stay strings, as they were written and as the tables store them (fastavro would build
# uuid.UUID objects, and a writer schema's logical type wins over any reader schema).
fastavro.read.LOGICAL_READERS["string-uuid"] = lambda data, *_: data
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size


def frame(schema_id: int, body: bytes) -> bytes:
    """Prefix an Avro body with the Confluent header."""
    return _HEADER.pack(MAGIC_BYTE, schema_id) + body


def unframe(payload: bytes | None) -> tuple[int, memoryview]:
    """Split a Confluent-framed message into (schema id, Avro body).

    Raises:
        SerializationError: the payload is missing (a tombstone), too short or does not start with the magic byte.
    """
    if payload is None:  # a tombstone: event topics are never compacted, so nothing should write one
        raise SerializationError("message without a value (a tombstone) where an Avro event was expected")
    if len(payload) < _HEADER.size:
        raise SerializationError(f"message of {len(payload)} bytes is too short for the Confluent header")
    magic, schema_id = _HEADER.unpack_from(payload)
    if magic != MAGIC_BYTE:
        raise SerializationError(f"unknown magic byte {magic} (expected {MAGIC_BYTE})", schema_id=None)
    return schema_id, memoryview(payload)[_HEADER.size:]


class AvroSerializer(Serializer):
    """Encodes ``(record_type, value)`` pairs with the schema registered for ``topic-record``.

    Values are given as a tuple because a topic carries several record types (TopicRecordNameStrategy).
    ``None`` passes through (a tombstone).

    Args:
        registry: the schema registry.
        schemas: short record name -> (full name, schema JSON text, parsed schema).
    """

    def __init__(self, registry: RegistryClient, schemas: dict[str, tuple[str, str, Any]]):
        self._registry = registry
        self._schemas = schemas
        self._ids: dict[tuple[str, str], int] = {}

    def schema_id(self, topic: str, record_type: str) -> int:
        """Register (once per process) the record's schema under its subject and return the id."""
        cached = self._ids.get((topic, record_type))
        if cached is not None:
            return cached
        try:
            fullname, text, _ = self._schemas[record_type]
        except KeyError:
            raise SchemaError(f"no schema for record type {record_type!r}") from None
        schema_id = self._registry.register(subject_name(topic, fullname), text)
        self._ids[(topic, record_type)] = schema_id
        return schema_id

    def encode(self, topic: str, record_type: str, value: dict[str, Any]) -> bytes:
        schema_id = self.schema_id(topic, record_type)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC_BYTE, schema_id))
        try:
            fastavro.schemaless_writer(buf, self._schemas[record_type][2], value)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(
                f"cannot encode {record_type} for topic {topic} (schema id {schema_id}): {exc}",
                topic=topic, schema_id=schema_id,
            ) from exc
        return buf.getvalue()

    def serialize(self, topic: str, headers: Any, data: tuple[str, dict[str, Any]] | None) -> bytes | None:
        if data is None:
            return None
        record_type, value = data
        return self.encode(topic, record_type, value)


class AvroDeserializer(Deserializer):
    """Decodes Confluent-framed Avro with the writer schema fetched from the registry by id.

    Returns ``(schema_id, record_name, value)``; ``None`` for a tombstone. An optional reader schema per record
    name lets old data be read with today's schema (schema resolution). With ``logical_types=False`` times
    and dates stay the epoch milliseconds and days they are on the wire: ~30% faster for the fold, which
    stores them as such (reader schemas must then be given without logical types too).
    """

    def __init__(self, registry: RegistryClient, reader_schemas: dict[str, Any] | None = None, *,
                 logical_types: bool = True):
        self._registry = registry
        self._writers: dict[int, tuple[str, Any, Any]] = {}
        self._readers = reader_schemas or {}
        self._logical = logical_types
        self._columnar: dict[int, str] = {}  # schema id -> record name, "" when not decoded as columns

    def writer(self, schema_id: int) -> tuple[str, Any, Any]:
        """(short record name, parsed writer schema, reader schema or None) for ``schema_id``, fetched once.

        The reader schema is dropped when it equals the writer's: fastavro's schema resolution costs about
        as much as the decoding itself, and is only needed when the schemas differ.
        """
        cached = self._writers.get(schema_id)
        if cached is None:
            raw = self._registry.schema_by_id(schema_id)
            parsed = fastavro.parse_schema(raw if self._logical else without_logical_types(raw))
            name = str(raw["name"]).rsplit(".", 1)[-1]
            reader = self._readers.get(name)
            if reader is not None and _canonical(parsed) == _canonical(reader):
                reader = None
            cached = (name, parsed, reader)
            self._writers[schema_id] = cached
        return cached

    def decode(self, topic: str, payload: bytes) -> tuple[int, str, dict[str, Any]]:
        schema_id, body = unframe(payload)
        name, value = self.decode_body(topic, schema_id, body)
        return schema_id, name, value

    def decode_body(self, topic: str, schema_id: int, body: bytes | memoryview) -> tuple[str, dict[str, Any]]:
        """(record name, value) of one unframed Avro body."""
        try:
            name, writer, reader = self.writer(schema_id)
            value = fastavro.schemaless_reader(io.BytesIO(body), writer, reader)
        except SchemaError as exc:
            raise SerializationError(f"topic {topic}: schema id {schema_id}: {exc}", topic=topic,
                                     schema_id=schema_id) from exc
        except (EOFError, ValueError, TypeError, IndexError, StopIteration) as exc:
            raise SerializationError(
                f"topic {topic}: cannot decode message with schema id {schema_id}: {exc}",
                topic=topic, schema_id=schema_id,
            ) from exc
        return name, value

    def columns_name(self, schema_id: int) -> str | None:
        """The record name when bodies of ``schema_id`` can be decoded a run at a time (``decode_run``).

        Only a deserializer without logical types, and only schemas read as written qualify (schema resolution
        stays fastavro's) whose every type has a column; an id the registry does not know is left to ``decode`` to report.
        """
        cached = self._columnar.get(schema_id)
        if cached is None and self._logical:  # the column decoder reads the plain types only
            cached = ""
        if cached is None:
            try:
                name, writer, reader = self.writer(schema_id)
                avro_columns.arrow_type(writer)
                cached = name if reader is None else ""
            except (SchemaError, avro_columns.Unsupported):
                cached = ""
            self._columnar[schema_id] = cached
        return cached or None

    def decode_run(self, topic: str, schema_id: int, bodies: list[memoryview]) -> pa.StructArray:
        """Unframed bodies of one schema id (one ``columns_name`` accepts) as one struct per body.

        Raises:
            SerializationError: a body cannot be decoded (as ``decode`` reports it).
        """
        _, writer, _ = self.writer(schema_id)
        try:
            return avro_columns.decode(writer, bodies)
        except avro_columns.MalformedBody:
            # Body by body, so the error is fastavro's, naming what it found (fastavro also reads a body
            # that has bytes after its record, which the column decoder refuses).
            values = [self.decode_body(topic, schema_id, body)[1] for body in bodies]
            try:
                return pa.array(values, type=avro_columns.arrow_type(writer))
            except (pa.ArrowException, OverflowError, TypeError) as exc:  # e.g. an Avro int beyond 32 bits
                raise SerializationError(f"topic {topic}: cannot decode a message with schema id {schema_id}: {exc}",
                                         topic=topic, schema_id=schema_id) from exc

    def deserialize(self, topic: str, headers: Any, data: bytes | None) -> tuple[int, str, Any] | None:
        if data is None:
            return None
        return self.decode(topic, data)


def without_logical_types(schema: Any) -> Any:
    """A copy of a schema (JSON form) with every ``logicalType`` left out: the plain Avro types remain."""
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [without_logical_types(v) for v in schema]
    return schema


def _canonical(parsed: Any) -> str:
    return str(fastavro.schema.to_parsing_canonical_form(parsed))


class BytesSerializer(Serializer):
    """Pass-through for keys and values already encoded elsewhere (ingest encodes in worker processes)."""

    def serialize(self, topic: str, headers: Any, data: bytes | None) -> bytes | None:
        return data

def serializer(settings: Settings, registry: RegistryClient | None = None) -> AvroSerializer:
    """A serializer for every record type in ``schemas/`` (schemas register lazily, once each)."""
    table = {
        name: (schemas.fullname(name), schemas.schema_json(name), schemas.parsed_schema(name))
        for name in schemas.record_types()
    }
    return AvroSerializer(registry or RegistryClient(settings.registry_url), table)


def deserializer(settings: Settings, registry: RegistryClient | None = None, *,
                 logical_types: bool = True) -> AvroDeserializer:
    """A deserializer that reads old writer schemas through today's schemas (schema resolution).

    ``logical_types=False`` leaves times and dates as epoch milliseconds and days (the fold's fast path).
    """
    if logical_types:
        readers = {name: schemas.parsed_schema(name) for name in schemas.record_types()}
    else:
        readers = {name: fastavro.parse_schema(without_logical_types(json.loads(schemas.schema_json(name))))
                   for name in schemas.record_types()}
    return AvroDeserializer(registry or RegistryClient(settings.registry_url), readers, logical_types=logical_types)
