"""Chunked, multi-process ingest gives exactly what reading each file whole gives: the same events in the same
order per partition, the same dead letters (file, line, reason, raw) and the same reference checks."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner.default import murmur2

from pipelines.contract.topics import ALL_TOPICS
from pipelines.generator.synth import synthesize
from pipelines.ingest.checks import KnownIds, with_references
from pipelines.ingest.chunks import chunks
from pipelines.ingest.parallel import in_order, start_pool
from pipelines.ingest.readers import CSV_SUFFIXES, Parsed, Rejected, read_path
from pipelines.ingest.run import IngestReport, _ordered
from pipelines.ingest.sink import Sink
from pipelines.ingest.work import read_chunk
from pipelines.settings import Settings

PARTITIONS = {t.name: t.partitions for t in ALL_TOPICS}


class FakeFuture:
    def add_errback(self, fn: Any) -> FakeFuture:
        return self


class FakeProducer:
    """Records what would be sent; partitions as declared."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, int | None]] = []

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS[topic]))

    def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> FakeFuture:
        self.sent.append((topic, key, value, partition))
        return FakeFuture()


class FakeSerializer:
    def __init__(self) -> None:
        self.dead: list[dict[str, Any]] = []

    def schema_id(self, topic: str, record_type: str) -> int:
        return 7

    def encode(self, topic: str, record_type: str, value: dict[str, Any]) -> bytes:
        self.dead.append(value)
        return b"dead"


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, stations=300, seed=11, faults=0.03)
    return _ordered(p for p in out.iterdir() if p.name != "faults.jsonl")


def _csv(path: Path) -> bool:
    return path.suffix in CSV_SUFFIXES


@pytest.mark.parametrize("size", [512, 4096, 1 << 20])
def test_chunks_read_exactly_like_whole_files(election: list[Path], size: int) -> None:
    for path in election:
        whole = list(read_path(path))
        chunked = [r for c in chunks(path, _csv(path), None, size)
                   for r in ([c] if isinstance(c, Rejected) else read_chunk(c, None))]
        assert chunked == whole, path.name


def test_chunks_keep_line_numbers_with_crlf_lone_cr_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"type": "Nope"}\r\n\n{"a":\r{"type": "Nope"}\n' * 50 + b'{"type": "Nope"}')
    whole = list(read_path(path))
    assert [r for c in chunks(path, False, None, 64) for r in read_chunk(c, None)] == whole  # type: ignore[arg-type]


def _legacy(files: list[Path]) -> tuple[dict[tuple[str, int], list[bytes]], list[tuple[str, int, str, str, str]]]:
    """What the single-process reader + reference checks give: keys per partition in order, and dead letters."""
    by_partition: dict[tuple[str, int], list[bytes]] = defaultdict(list)
    dead = []
    known = KnownIds()
    for path in files:
        for item in with_references(read_path(path), known):
            if isinstance(item, Parsed):
                key = item.key.encode()
                by_partition[(item.topic, (murmur2(key) & 0x7FFFFFFF) % PARTITIONS[item.topic])].append(key)
            else:
                dead.append((item.file, item.line, item.reason_code, item.reason, item.raw))
    return by_partition, dead


@pytest.mark.parametrize("workers", [0, 2])
def test_parallel_ingest_keeps_order_per_partition_and_dead_letters_the_same_lines(
        election: list[Path], workers: int) -> None:
    want_partitions, want_dead = _legacy(election)
    kafka, ser, report = FakeProducer(), FakeSerializer(), IngestReport()
    sink = Sink(Settings(), ser, KnownIds(), report, None, kafka=kafka)  # type: ignore[arg-type]
    pool = start_pool(workers)
    try:
        for path in election:
            for chunk, result in in_order(chunks(path, _csv(path), None, 2048), None, pool):
                sink.put(chunk, result)
    finally:
        if pool is not None:
            pool.terminate()
    got: dict[tuple[str, int], list[bytes]] = defaultdict(list)
    for topic, key, value, partition in kafka.sent:
        if topic != "ballotstream.deadletter":
            assert value[:5] == b"\x00\x00\x00\x00\x07"  # Confluent framing with the schema id
            got[(topic, partition)].append(key)  # type: ignore[index]
    assert dict(got) == dict(want_partitions)
    assert [(d["file"], d["line"], d["reason_code"], d["reason"], d["raw"]) for d in ser.dead] == want_dead
    assert any(d[2] == "unknown_reference" for d in want_dead)  # the slow path (re-read for the raw) ran
    assert report.read == sum(len(v) for v in want_partitions.values()) + len(want_dead)
    assert report.rejected == Counter(d[2] for d in want_dead)
