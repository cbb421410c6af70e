"""Messages as the wire holds them: v2 record batches built by kafka-python's own batch builder, parsed into the
``RecordBlock``s a snapshot's consumer hands over (``pipelines.kafka.record_batches``)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any

from kafka import TopicPartition
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from pipelines.kafka.record_batches import RecordBlock, parse


def batch_bytes(records: list[tuple[int, bytes | None, bytes | None]], *, compression: int = 0,
                headers: list[tuple[str, bytes | None]] | None = None, timestamp: int = 1_700_000_000_000
                ) -> bytes:
    """One v2 batch of (offset, key, value) records, offsets ascending from the first (its base offset)."""
    base = records[0][0]
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    for offset, key, value in records:
        builder.append(offset - base, timestamp=timestamp + offset - base, key=key, value=value,
                       headers=headers or [])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base)  # the base offset, which the broker sets (outside the CRC)
    return bytes(data)


def block_of(batches: list[bytes]) -> RecordBlock:
    """Uncompressed batches parsed into one block, as the consumer parses a fetch's batches."""
    parts = []
    for data in batches:
        batch = DefaultRecordBatch(data)
        parts.append((data, DefaultRecordBatch.HEADER_STRUCT.size, batch.records_count, batch.base_offset))
    return parse(parts)


def blocks(messages: Iterable[tuple[TopicPartition, Any]], per_batch: int = 3, per_fetch: int = 2
           ) -> Iterator[tuple[TopicPartition, RecordBlock]]:
    """``(partition, message)`` pairs (anything with ``offset``, ``key`` and ``value``) as ``(partition,
    block)`` pairs: each run of one partition's messages in batches of ``per_batch``, ``per_fetch`` batches a
    block."""
    for tp, group in groupby(messages, key=lambda pair: pair[0]):
        records = [(m.offset, m.key, m.value) for _, m in group]
        batches = [batch_bytes(records[i:i + per_batch]) for i in range(0, len(records), per_batch)]
        for i in range(0, len(batches), per_fetch):
            yield tp, block_of(batches[i:i + per_fetch])
