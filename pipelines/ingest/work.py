"""The per-chunk work of an ingest, run in worker processes: parse, validate and Avro-encode whole chunks.

The readers' own code parses each chunk (so every rule and reason is the same as reading the file at once);
this module only turns each valid event into what the main process needs to produce it: bytes, the partition
hash of its key and the ids it refers to. Reference checks stay in the main process because they depend on
everything before them in file order.
"""

from __future__ import annotations

import io
import os
import resource
import time
from collections.abc import Iterator
from functools import cache
from typing import Any, NamedTuple

import fastavro
from kafka.partitioner.default import murmur2

from pipelines.contract import reasons, schemas
from pipelines.ingest.checks import References, declared, references
from pipelines.ingest.chunks import Chunk
from pipelines.ingest.readers import Parsed, Rejected, jsonl_items
from pipelines.ingest.records import head, kind_topic
from pipelines.ingest.tally_csv import csv_items


class Encoded(NamedTuple):
    """A valid event, encoded. A tuple, because it crosses a process boundary (pickles small and fast).

    Attributes:
        line: input line (first row of a CSV station).
        record_type: short Avro record name.
        topic: declared topic name (without the environment's prefix).
        key: message key, UTF-8.
        body: Avro binary body, without the Confluent header (the main process frames it with the schema id).
        key_hash: murmur2 of the key, as kafka-python's default partitioner computes it (partition = hash % n).
        refs: the ids the event points at (see :func:`pipelines.ingest.checks.references`).
        declares: the (set, id) the event declares, for reference events.
    """

    line: int
    record_type: str
    topic: str
    key: bytes
    body: bytes
    key_hash: int
    refs: References
    declares: tuple[str, str] | None


class ChunkResult(NamedTuple):
    """A chunk's results in file order, the CPU seconds spent parsing+validating and encoding them, the peak
    RSS (KiB) of the process that did it (worker processes are not this process's children: they fork from
    the fork server, so getrusage(RUSAGE_CHILDREN) cannot see them)."""

    items: list[Encoded | Rejected]
    parse_seconds: float
    encode_seconds: float
    peak_rss_kib: int = 0
    pid: int = 0


def read_chunk(chunk: Chunk, kind: str | None) -> Iterator[Parsed | Rejected]:
    """The reader's results for one chunk, exactly as reading the whole file would give them there."""
    if chunk.csv:
        return csv_items(chunk.file, chunk.data, chunk.start, kind, kind_topic(kind), chunk.limits, chunk.columns)
    return jsonl_items(chunk.file, chunk.data, chunk.start, kind, kind_topic(kind), chunk.limits)


@cache
def _schema(record_type: str) -> Any:
    return schemas.parsed_schema(record_type)


def encode(parsed: Parsed) -> Encoded:
    """The :class:`Encoded` form of a valid event."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, _schema(parsed.record_type), parsed.value)
    key = parsed.key.encode()
    return Encoded(parsed.line, parsed.record_type, parsed.topic, key, buf.getvalue(), murmur2(key) & 0x7FFFFFFF,
                   references(parsed.record_type, parsed.value), declared(parsed.record_type, parsed.value))


def encode_within(parsed: Parsed, limit: int) -> Encoded | Rejected:
    """The encoded event, or its rejection if it cannot be produced (bigger than ``limit`` bytes once encoded:
    defaults and ids filled in can make it longer than its input line)."""
    try:
        item = encode(parsed)
    except (ValueError, TypeError, OverflowError) as exc:  # validated values always encode: a safety net
        return Rejected(parsed.file, parsed.line, parsed.raw, reasons.WRONG_TYPE, f"cannot encode: {exc}", None,
                        None)
    if len(item.body) + len(item.key) > limit:
        return Rejected(parsed.file, parsed.line, head(parsed.raw), reasons.RECORD_TOO_LARGE,
                        f"encoded event longer than {limit} bytes (BALLOTSTREAM_INGEST_MAX_RECORD_BYTES)", None, None)
    return item


def process_chunk(chunk: Chunk, kind: str | None) -> ChunkResult:
    """Parse, validate and encode one chunk (the function the worker processes run)."""
    # CPU time, not wall time: workers share the cores with the main process, and wall time would count the
    # waits for a core as work.
    started = time.process_time()
    parsed = list(read_chunk(chunk, kind))
    middle = time.process_time()
    limit = chunk.limits.max_record_bytes
    items = [encode_within(p, limit) if isinstance(p, Parsed) else p for p in parsed]
    return ChunkResult(items, middle - started, time.process_time() - middle,
                       resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, os.getpid())
