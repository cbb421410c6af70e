"""Scalar converters of the JSON -> Avro walk (:mod:`pipelines.ingest.convert`) and its error type.

Each returns the fastavro-ready value or raises :class:`FieldError`; caches keep repeated timestamps and ids
(heavy in tallies) to one dict lookup.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

from pipelines.contract import ids, reasons

Conv = Callable[[Any], Any]
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
# Bounded caches: timestamps and ids repeat heavily in tallies; clearing keeps memory flat on huge inputs.
_CACHE_LIMIT = 200_000
# C0 controls and DEL; free text may hold tab and line ends, single-line strings (keys, URLs, codes) none.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# String fields that are keys, codes or URLs: one line of text.
SINGLE_LINE_FIELDS = frozenset({"target_key", "country", "language", "url", "evidence_urls", "outlet",
                                "abbreviation"})


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
        if not (v.isascii() and v.isprintable()):
            # fromisoformat would ignore a trailing NUL, say: only printable ASCII is a timestamp.
            raise FieldError(reasons.CONTROL_CHARACTER if _LINE_CONTROL.search(v) else reasons.WRONG_TYPE,
                             f"not an ISO 8601 timestamp: {v!r}")
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


def _checked(v: str, control: re.Pattern[str]) -> str:
    found = control.search(v)
    if found is not None:
        raise FieldError(reasons.CONTROL_CHARACTER, f"control character {found.group()!r} at position {found.start()}")
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate from a JSON escape such as "\ud800"
            raise FieldError(reasons.INVALID_ENCODING,
                             f"not encodable as UTF-8 at position {exc.start} (lone surrogate)") from None
    return v


def _string(v: Any) -> str:
    if type(v) is str:
        return _checked(v, _TEXT_CONTROL)
    raise _wrong("a string", v)


def _line_string(v: Any) -> str:
    if type(v) is str:
        return _checked(v, _LINE_CONTROL)
    raise _wrong("a string", v)


def _id_string(what: str, check: ids.IdCheck) -> Conv:
    valid: set[str] = set()

    def conv(v: Any) -> str:
        # Type first: a list or object here is bad input to dead-letter, not an unhashable set lookup.
        if type(v) is not str:
            raise _wrong("a string", v)
        if v in valid:
            return v
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
        if type(v) is not str:
            raise _wrong("a string", v)
        if v in symbols:
            return v
        raise FieldError(reasons.UNKNOWN_ENUM_SYMBOL, f"unknown {name} symbol {v!r}")

    return conv


def _bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise _wrong("a boolean", v)


def _double(v: Any) -> float:
    if type(v) is float:
        if math.isfinite(v):
            return v
        raise FieldError(reasons.WRONG_TYPE, f"{v!r} is not a JSON number (NaN, Infinity and numbers beyond "
                                             "±1.8e308 are not accepted)")
    if type(v) is int:
        try:
            return float(v)
        except OverflowError:
            raise FieldError(reasons.WRONG_TYPE, "number out of range of a double") from None
    raise _wrong("a number", v)
