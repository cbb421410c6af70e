"""The record timestamps at given log positions: how long the oldest event not yet released has been waiting."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kafka import TopicPartition

from pipelines.kafka.clients import consumer, kafka_errors
from pipelines.settings import Settings

_POLL_MS = 1000


def timestamps_at(settings: Settings, positions: Mapping[tuple[str, int], int],
                  end: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], datetime]:
    """The timestamp of the first record at or after ``positions[tp]`` and before ``end[tp]``, per partition.

    Kafka's record timestamp (the producer's create time unless the topic says log-append time). A partition
    with no record in that range (compaction or transaction markers can leave an offset empty) is absent.
    """
    wanted = {TopicPartition(t, p): offset for (t, p), offset in positions.items() if offset < end[(t, p)]}
    if not wanted:
        return {}
    source = consumer(settings, max_poll_records=1)
    found: dict[tuple[str, int], datetime] = {}
    try:
        with kafka_errors(settings, "reading record timestamps"):
            source.assign(list(wanted))
            for tp, offset in wanted.items():
                source.seek(tp, offset)
            todo = dict(wanted)
            while todo:
                for tp, messages in source.poll(timeout_ms=_POLL_MS).items():
                    if tp in todo and messages and messages[0].offset < end[(tp.topic, tp.partition)]:
                        found[(tp.topic, tp.partition)] = datetime.fromtimestamp(messages[0].timestamp / 1000, UTC)
                        del todo[tp]
                        source.pause(tp)  # its first record is all we need
                # Position, not offsets seen: a range of only gaps ends with no record.
                for tp in [tp for tp in todo if source.position(tp) >= end[(tp.topic, tp.partition)]]:
                    del todo[tp]
                    source.pause(tp)
    finally:
        source.close()
    return found
