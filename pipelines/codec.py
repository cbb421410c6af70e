"""Builds the Avro serializer/deserializer pair from ``schemas/`` and the registry, once per process."""

from __future__ import annotations

from pipelines import schemas
from pipelines.registry import RegistryClient
from pipelines.serde import AvroDeserializer, AvroSerializer
from pipelines.settings import Settings


def serializer(settings: Settings, registry: RegistryClient | None = None) -> AvroSerializer:
    """A serializer for every record type in ``schemas/`` (schemas register lazily, once each)."""
    table = {
        name: (schemas.fullname(name), schemas.schema_json(name), schemas.parsed_schema(name))
        for name in schemas.record_types()
    }
    return AvroSerializer(registry or RegistryClient(settings.registry_url), table)


def deserializer(settings: Settings, registry: RegistryClient | None = None) -> AvroDeserializer:
    """A deserializer that reads old writer schemas through today's schemas (schema resolution)."""
    readers = {name: schemas.parsed_schema(name) for name in schemas.record_types()}
    return AvroDeserializer(registry or RegistryClient(settings.registry_url), readers)
