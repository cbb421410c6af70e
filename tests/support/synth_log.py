"""The events of a ``ballotstream synth`` election as Kafka would hold them, without Kafka: for the benchmarks that
fold it and the tests that need its realistic shape (random event ids, councils, regions, constituencies)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

from pipelines.contract.topics import EVENT_TOPICS
from pipelines.generator.files import FILES
from pipelines.ingest.checks import KnownIds, with_references
from pipelines.ingest.readers import Parsed, read_path
from pipelines.kafka.log_record import LogRecord

_PARTITIONS = {spec.name: spec.partitions for spec in EVENT_TOPICS}


def synth_records(directory: Path, rejected: list[int] | None = None) -> Iterator[LogRecord]:
    """The events of the synthesized files in ``directory``, parsed and reference-checked as ingest does, placed
    on their topic's partitions by key (as the producer places them) with per-partition offsets.

    Records ingest would reject are counted in ``rejected`` when given (they are dead letters: the fold skips
    them), else they stop the run (clean data has none)."""
    known, offsets = KnownIds(), {}
    for name in FILES:
        for item in with_references(read_path(directory / name), known):
            if not isinstance(item, Parsed):
                if rejected is None:
                    raise SystemExit(f"the generator wrote a rejected record: {item}")
                rejected.append(1)
                continue
            partition = zlib.crc32(item.key.encode()) % _PARTITIONS.get(item.topic, 1)
            offset = offsets.get((item.topic, partition), 0)
            offsets[(item.topic, partition)] = offset + 1
            yield LogRecord(item.topic, partition, offset, item.key, item.record_type, 1, item.value)
