"""Read input files into :class:`Parsed` events or :class:`Rejected` records, one per input record.

JSON Lines carry any ingestible record type; CSV carries station tallies (see :mod:`pipelines.ingest.tally_csv`).
A bad record never stops the file: it is yielded as :class:`Rejected` and the reader moves on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

from pipelines.contract import reasons
from pipelines.contract.record_types import INGESTIBLE
from pipelines.contract.topics import TopicSpec
from pipelines.errors import InputError
from pipelines.ingest.convert import to_avro
from pipelines.ingest.lines import encoding_error, split_lines
from pipelines.ingest.records import (
    DEFAULT_LIMITS,
    RAW_HEAD_CHARS,
    Limits,
    Parsed,
    Rejected,
    head,
    kind_topic,
    route,
)
from pipelines.ingest.tally_csv import csv_items

__all__ = ["Parsed", "Rejected", "jsonl_items", "parse_object", "read_path"]

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)


def read_path(path: Path, kind: str | None = None, limits: Limits = DEFAULT_LIMITS) -> Iterator[Parsed | Rejected]:
    """Parse one input file, exactly as ingest does (the same chunks, read in this process).

    Args:
        path: a ``.jsonl`` file (any record type) or a ``.csv`` file (StationTally rows).
        kind: if given (reference, results, observations, news), records of other topics are rejected
            with ``wrong_kind``.
        limits: largest record and deepest nesting accepted.

    Yields:
        One :class:`Parsed` or :class:`Rejected` per input record, in file order. Nothing in the file's
        content raises: bad bytes, lines and files are rejections.

    Raises:
        InputError: ``unsupported_file`` when the suffix is neither JSON Lines nor CSV.
        ConfigError: ``kind`` is unknown.
    """
    from pipelines.ingest.chunks import chunks  # chunks -> tally_csv -> ... -> this module

    topic = kind_topic(kind)
    suffix = path.suffix.lower()
    if suffix not in JSONL_SUFFIXES + CSV_SUFFIXES:
        raise InputError(reasons.UNSUPPORTED_FILE, f"{path}: unsupported input format {suffix or '(none)'!r}")
    for chunk in chunks(path, suffix in CSV_SUFFIXES, kind, limits=limits):
        if isinstance(chunk, Rejected):
            yield chunk
            continue
        if chunk.csv:
            yield from csv_items(chunk.file, chunk.data, chunk.start, kind, topic, chunk.limits, chunk.columns)
        else:
            yield from jsonl_items(chunk.file, chunk.data, chunk.start, kind, topic, chunk.limits)


def parse_object(
    obj: Any, *, file: str, line: int, raw: str, kind: str | None, topic: TopicSpec | None
) -> Parsed | Rejected:
    """Validate one decoded JSON object (with its ``type`` key) and route it.

    Args:
        obj: the decoded JSON (modified: ``type`` is removed).
        file: input file, for the result.
        line: input line, for the result.
        raw: input text, for the result.
        kind: the input kind filter, if any.
        topic: the topic of ``kind``.
    """

    def reject(code: str, reason: str, field: str | None) -> Rejected:
        return Rejected(file, line, raw, code, reason, field, kind)

    if type(obj) is not dict:
        return reject(reasons.MALFORMED_JSON, "line is not a JSON object", None)
    record_type = obj.pop("type", None)
    if record_type is None:
        return reject(reasons.MISSING_FIELD, "type: missing record type", "type")
    if type(record_type) is not str or record_type not in INGESTIBLE:
        return reject(reasons.UNKNOWN_RECORD_TYPE, f"type: unknown or not ingestible record type {record_type!r}",
                      "type")
    try:
        value = to_avro(record_type, obj)
    except InputError as exc:
        return reject(exc.reason_code, exc.reason, exc.field)
    topic_name, key = route(record_type, value)
    if topic is not None and topic_name != topic.name:
        return reject(reasons.WRONG_KIND, f"type: {record_type} goes to {topic_name}, not to {kind} input", "type")
    return Parsed(file, line, raw, record_type, topic_name, key, value)


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


_decode = json.JSONDecoder(object_pairs_hook=_object).decode
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def _duplicate_path(obj: Any, path: str = "") -> tuple[str, str] | None:
    """The path and key of the first object (depth first) that names a key twice, in ``_Pairs`` form."""
    if isinstance(obj, _Pairs):
        seen: set[str] = set()
        for key, value in obj:
            if key in seen:
                return f"{path}.{key}" if path else key, key
            seen.add(key)
        for key, value in obj:
            found = _duplicate_path(value, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found = _duplicate_path(value, f"{path}[{i}]")
            if found is not None:
                return found
    return None


class _Pairs(list):  # type: ignore[type-arg]
    """An object's (key, value) pairs as written, to find a duplicated key."""


def loads(text: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode one JSON text strictly (RFC 8259 plus no duplicate keys), without recursing past the limit.

    ``NaN``/``Infinity`` and numbers too large for a double decode to non-finite floats, which the converter
    rejects naming their field.

    Raises:
        InputError: ``malformed_json``, ``duplicate_key`` (with the key's path) or ``too_deeply_nested``.
    """
    # Cheap bound first: fewer brackets than the limit cannot nest deeper than it.
    if text.count("[") + text.count("{") > limits.max_depth and _depth(text) > limits.max_depth:
        raise InputError(reasons.TOO_DEEPLY_NESTED,
                         f"JSON nested deeper than {limits.max_depth} levels (BALLOTSTREAM_INGEST_MAX_DEPTH)")
    try:
        return _decode(text)
    except _DuplicateKey:
        found = _duplicate_path(json.loads(text, object_pairs_hook=_Pairs))
        path, key = found if found is not None else (None, "?")
        raise InputError(reasons.DUPLICATE_KEY, f"{path or key}: key {key!r} appears twice in one object",
                         field=path) from None
    except RecursionError:
        raise InputError(reasons.TOO_DEEPLY_NESTED, "JSON nested too deeply to parse") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing over 4,300 digits
        raise InputError(reasons.MALFORMED_JSON, f"malformed JSON: {exc}") from None


def jsonl_items(file: str, data: bytes, start: int, kind: str | None, topic: TopicSpec | None,
                limits: Limits = DEFAULT_LIMITS) -> Iterator[Parsed | Rejected]:
    """Parse JSON Lines bytes; ``start`` is the file line number of the first line (chunks of a file).

    Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (universal newlines). Each line is decoded on its own,
    so bytes that are not UTF-8 reject that line only.
    """
    max_bytes = limits.max_record_bytes
    for line, data_line in enumerate(split_lines(data), start):
        if len(data_line) > max_bytes:
            raw = head(data_line[: RAW_HEAD_CHARS * 4].decode("utf-8", "replace"))
            yield Rejected(file, line, raw, reasons.RECORD_TOO_LARGE,
                           f"line longer than {max_bytes} bytes (BALLOTSTREAM_INGEST_MAX_RECORD_BYTES)", None, kind)
            continue
        try:
            raw = data_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield encoding_error(file, line, data_line, exc, kind)
            continue
        if not raw.strip(" \t"):
            continue  # blank lines are layout, not records
        try:
            obj = loads(raw, limits)
        except InputError as exc:
            yield Rejected(file, line, raw, exc.reason_code, exc.reason, exc.field, kind)
            continue
        yield parse_object(obj, file=file, line=line, raw=raw, kind=kind, topic=topic)
