"""The Avro contracts in ``schemas/``: loaded and parsed once, fingerprinted, with their published history.

``schemas/<fullname>.avsc`` is the current version of each record type; ``schemas/published/<fullname>/v<N>.avsc``
are the versions already registered. Backward compatibility of a change is checked by :mod:`pipelines.contract.compatibility`.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form

from pipelines.contract.compatibility import check_backward
from pipelines.errors import SchemaError

NAMESPACE = "io.ballotstream"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
PUBLISHED_DIR = SCHEMA_DIR / "published"
# The Confluent registry and Avro spec name this algorithm "SHA-256"; fastavro accepts that spelling.
FINGERPRINT_ALGORITHM = "SHA-256"

__all__ = [
    "NAMESPACE",
    "SCHEMA_DIR",
    "check_backward",
    "fingerprint",
    "fullname",
    "parsed_schema",
    "published_versions",
    "raw_schema",
    "record_types",
    "schema_json",
]


def fullname(name: str) -> str:
    """The Avro full name of a short record name, e.g. ``io.ballotstream.StationTally``."""
    return name if "." in name else f"{NAMESPACE}.{name}"


@lru_cache(maxsize=1)
def record_types() -> list[str]:
    """Short names of every record type with a current schema, sorted.

    Returns:
        e.g. ``["ArticlePublished", ..., "StationTally"]``.
    """
    prefix = f"{NAMESPACE}."
    return sorted(p.name[len(prefix) : -len(".avsc")] for p in SCHEMA_DIR.glob(f"{prefix}*.avsc"))


@cache
def _raw_text(name: str) -> str:
    path = SCHEMA_DIR / f"{fullname(name)}.avsc"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SchemaError(f"no schema for record type {name!r} (looked for {path})") from exc


def raw_schema(name: str) -> dict[str, Any]:
    """The current schema of ``name`` as plain JSON (a fresh copy, safe to modify).

    Raises:
        SchemaError: there is no such schema.
    """
    schema: dict[str, Any] = json.loads(_raw_text(name))
    return schema


@cache
def parsed_schema(name: str) -> dict[str, Any]:
    """The current schema of ``name`` parsed by fastavro (cached; do not modify).

    Raises:
        SchemaError: the schema is missing or invalid.
    """
    try:
        parsed: dict[str, Any] = fastavro.parse_schema(raw_schema(name))
    except (fastavro.schema.SchemaParseException, ValueError, TypeError) as exc:
        raise SchemaError(f"schema {fullname(name)} is invalid: {exc}") from exc
    return parsed


@cache
def schema_json(name: str) -> str:
    """The schema text to register in a schema registry: compact JSON, docs and defaults kept.

    Docs and defaults are kept (unlike the Parsing Canonical Form) because readers need the defaults to
    resolve older data and consumers read the docs from the registry.
    """
    return json.dumps(raw_schema(name), separators=(",", ":"), ensure_ascii=False)


@cache
def fingerprint(name: str) -> str:
    """SHA-256 (hex) of the schema's Parsing Canonical Form: equal for schemas that encode alike."""
    canonical = to_parsing_canonical_form(raw_schema(name))
    return str(_fingerprint(canonical, FINGERPRINT_ALGORITHM))


def published_versions(name: str) -> list[dict[str, Any]]:
    """Every published version of ``name``, oldest first (``v1`` at index 0), as plain JSON.

    Returns:
        An empty list when the record type was never published.
    """
    folder = PUBLISHED_DIR / fullname(name)
    paths = sorted(folder.glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


@cache
def enum_symbols(enum_name: str) -> tuple[str, ...]:
    """The symbols of a named enum (short name, e.g. ``"Gender"``) as the schemas in ``schemas/`` declare it.

    Raises:
        SchemaError: no schema declares that enum.
    """
    found: dict[str, tuple[str, ...]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum":
                found[str(node["name"]).rsplit(".", 1)[-1]] = tuple(node["symbols"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in record_types():
        walk(raw_schema(name))
    if enum_name not in found:
        raise SchemaError(f"no schema in {SCHEMA_DIR} declares enum {enum_name!r}")
    return found[enum_name]
