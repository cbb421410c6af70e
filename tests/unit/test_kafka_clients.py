"""The shared Kafka pieces: one error wrapper, one read-up-to-end-offsets loop (no broker needed)."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError

from pipelines.errors import ServiceUnavailable
from pipelines.kafka.clients import kafka_errors, read_until
from pipelines.settings import Settings
from tests.support.record_blocks import batch_bytes, block_of

SETTINGS = Settings(kafka_bootstrap_servers="k1:9092,k2:9092")


def test_kafka_errors_names_the_bootstrap_servers_in_one_sentence():
    with pytest.raises(ServiceUnavailable) as raised, kafka_errors(SETTINGS):
        raise KafkaConnectionError("no route")
    assert str(raised.value) == "Kafka at k1:9092,k2:9092: KafkaConnectionError: no route"
    assert isinstance(raised.value.__cause__, KafkaConnectionError)
    with pytest.raises(ServiceUnavailable, match=r"^Kafka at k1:9092,k2:9092: announcing a release: "), \
            kafka_errors(SETTINGS, doing="announcing a release"):
        raise KafkaConnectionError("no route")
    with pytest.raises(ValueError), kafka_errors(SETTINGS):  # anything else passes through untouched
        raise ValueError("not Kafka's")


class _Msg(NamedTuple):
    offset: int


class _FakeConsumer:
    """Hands out each partition's messages in batches of two; offsets may have gaps (compaction)."""

    def __init__(self, logs: dict[TopicPartition, list[int]], start: dict[TopicPartition, int]) -> None:
        self.logs, self.pos, self.paused = logs, dict(start), set()

    def position(self, tp: TopicPartition) -> int:
        return self.pos[tp]

    def pause(self, tp: TopicPartition) -> None:
        self.paused.add(tp)

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        out = {}
        for tp, offsets in self.logs.items():
            if tp in self.paused:
                continue
            batch = [o for o in offsets if o >= self.pos[tp]][:2]
            if batch:
                out[tp] = [_Msg(o) for o in batch]
                self.pos[tp] = batch[-1] + 1
        return out


def test_read_until_stops_at_each_end_offset_and_pauses_finished_partitions():
    a, b, c = (TopicPartition("t", p) for p in range(3))
    source = _FakeConsumer({a: [0, 1, 2, 5, 6, 7], b: [3, 4], c: [0, 1]}, {a: 0, b: 3, c: 0})
    read = [(tp.partition, m.offset) for tp, m in read_until(source, {a: 6, b: 5, c: 0}, poll_ms=1)]
    assert sorted(read) == [(0, 0), (0, 1), (0, 2), (0, 5), (1, 3), (1, 4)]
    assert source.paused == {a, b}


def test_read_until_without_end_follows():
    a = TopicPartition("t", 0)
    source = _FakeConsumer({a: [0, 1, 2, 3, 4]}, {a: 0})
    reader = read_until(source, None, poll_ms=1)
    assert [next(reader)[1].offset for _ in range(5)] == [0, 1, 2, 3, 4]


class _BlockConsumer:
    """Hands out a partition's records as one block (``record_batches.install``), the last past the end."""

    def __init__(self, tp: TopicPartition) -> None:
        self.tp, self.pos, self.paused = tp, 0, set()

    def position(self, tp: TopicPartition) -> int:
        return self.pos

    def pause(self, tp: TopicPartition) -> None:
        self.paused.add(tp)

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        self.pos = 6
        return {self.tp: [block_of([batch_bytes([(o, b"k", b"v") for o in range(6)])])]}


def test_read_until_cuts_a_block_at_the_end_offset():
    a = TopicPartition("t", 0)
    read = list(read_until(_BlockConsumer(a), {a: 4}, poll_ms=1))
    assert [(tp, block.offsets.tolist()) for tp, block in read] == [(a, [0, 1, 2, 3])]
