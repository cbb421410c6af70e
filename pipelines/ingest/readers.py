"""Read input files into :class:`Parsed` events or :class:`Rejected` records, one per input record.

JSON Lines carry any ingestible record type; CSV carries station tallies (see :mod:`pipelines.ingest.tally_csv`).
A bad record never stops the file: it is yielded as :class:`Rejected` and the reader moves on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipelines.contract import reasons
from pipelines.contract.record_types import INGESTIBLE
from pipelines.contract.topics import TopicSpec
from pipelines.errors import InputError
from pipelines.ingest.convert import to_avro
from pipelines.ingest.records import Parsed, Rejected, kind_topic, route
from pipelines.ingest.tally_csv import read_csv

__all__ = ["Parsed", "Rejected", "jsonl_items", "parse_object", "read_path"]

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)


def read_path(path: Path, kind: str | None = None) -> Iterator[Parsed | Rejected]:
    """Parse one input file.

    Args:
        path: a ``.jsonl`` file (any record type) or a ``.csv`` file (StationTally rows).
        kind: if given (reference, results, observations, news), records of other topics are rejected
            with ``wrong_kind``.

    Yields:
        One :class:`Parsed` or :class:`Rejected` per input record, in file order.

    Raises:
        InputError: ``unsupported_file`` when the suffix is neither JSON Lines nor CSV.
        ConfigError: ``kind`` is unknown.
    """
    topic = kind_topic(kind)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path, kind, topic)
    if suffix in CSV_SUFFIXES:
        return read_csv(path, kind, topic)
    raise InputError(reasons.UNSUPPORTED_FILE, f"{path}: unsupported input format {suffix or '(none)'!r}")


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


def _read_jsonl(path: Path, kind: str | None, topic: TopicSpec | None) -> Iterator[Parsed | Rejected]:
    with path.open(encoding="utf-8") as handle:
        yield from jsonl_items(str(path), handle, 1, kind, topic)


def jsonl_items(file: str, lines: Iterable[str], start: int, kind: str | None,
                topic: TopicSpec | None) -> Iterator[Parsed | Rejected]:
    """Parse JSON Lines text; ``start`` is the file line number of the first line (chunks of a file)."""
    loads = json.loads
    for line, text in enumerate(lines, start):
        raw = text.rstrip("\r\n")
        if not raw.strip():
            continue  # blank lines are layout, not records
        try:
            obj = loads(raw)
        except ValueError as exc:
            yield Rejected(file, line, raw, reasons.MALFORMED_JSON, f"malformed JSON: {exc}", None, kind)
            continue
        yield parse_object(obj, file=file, line=line, raw=raw, kind=kind, topic=topic)
