"""Ingest input files into Kafka: valid events to their topics, every rejected record to the dead-letter topic.

Reference data already in Kafka is read first, so references in the files are checked against everything
declared so far. Large inputs are cut into chunks that worker processes parse, validate and encode
(:mod:`pipelines.ingest.parallel`); this process checks references in file order and produces the bytes
(:mod:`pipelines.ingest.sink`). Events go out through an idempotent producer with ``acks=all``; a record is never dropped
silently: it is produced, or dead-lettered with its reason, and the report counts both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pipelines.contract import reasons
from pipelines.contract.topics import REFERENCE
from pipelines.errors import ConfigError, InputError
from pipelines.ingest import converted, mapped_csv
from pipelines.ingest import openelections as oe
from pipelines.ingest.checks import KnownIds
from pipelines.ingest.chunks import chunks
from pipelines.ingest.openelections_events import Conversion, convert
from pipelines.ingest.parallel import in_order, start_pool, worker_count
from pipelines.ingest.readers import CSV_SUFFIXES, JSONL_SUFFIXES, Parsed
from pipelines.ingest.records import Limits, kind_topic
from pipelines.ingest.report import IngestReport
from pipelines.ingest.sink import Sink, bulk_producer, dead_letter
from pipelines.kafka import snapshot
from pipelines.kafka.clients import kafka_errors
from pipelines.kafka.registry import RegistryClient
from pipelines.kafka.serde import serializer
from pipelines.settings import Settings

__all__ = ["IngestReport", "bulk_producer", "dead_letter", "ingest", "known_ids_from_kafka"]


def known_ids_from_kafka(settings: Settings) -> KnownIds:
    """Every id declared on the reference topic so far."""
    known = KnownIds()
    snap = snapshot.capture(settings, [settings.topic(REFERENCE.name)])
    for record in snapshot.read(settings, snap):
        known.add(Parsed("", 0, "", record.record_type, record.topic, record.key, record.value))
    return known


def _ordered(paths: Iterable[Path]) -> list[Path]:
    """Reference files first: everything else points into them."""
    return sorted(paths, key=lambda p: "reference" not in p.name)


def ingest(
    paths: Iterable[Path],
    settings: Settings,
    *,
    kind: str | None = None,
    progress: Callable[[int], None] | None = None,
    registry: RegistryClient | None = None,
    workers: int | None = None,
    fmt: str = "auto",
    mapping: Path | None = None,
) -> IngestReport:
    """Ingest files; see the module docstring.

    Args:
        paths: ``.jsonl`` / ``.csv`` files.
        settings: where Kafka and the registry are.
        kind: only accept this kind (reference, results, observations, news); others are dead-lettered.
        progress: called with the number of records handled since the last call.
        registry: an existing registry client, to share its caches.
        workers: processes that parse and encode chunks of the files; default one per CPU for large inputs
            and none (all in this process) for small ones. Results are the same either way.
        fmt: ``auto`` (by suffix: JSON Lines or the tally CSV), ``openelections`` (OpenElections precinct
            CSVs) or ``csv`` (any CSV, read through ``mapping``): the last two are converted to events
            (:mod:`pipelines.ingest.openelections_events`) that then take the JSON Lines path.
        mapping: the YAML column mapping of ``fmt="csv"``.

    Returns:
        The report; ``failed`` lists delivery errors (none means Kafka acknowledged every record).
    """
    if fmt != "auto":
        return _ingest_converted(list(paths), settings, kind, fmt, mapping, registry)
    paths = _ordered(paths)
    for path in paths:  # fail before touching Kafka: a wrong file is the user's most likely mistake
        if path.suffix.lower() not in JSONL_SUFFIXES + CSV_SUFFIXES:
            raise InputError(reasons.UNSUPPORTED_FILE,
                             f"{path}: unsupported input format {path.suffix or '(none)'!r} (use .jsonl or .csv)")
    kind_topic(kind)  # an unknown kind fails here, before any work
    started = time.perf_counter()
    report = IngestReport()
    limits = Limits.of(settings)
    pool = start_pool(worker_count(paths, workers))
    try:
        sink = Sink(settings, serializer(settings, registry), known_ids_from_kafka(settings), report, kind)
        try:
            with kafka_errors(settings):
                for path in paths:
                    csv = path.suffix.lower() in CSV_SUFFIXES
                    for chunk, result in in_order(chunks(path, csv, kind, limits=limits), kind, pool):
                        sink.put(chunk, result)
                        if progress is not None:
                            progress(len(result.items))
                sink.flush()
        finally:
            sink.close()
    finally:
        if pool is not None:
            pool.terminate()
    report.seconds = time.perf_counter() - started
    return report


def _convert(paths: list[Path], fmt: str, mapping: Path | None) -> Conversion:
    """The events of OpenElections files, or of CSV files read through a mapping."""
    if fmt == "openelections":
        return convert(oe.read_all(paths))
    if fmt != "csv" or mapping is None:
        raise ConfigError(f"format: {fmt!r} needs to be auto, openelections, or csv with a mapping")
    spec = mapped_csv.load_mapping(mapping)
    return convert((mapped_csv.read(p, spec) for p in paths), source=spec.source, status=spec.status,
                   methods=spec.methods)


def _ingest_converted(paths: list[Path], settings: Settings, kind: str | None, fmt: str, mapping: Path | None,
                      registry: RegistryClient | None) -> IngestReport:
    """Ingest tabular files converted to events (all of them at once: their reference events are shared)."""
    for path in paths:
        if path.suffix.lower() not in CSV_SUFFIXES:
            raise InputError(reasons.UNSUPPORTED_FILE, f"{path}: --format {fmt} reads .csv files")
    kind_topic(kind)
    started = time.perf_counter()
    conversion = _convert(paths, fmt, mapping)
    report = IngestReport()
    report.skipped.update(conversion.skipped)
    result, parsed = converted.results(conversion, kind, Limits.of(settings))
    sink = Sink(settings, serializer(settings, registry), known_ids_from_kafka(settings), report, kind)
    try:
        with kafka_errors(settings):
            sink.put(None, result, parsed)
            sink.flush()
    finally:
        sink.close()
    report.seconds = time.perf_counter() - started
    return report
