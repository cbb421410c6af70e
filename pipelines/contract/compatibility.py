"""BACKWARD compatibility: can a reader with the new schema read everything written with the old one?

Two independent proofs, both must pass:

* structural rules from the Avro resolution spec (a new field needs a default, a removed enum symbol needs an
  enum default, a type change must be a permitted promotion, record names must match);
* a round trip: sample records generated from the old schema (every enum symbol, every union branch) are
  encoded with the old schema and decoded with ``fastavro.schemaless_reader(buf, old, new)``.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import fastavro
from fastavro.schema import expand_schema

Schema = Any
# Writer type -> reader types it may be promoted to (Avro spec, "Schema Resolution").
_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_EPOCH = dt.datetime(2025, 1, 29, tzinfo=dt.UTC)


def _type_name(schema: Schema) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"]) if not isinstance(schema["type"], (dict, list)) else _type_name(schema["type"])
    return str(schema)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _readable(reader: Schema, writer: Schema, path: str, out: list[str]) -> None:
    """Append to ``out`` why data of ``writer`` type is unreadable as ``reader`` type (nothing if it is)."""
    rt, wt = _type_name(reader), _type_name(writer)
    if wt == "union":
        for branch in writer:
            _readable(reader, branch, path, out)
        return
    if rt == "union":
        errors: list[str] = []
        for branch in reader:
            attempt: list[str] = []
            _readable(branch, writer, path, attempt)
            if not attempt:
                return
            errors.extend(attempt)
        out.append(f"{path}: writer type {wt} matches no branch of the reader union")
        return
    if rt != wt:
        if rt not in _PROMOTIONS.get(wt, frozenset()):
            out.append(f"{path}: type changed from {wt} to {rt}, which is not a promotion")
        return
    if rt in ("record", "enum", "fixed") and _short(reader["name"]) != _short(writer["name"]):
        if _short(writer["name"]) not in {_short(a) for a in reader.get("aliases", [])}:
            out.append(f"{path}: named type {writer['name']} renamed to {reader['name']} without an alias")
    if rt == "record":
        writer_fields = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            fpath = f"{path}.{field['name']}" if path else field["name"]
            if match is None:
                if "default" not in field:
                    out.append(f"{fpath}: new field without a default")
            else:
                _readable(field["type"], match["type"], fpath, out)
    elif rt == "enum":
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            out.append(f"{path}: enum symbols {missing} removed and the enum has no default")
    elif rt == "array":
        _readable(reader["items"], writer["items"], f"{path}[]", out)
    elif rt == "map":
        _readable(reader["values"], writer["values"], f"{path}{{}}", out)
    elif rt == "fixed" and reader["size"] != writer["size"]:
        out.append(f"{path}: fixed size changed from {writer['size']} to {reader['size']}")


def _sample(schema: Schema, variant: int) -> Any:
    """A value of ``schema``; ``variant`` rotates enum symbols and union branches so samples cover them all."""
    if isinstance(schema, list):
        return _sample(schema[variant % len(schema)], variant)
    if isinstance(schema, dict):
        kind, logical = schema["type"], schema.get("logicalType")
        if isinstance(kind, (dict, list)):
            return _sample(kind, variant)
        if logical == "uuid":
            return str(uuid.UUID(int=variant + 1))
        if logical in ("timestamp-millis", "timestamp-micros"):
            return _EPOCH + dt.timedelta(seconds=variant)
        if logical == "date":
            return _EPOCH.date() + dt.timedelta(days=variant)
        if kind == "record":
            return {f["name"]: _sample(f["type"], variant) for f in schema["fields"]}
        if kind == "enum":
            return schema["symbols"][variant % len(schema["symbols"])]
        if kind == "array":
            return [_sample(schema["items"], variant + i) for i in range(2)]
        if kind == "map":
            return {f"k{i}": _sample(schema["values"], variant + i) for i in range(2)}
        if kind == "fixed":
            return bytes(schema["size"])
        return _sample(kind, variant)
    primitives: dict[str, Any] = {
        "null": None, "boolean": variant % 2 == 0, "int": variant, "long": variant, "float": 0.5 + variant,
        "double": 0.25 + variant, "string": f"s{variant}", "bytes": b"b",
    }
    return primitives[schema]


def _variants(schema: Schema) -> int:
    """How many samples cover every enum symbol and union branch at least once (bounded)."""
    widest = 2
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            widest = max(widest, len(node))
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get("type") == "enum":
                widest = max(widest, len(node["symbols"]))
            for key in ("type", "items", "values"):
                if isinstance(node.get(key), (dict, list)):
                    stack.append(node[key])
            stack.extend(f["type"] for f in node.get("fields", []))
    return min(widest, 64)


def check_backward(new_schema: Schema, old_schema: Schema) -> list[str]:
    """Why ``new_schema`` cannot read data written with ``old_schema``; empty when it can (BACKWARD).

    Args:
        new_schema: the reader schema (plain JSON or fastavro-parsed).
        old_schema: the writer schema (plain JSON or fastavro-parsed).

    Returns:
        One line per problem, each naming the field path.
    """
    new_parsed = fastavro.parse_schema(new_schema, _write_hint=False)
    old_parsed = fastavro.parse_schema(old_schema, _write_hint=False)
    new_x, old_x = expand_schema(new_parsed), expand_schema(old_parsed)
    problems: list[str] = []
    _readable(new_x, old_x, "", problems)
    for variant in range(_variants(old_x)):
        record = _sample(old_x, variant)
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, old_parsed, record)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, old_parsed, new_parsed)
        except (fastavro.read.SchemaResolutionError, ValueError, KeyError, TypeError, EOFError) as exc:
            problems.append(f"round trip of sample {variant} failed: {type(exc).__name__}: {exc}")
            break
    return problems
