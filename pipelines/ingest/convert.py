"""Plain JSON -> fastavro-ready values, validated in the same walk.

Each schema is compiled once into nested closures, so the hot path is a few dict lookups and ``type()``
checks per field; error paths (``votes[3].votes``) are only assembled when something is wrong, by catching
:class:`FieldError` on the way up. Rules beyond the schema: every int is a count or a year and must not be
negative; id fields must match their format (:data:`pipelines.ids.ID_KINDS`).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fastavro.schema import expand_schema

from pipelines import ids, schemas
from pipelines.errors import InputError
from pipelines.events import derive_event_id
from pipelines.ingest import reasons

Conv = Callable[[Any], Any]
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
# Bounded caches: timestamps and ids repeat heavily in tallies; clearing keeps memory flat on huge inputs.
_CACHE_LIMIT = 200_000
_LATER = object()  # placeholder default for event_id/recorded_at, filled once the rest is converted
_OPTIONAL_IN_INPUT = ("event_id", "recorded_at")


class FieldError(Exception):
    """A value failed validation; ``path`` collects field names innermost first on the way up."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path: list[str] = []

    def dotted(self) -> str:
        """The field path, e.g. ``votes[3].votes``."""
        out = ""
        for segment in reversed(self.path):
            out += segment if segment.startswith("[") or not out else f".{segment}"
        return out


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _wrong(expected: str, value: Any) -> FieldError:
    return FieldError(reasons.WRONG_TYPE, f"expected {expected}, got {_json_type(value)}")


def _int(limit: int) -> Conv:
    def conv(v: Any) -> int:
        if type(v) is int:
            if v < 0:
                raise FieldError(reasons.NEGATIVE_COUNT, f"negative count {v}")
            if v > limit:
                raise FieldError(reasons.WRONG_TYPE, f"{v} is out of range")
            return v
        raise _wrong("an integer", v)

    return conv


def _timestamp() -> Conv:
    cache: dict[str, dt.datetime] = {}

    def conv(v: Any) -> dt.datetime:
        hit = cache.get(v) if type(v) is str else None
        if hit is not None:
            return hit
        if type(v) is not str:
            raise _wrong("an ISO 8601 timestamp string", v)
        try:
            parsed = dt.datetime.fromisoformat(v)
        except ValueError:
            raise FieldError(reasons.WRONG_TYPE, f"not an ISO 8601 timestamp: {v!r}") from None
        if parsed.tzinfo is None:
            raise FieldError(reasons.WRONG_TYPE, f"timestamp without a time zone: {v!r}")
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        cache[v] = parsed
        return parsed

    return conv


def _date(v: Any) -> dt.date:
    if type(v) is not str or len(v) != 10:
        raise _wrong("a YYYY-MM-DD date", v) if type(v) is not str else FieldError(
            reasons.WRONG_TYPE, f"not a YYYY-MM-DD date: {v!r}")
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        raise FieldError(reasons.WRONG_TYPE, f"not a YYYY-MM-DD date: {v!r}") from None


def _string(v: Any) -> str:
    if type(v) is str:
        return v
    raise _wrong("a string", v)


def _id_string(what: str, check: ids.IdCheck) -> Conv:
    valid: set[str] = set()

    def conv(v: Any) -> str:
        if v in valid:
            return v  # type: ignore[no-any-return]
        if type(v) is not str:
            raise _wrong("a string", v)
        if not check(v):
            raise FieldError(reasons.INVALID_ID, f"invalid {what} {v!r}")
        if len(valid) > _CACHE_LIMIT:
            valid.clear()
        valid.add(v)
        return v

    return conv


def _enum(schema: dict[str, Any]) -> Conv:
    symbols = frozenset(schema["symbols"])
    name = schema["name"].rsplit(".", 1)[-1]

    def conv(v: Any) -> str:
        if v in symbols:
            return v  # type: ignore[no-any-return]
        if type(v) is str:
            raise FieldError(reasons.UNKNOWN_ENUM_SYMBOL, f"unknown {name} symbol {v!r}")
        raise _wrong("a string", v)

    return conv


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
    fields: list[tuple[str, Conv, Any, bool]] = []
    for f in schema["fields"]:
        if top and f["name"] in _OPTIONAL_IN_INPUT:
            default: Any = _LATER
        else:
            default = f.get("default", _MISSING)
        fields.append((f["name"], _compile(f["type"], f["name"]), default, isinstance(default, (list, dict))))
    names = frozenset(f[0] for f in fields)
    pairs = [(name, field_conv) for name, field_conv, _, _ in fields]
    width = len(fields)

    def fast(v: Any) -> dict[str, Any]:
        # Common case (every field present, all valid) in one comprehension; anything odd takes the slow
        # path, which re-walks the record to report the exact problem.
        if type(v) is dict and len(v) == width:
            try:
                return {name: field_conv(v[name]) for name, field_conv in pairs}
            except (KeyError, FieldError):
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


def _compile(schema: Any, field: str | None) -> Conv:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) == 1 and len(schema) == 2:
            return _nullable(_compile(branches[0], field))
        raise NotImplementedError(f"union {schema} (only [null, T] unions are used)")
    if isinstance(schema, str):
        schema = {"type": schema}
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, (dict, list)):
        return _compile(kind, field)
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
        if field in ids.ID_KINDS:
            return _id_string(*ids.ID_KINDS[field])
        return _string
    if kind == "enum":
        return _enum(schema)
    if kind == "array":
        return _array(_compile(schema["items"], field))
    if kind == "map":
        return _map(_compile(schema["values"], None))
    if kind == "record":
        return _record(schema, top=False)
    raise NotImplementedError(f"Avro type {kind!r}")


def _bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise _wrong("a boolean", v)


def _double(v: Any) -> float:
    if type(v) is float or type(v) is int:
        return float(v)
    raise _wrong("a number", v)


@lru_cache(maxsize=None)
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
    if value.get("event_id") is _LATER:
        value["event_id"] = derive_event_id(record_type, value)
    return value
