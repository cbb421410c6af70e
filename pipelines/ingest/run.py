"""Ingest input files into Kafka: valid events to their topics, every rejected record to the dead-letter topic.

Reference data already in Kafka is read first, so references in the files are checked against everything
declared so far. Events go out through an idempotent producer with ``acks=all``; a record is never dropped
silently: it is produced, or dead-lettered with its reason, and the report counts both.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from pipelines import snapshot
from pipelines.codec import serializer
from pipelines.errors import InputError, ServiceUnavailable
from pipelines.ingest.checks import KnownIds, with_references
from pipelines.ingest import reasons
from pipelines.ingest.readers import CSV_SUFFIXES, JSONL_SUFFIXES, Parsed, Rejected, read_path
from pipelines.registry import RegistryClient
from pipelines.serde import AvroSerializer, KeySerializer
from pipelines.settings import Settings
from pipelines.topics import DEAD_LETTER, REFERENCE


@dataclass
class IngestReport:
    """What an ingest did: counts per outcome, per topic and per rejection reason."""

    read: int = 0
    produced: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

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


def producer(settings: Settings, value_serializer: AvroSerializer) -> KafkaProducer:
    """An idempotent, ``acks=all`` producer tuned for bulk loads (large batches, short linger)."""
    try:
        return KafkaProducer(
            **settings.kafka_config(),
            acks="all",
            enable_idempotence=True,
            linger_ms=50,
            batch_size=1024 * 1024,
            max_request_size=8 * 1024 * 1024,
            key_serializer=KeySerializer(),
            value_serializer=value_serializer,
        )
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc


def dead_letter(rejected: Rejected) -> dict[str, Any]:
    return {
        "rejected_at": datetime.now(timezone.utc),
        "file": rejected.file,
        "line": rejected.line,
        "field": rejected.field,
        "reason_code": rejected.reason_code,
        "reason": rejected.reason,
        "raw": rejected.raw,
        "kind": rejected.kind,
    }


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
) -> IngestReport:
    """Ingest files; see the module docstring.

    Args:
        paths: ``.jsonl`` / ``.csv`` files.
        settings: where Kafka and the registry are.
        kind: only accept this kind (reference, results, observations, news); others are dead-lettered.
        progress: called with the number of records handled since the last call.
        registry: an existing registry client, to share its caches.

    Returns:
        The report; ``failed`` lists delivery errors (none means Kafka acknowledged every record).
    """
    paths = _ordered(paths)
    for path in paths:  # fail before touching Kafka: a wrong file is the user's most likely mistake
        if path.suffix.lower() not in JSONL_SUFFIXES + CSV_SUFFIXES:
            raise InputError(reasons.UNSUPPORTED_FILE,
                             f"{path}: unsupported input format {path.suffix or '(none)'!r} (use .jsonl or .csv)")
    started = time.perf_counter()
    report = IngestReport()
    ser = serializer(settings, registry)
    known = known_ids_from_kafka(settings)
    prod = producer(settings, ser)

    def failed(exc: BaseException) -> None:
        report.failed.append(str(exc))

    try:
        for path in paths:
            pending = 0
            for item in with_references(read_path(path, kind), known, kind):
                report.read += 1
                if isinstance(item, Parsed):
                    value = (item.record_type, item.value)
                    prod.send(settings.topic(item.topic), key=item.key, value=value).add_errback(failed)
                    report.produced[item.topic] += 1
                else:
                    prod.send(settings.topic(DEAD_LETTER.name), key=f"{item.file}:{item.line}",
                              value=("DeadLetter", dead_letter(item))).add_errback(failed)
                    report.rejected[item.reason_code] += 1
                pending += 1
                if progress is not None and pending >= 1000:
                    progress(pending)
                    pending = 0
            if progress is not None and pending:
                progress(pending)
        prod.flush()
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}") from exc
    finally:
        prod.close()
    report.seconds = time.perf_counter() - started
    return report
