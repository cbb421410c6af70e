"""Plain JSON -> fastavro-ready values, validated in the same walk.

Each schema is compiled once into nested closures, so the hot path is a few dict lookups and ``type()``
checks per field; error paths (``votes[3].votes``) are only assembled when something is wrong, by catching
:class:`FieldError` on the way up. Rules beyond the schema: every int is a count or a year and must not be
negative; id fields must match their format (:data:`pipelines.contract.ids.ID_KINDS`, by record in
:data:`~pipelines.contract.ids.ID_KINDS_IN`); a contest id must share its election's type prefix and date.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from fastavro.schema import expand_schema

from pipelines.contract import ids, reasons, schemas
from pipelines.contract.record_types import derive_event_id
from pipelines.errors import InputError
from pipelines.ingest.scalars import (  # noqa: F401  (FieldError is part of this module's interface)
    INT_MAX,
    LONG_MAX,
    SINGLE_LINE_FIELDS,
    Conv,
    FieldError,
    _bool,
    _date,
    _double,
    _enum,
    _id_string,
    _int,
    _line_string,
    _string,
    _timestamp,
    _wrong,
)

_LATER = object()  # placeholder default for event_id/recorded_at, filled once the rest is converted
_OPTIONAL_IN_INPUT = ("event_id", "recorded_at")


def _array(items: Conv) -> Conv:
    def conv(v: Any) -> list[Any]:
        if type(v) is not list:
            raise _wrong("an array", v)
        i = 0
        try:
            out = [items(item) for item in v]
        except FieldError as exc:
            # Only on failure: find which element, by re-walking (cheaper than tracking i on success).
            for i, item in enumerate(v):
                try:
                    items(item)
                except FieldError:
                    break
            exc.path.append(f"[{i}]")
            raise
        return out

    return conv


def _map(values: Conv) -> Conv:
    def conv(v: Any) -> dict[str, Any]:
        if type(v) is not dict:
            raise _wrong("an object", v)
        out: dict[str, Any] = {}
        key = ""
        try:
            for key, item in v.items():
                out[key] = values(item)
        except FieldError as exc:
            exc.path.append(key)
            raise
        return out

    return conv


def _nullable(inner: Conv) -> Conv:
    return lambda v: None if v is None else inner(v)


def _record(schema: dict[str, Any], top: bool) -> Conv:
    # Long: builds both the fast and the checking converter of a record from one list of fields.
    fields: list[tuple[str, Conv, Any, bool]] = []
    owner = schema["name"].rsplit(".", 1)[-1]
    for f in schema["fields"]:
        if top and f["name"] in _OPTIONAL_IN_INPUT:
            default: Any = _LATER
        else:
            default = f.get("default", _MISSING)
        fields.append((f["name"], _compile(f["type"], f["name"], owner), default, isinstance(default, (list, dict))))
    names = frozenset(f[0] for f in fields)
    required = frozenset(name for name, _, default, _ in fields if default is _MISSING)
    pairs = [(name, field_conv) for name, field_conv, _, _ in fields]
    # Fields that may be absent, with their fill-in value (mutable defaults are rare: copied when used).
    optional = {name: (default, mutable) for name, _, default, mutable in fields if default is not _MISSING}
    width = len(fields)

    def fast(v: Any) -> dict[str, Any]:
        # Common case (no unknown or missing field, all valid) in one comprehension; anything odd takes the
        # slow path, which re-walks the record to report the exact problem. Absent optional fields (event_id,
        # supersedes, synthetic... at the top level) stay on the fast path: tallies from CSV always lack some.
        if type(v) is dict:
            if len(v) == width:
                try:
                    return {name: field_conv(v[name]) for name, field_conv in pairs}
                except (KeyError, FieldError):
                    return conv(v)
            keys = v.keys()
            if keys >= required and keys <= names:
                try:
                    return {name: field_conv(v[name]) if name in v else _fill(optional[name])
                            for name, field_conv in pairs}
                except FieldError:
                    pass
        return conv(v)

    def conv(v: Any) -> dict[str, Any]:
        if type(v) is not dict:
            raise _wrong("an object", v)
        out: dict[str, Any] = {}
        seen = 0
        name = ""
        try:
            for name, field_conv, default, mutable in fields:
                if name in v:
                    out[name] = field_conv(v[name])
                    seen += 1
                elif default is _MISSING:
                    raise FieldError(reasons.MISSING_FIELD, "missing required field")
                else:
                    out[name] = copy.deepcopy(default) if mutable else default
        except FieldError as exc:
            exc.path.append(name)
            raise
        if seen != len(v):
            extra = sorted(k for k in v if k not in names)[0]
            exc = FieldError(reasons.UNKNOWN_FIELD, f"unknown field (not in {schema['name']})")
            exc.path.append(extra)
            raise exc
        return out

    return fast


_MISSING = object()


def _fill(default: tuple[Any, bool]) -> Any:
    value, mutable = default
    return copy.deepcopy(value) if mutable else value


def _compile(schema: Any, field: str | None, owner: str | None = None) -> Conv:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) == 1 and len(schema) == 2:
            return _nullable(_compile(branches[0], field, owner))
        raise NotImplementedError(f"union {schema} (only [null, T] unions are used)")
    if isinstance(schema, str):
        schema = {"type": schema}
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, (dict, list)):
        return _compile(kind, field, owner)
    if logical == "timestamp-millis":
        return _timestamp()
    if logical == "date":
        return _date
    if logical == "uuid":
        return _id_string("uuid", ids.is_uuid)
    simple: dict[str, Conv] = {
        "int": _int(INT_MAX),
        "long": _int(LONG_MAX),
        "boolean": _bool,
        "double": _double,
        "float": _double,
    }
    if kind in simple:
        return simple[kind]
    if kind == "string":
        if (owner, field) in ids.ID_KINDS_IN:
            return _id_string(*ids.ID_KINDS_IN[(owner, field)])
        if field in ids.ID_KINDS:
            return _id_string(*ids.ID_KINDS[field])
        return _line_string if field in SINGLE_LINE_FIELDS else _string
    if kind == "enum":
        return _enum(schema)
    if kind == "array":
        return _array(_compile(schema["items"], field, owner))
    if kind == "map":
        return _map(_compile(schema["values"], None))
    if kind == "record":
        return _record(schema, top=False)
    raise NotImplementedError(f"Avro type {kind!r}")


@cache
def converter(record_type: str) -> Conv:
    """The compiled JSON -> Avro-ready converter of a record type (top level: event_id/recorded_at optional)."""
    return _record(expand_schema(schemas.parsed_schema(record_type)), top=True)


def to_avro(record_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Validate a plain-JSON event (without its ``type`` key) and make it ready for fastavro.

    Fills defaults, sets ``recorded_at`` to ``occurred_at`` when absent and derives ``event_id`` when absent.

    Raises:
        InputError: the first problem found; ``field`` is its path and the reason starts with it.
    """
    try:
        value = converter(record_type)(obj)
    except FieldError as exc:
        path = exc.dotted()
        raise InputError(exc.code, f"{path}: {exc.message}", field=path) from None
    if value.get("recorded_at") is _LATER:
        value["recorded_at"] = value["occurred_at"]
    contest = value.get("contest_id")
    if contest is not None and not ids.contest_matches_election(contest, value["election_id"]):
        raise InputError(reasons.CONTEST_ELECTION_MISMATCH, f"contest_id: {contest!r} does not share the type "
                         f"prefix and date of its election {value['election_id']!r}", field="contest_id")
    if value.get("event_id") is _LATER:
        value["event_id"] = derive_event_id(record_type, value)
    return value
