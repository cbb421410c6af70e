"""Events converted from a tabular source (OpenElections, a mapped CSV) → the same validation and produce path as
JSON Lines input.

Each converted event is validated exactly like a JSON Lines record (:func:`pipelines.ingest.readers.parse_object`:
Avro schema, id formats, counts) and encoded like one; the sink then checks its references in order and
produces it, or dead-letters it. Rows the conversion rejected become dead letters too, with the source file,
line, field and reason; the line's own text is their ``raw``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pipelines.ingest.openelections_events import Conversion
from pipelines.ingest.readers import Parsed, Rejected, parse_object
from pipelines.ingest.records import DEFAULT_LIMITS, Limits, kind_topic
from pipelines.ingest.work import ChunkResult, Encoded, encode_within


@cache
def _lines(file: str) -> list[str]:
    try:
        return Path(file).read_bytes().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def line_text(file: str, line: int) -> str:
    """The text of a file's physical line (1-based; universal newlines), or "" when there is none."""
    lines = _lines(file)
    return lines[line - 1] if 0 < line <= len(lines) else ""


def results(conversion: Conversion, kind: str | None = None,
            limits: Limits = DEFAULT_LIMITS) -> tuple[ChunkResult, dict[int, Parsed]]:
    """The conversion as one chunk result for :meth:`pipelines.ingest.sink.Sink.put`, and its parsed events.

    Several events can come from one source line (a row declares a precinct, a candidate and a contest), so
    :attr:`Encoded.line` is the event's position here, and the parsed events (which keep the source line for
    dead letters) are returned by that position.
    """
    topic = kind_topic(kind)
    items: list[Encoded | Rejected] = []
    parsed: dict[int, Parsed] = {}
    for i, event in enumerate(conversion.events):
        value = dict(event.value)
        raw = json.dumps(value, ensure_ascii=False, sort_keys=True)
        item = parse_object(value, file=event.file, line=event.line, raw=raw, kind=kind, topic=topic)
        if isinstance(item, Parsed):
            parsed[i] = item
            encoded = encode_within(item, limits.max_record_bytes)
            item = encoded._replace(line=i) if isinstance(encoded, Encoded) else encoded
        items.append(item)
    for p in conversion.rejected:
        items.append(Rejected(p.file, p.line, line_text(p.file, p.line), p.reason_code, p.reason, p.field, kind))
    _lines.cache_clear()
    return ChunkResult(items, 0.0, 0.0), parsed
