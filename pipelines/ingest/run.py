"""Ingest input files into Kafka: valid events to their topics, every rejected record to the dead-letter topic.

Reference data already in Kafka is read first, so references in the files are checked against everything
declared so far. Large inputs are cut into chunks that worker processes parse, validate and encode
(:mod:`pipelines.ingest.parallel`); this process checks references in file order and produces the bytes
(:mod:`pipelines.ingest.sink`). Events go out through an idempotent producer with ``acks=all``; a record is never dropped
silently: it is produced, or dead-lettered with its reason, and the report counts both.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaProducer
from kafka.errors import KafkaError

from pipelines.contract.topics import DEAD_LETTER, REFERENCE
from pipelines.errors import InputError, ServiceUnavailable
from pipelines.ingest import reasons
from pipelines.ingest.checks import KnownIds
from pipelines.ingest.chunks import chunks
from pipelines.ingest.parallel import in_order, start_pool, worker_count
from pipelines.ingest.readers import CSV_SUFFIXES, JSONL_SUFFIXES, Parsed
from pipelines.ingest.records import Limits, kind_topic
from pipelines.ingest.sink import Sink, dead_letter
from pipelines.kafka import snapshot
from pipelines.kafka.registry import RegistryClient
from pipelines.kafka.serde import BytesSerializer, serializer
from pipelines.settings import Settings

__all__ = ["IngestReport", "dead_letter", "ingest", "known_ids_from_kafka", "producer"]


@dataclass
class IngestReport:
    """What an ingest did: counts per outcome, per topic and per rejection reason."""

    read: int = 0
    produced: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Seconds per stage: read_validate and encode (CPU seconds, summed over worker processes), produce (wall
    # time checking and handing records to the producer, in this process), flush (waiting for the last acks).
    stages: Counter[str] = field(default_factory=Counter)
    # Peak resident memory (KiB) per process that parsed chunks (this one too, when it did).
    peak_rss_kib: dict[int, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def produced_total(self) -> int:
        return sum(self.produced.values())

    def lines(self) -> list[str]:
        rate = self.read / self.seconds if self.seconds else 0.0
        out = [f"read {self.read}, produced {self.produced_total}, rejected {self.rejected_total} "
               f"in {self.seconds:.1f}s ({rate:,.0f} records/s)"]
        out += [f"  produced to {topic}: {n}" for topic, n in sorted(self.produced.items())]
        out += [f"  rejected {reason}: {n}" for reason, n in sorted(self.rejected.items())]
        if self.rejected_total:
            out.append(f"  rejected records are on {DEAD_LETTER.name} with their file, line and reason")
        return out


def known_ids_from_kafka(settings: Settings) -> KnownIds:
    """Every id declared on the reference topic so far."""
    known = KnownIds()
    snap = snapshot.capture(settings, [settings.topic(REFERENCE.name)])
    for record in snapshot.read(settings, snap):
        known.add(Parsed("", 0, "", record.record_type, record.topic, record.key, record.value))
    return known


def producer(settings: Settings) -> KafkaProducer:
    """An idempotent, ``acks=all`` producer of pre-encoded bytes, tuned for bulk loads.

    Values arrive Avro-encoded and Confluent-framed (workers encode, :func:`pipelines.kafka.serde.frame` frames), so
    both serializers pass bytes through. Large batches and a short linger amortise per-request cost. No
    compression (the lz4/zstd extras are not installed; whether it pays on a local broker is not measured).
    """
    try:
        return KafkaProducer(
            **settings.kafka_config(),
            acks="all",
            enable_idempotence=True,
            linger_ms=50,
            batch_size=1024 * 1024,
            max_request_size=8 * 1024 * 1024,
            key_serializer=BytesSerializer(),
            value_serializer=BytesSerializer(),
        )
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc


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

    Returns:
        The report; ``failed`` lists delivery errors (none means Kafka acknowledged every record).
    """
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
            for path in paths:
                csv = path.suffix.lower() in CSV_SUFFIXES
                for chunk, result in in_order(chunks(path, csv, kind, limits=limits), kind, pool):
                    sink.put(chunk, result)
                    if progress is not None:
                        progress(len(result.items))
            sink.flush()
        except KafkaError as exc:
            raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
        finally:
            sink.close()
    finally:
        if pool is not None:
            pool.terminate()
    report.seconds = time.perf_counter() - started
    return report
