"""The main process's side of an ingest: reference checks in file order, framing, and producing bytes.

Workers hand over encoded events with the ids they point at; here each is checked against everything declared
before it (exactly :func:`pipelines.ingest.checks.check_references`, which runs again on the rare failure to
build the rejection), then framed with its schema id and sent to an explicit partition: the one kafka-python's
default partitioner would pick for the key, so every version of a key stays in one partition, in file order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from pipelines.contract.topics import DEAD_LETTER
from pipelines.ingest.checks import KnownIds, check_references
from pipelines.ingest.chunks import Chunk
from pipelines.ingest.readers import Parsed, Rejected
from pipelines.ingest.report import IngestReport
from pipelines.ingest.work import ChunkResult, Encoded, read_chunk
from pipelines.kafka.clients import producer
from pipelines.kafka.serde import AvroSerializer, BytesSerializer, frame
from pipelines.settings import Settings


def bulk_producer(settings: Settings) -> KafkaProducer:
    """An idempotent, ``acks=all`` producer of pre-encoded bytes, tuned for bulk loads.

    Values arrive Avro-encoded and Confluent-framed (workers encode, :func:`pipelines.kafka.serde.frame` frames), so
    both serializers pass bytes through. Large batches and a short linger amortise per-request cost. No
    compression (the lz4/zstd extras are not installed; whether it pays on a local broker is not measured).
    """
    return producer(
        settings,
        linger_ms=50,
        batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
        key_serializer=BytesSerializer(),
        value_serializer=BytesSerializer(),
    )


def dead_letter(rejected: Rejected) -> dict[str, Any]:
    """The DeadLetter value of a rejected record."""
    return {
        "rejected_at": datetime.now(UTC),
        "file": rejected.file,
        "line": rejected.line,
        "field": rejected.field,
        "reason_code": rejected.reason_code,
        "reason": rejected.reason,
        "raw": rejected.raw,
        "kind": rejected.kind,
    }


class Sink:
    """Checks, frames and produces chunk results; counts them in the report and times the stages."""

    def __init__(self, settings: Settings, ser: AvroSerializer, known: KnownIds, report: IngestReport,
                 kind: str | None, kafka: KafkaProducer | None = None) -> None:
        self.settings, self.ser, self.known, self.report, self.kind = settings, ser, known, report, kind
        self.producer = kafka if kafka is not None else bulk_producer(settings)
        self._topics: dict[str, str] = {}
        self._partitions: dict[str, list[int]] = {}
        self._schema_ids: dict[tuple[str, str], int] = {}
        self.stages: Counter[str] = Counter()
        report.stages = self.stages

    def _failed(self, exc: BaseException) -> None:
        self.report.failed.append(str(exc))

    def _topic(self, name: str) -> str:
        full = self._topics.get(name)
        if full is None:
            full = self._topics[name] = self.settings.topic(name)
            self._partitions[full] = sorted(self.producer.partitions_for(full))
        return full

    def put(self, chunk: Chunk | None, result: ChunkResult, parsed: Mapping[int, Parsed] | None = None) -> None:
        """Produce one chunk's results in order (``chunk`` is kept to rebuild a rejection's raw text).

        Events converted from another format (:mod:`pipelines.ingest.converted`) come without a chunk: ``parsed``
        then maps each :attr:`Encoded.line` to its parsed event.
        """
        started = time.perf_counter()
        self.stages["read_validate"] += result.parse_seconds
        self.stages["encode"] += result.encode_seconds
        if result.pid:
            self.report.peak_rss_kib[result.pid] = result.peak_rss_kib
        known, send, produced, report = self.known, self.producer.send, self.report.produced, self.report
        reparsed: Mapping[int, Parsed] | None = parsed
        for item in result.items:
            report.read += 1
            if type(item) is not Encoded:
                self.reject(item)  # type: ignore[arg-type]
                continue
            if not known.covers(item.refs):
                # Reference checks must run here, in file order: a worker cannot know what earlier chunks
                # declare. The rejection needs the parsed record (which field, its raw text), which workers do
                # not send back: shipping it for every event would pickle each one twice to serve the rare
                # rejection. So, only then, the chunk is read again here (the worker's reader, same results).
                if reparsed is None:
                    reparsed = {p.line: p for p in read_chunk(chunk, self.kind) if isinstance(p, Parsed)}  # type: ignore[arg-type]
                rejected = check_references(reparsed[item.line], known, self.kind)
                if rejected is not None:
                    self.reject(rejected)
                    continue
            if item.declares is not None:
                known.declare(*item.declares)
            topic = self._topic(item.topic)
            schema_id = self._schema_ids.get((topic, item.record_type))
            if schema_id is None:
                schema_id = self._schema_ids[(topic, item.record_type)] = self.ser.schema_id(topic, item.record_type)
            partitions = self._partitions[topic]
            send(topic, key=item.key, value=frame(schema_id, item.body),
                 partition=partitions[item.key_hash % len(partitions)]).add_errback(self._failed)
            produced[item.topic] += 1
        self.stages["produce"] += time.perf_counter() - started

    def reject(self, item: Rejected) -> None:
        """Dead-letter one record (keyed ``file:line``; the default partitioner places it)."""
        topic = self._topic(DEAD_LETTER.name)
        value = self.ser.encode(topic, "DeadLetter", dead_letter(item))
        self.producer.send(topic, key=f"{item.file}:{item.line}".encode(), value=value).add_errback(self._failed)
        self.report.rejected[item.reason_code] += 1
        self.report.note_rejection(item.file, item.line, item.field, item.reason)

    def flush(self) -> None:
        """Wait until Kafka has acknowledged (or failed) everything sent."""
        started = time.perf_counter()
        self.producer.flush()
        self.stages["flush"] += time.perf_counter() - started

    def close(self) -> None:
        self.producer.close()
