"""Builds the Avro serializer/deserializer pair from ``schemas/`` and the registry, once per process."""

from __future__ import annotations

import json

import fastavro

from pipelines import schemas
from pipelines.registry import RegistryClient
from pipelines.serde import AvroDeserializer, AvroSerializer, without_logical_types
from pipelines.settings import Settings


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
