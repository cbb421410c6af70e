"""Record batches handed over as blocks (``pipelines.kafka.record_batches``) hold exactly the records
kafka-python's own parsing gives: same offsets, keys and values, for any sizes, null keys and values, headers,
compression, offset gaps and fetch offsets inside a batch; damaged bytes are a ``CorruptRecordError``."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.errors import KafkaError
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from pipelines.errors import SerializationError
from pipelines.kafka.avro_columns import Joined
from pipelines.kafka.record_batches import PartitionBlocks, RecordBlock, key_text
from pipelines.kafka.snapshot import _schema_ids
from tests.support.record_blocks import batch_bytes, block_of

TP = TopicPartition("results", 3)
GZIP = 1

payloads = st.one_of(st.none(), st.binary(max_size=40), st.binary(min_size=60, max_size=9000))
records = st.lists(st.tuples(st.integers(1, 3), payloads, payloads), min_size=1, max_size=12)
headers = st.one_of(st.just([]), st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(
    max_size=8))), min_size=1, max_size=2))


def _log(batches: list[tuple[list[tuple[int, bytes | None, bytes | None]], int, list]]) -> bytes:
    """Batches of (gap to the previous offset, key, value) records, one after another in the log."""
    offset, out = 100, []
    for recs, compression, hdrs in batches:
        placed = []
        for gap, key, value in recs:
            offset += gap
            placed.append((offset, key, value))
        out.append(batch_bytes(placed, compression=compression, headers=hdrs))
    return b"".join(out)


def _theirs(log: bytes, fetch_offset: int) -> list[tuple[int, bytes | None, bytes | None]]:
    part = Fetcher.PartitionRecords(fetch_offset, TP, MemoryRecords(log))
    return [(r.offset, r.key, r.value) for r in part.take()]


def _ours(log: bytes, fetch_offset: int, check_crcs: bool = True) -> list[tuple[int, bytes | None, bytes | None]]:
    part = PartitionBlocks(fetch_offset, TP, MemoryRecords(log), check_crcs=check_crcs)
    taken = part.take()
    assert all(isinstance(block, RecordBlock) and len(block) for block in taken)
    return [(int(b.offsets[i]), b.key(i), b.value(i)) for b in taken for i in range(len(b))]


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(st.tuples(records, st.sampled_from([0, GZIP]), headers), min_size=1, max_size=4),
       skip=st.integers(0, 20))
def test_blocks_hold_the_records_kafka_python_parses(batches, skip):
    log = _log(batches)
    fetch_offset = 100 + skip  # may fall inside a batch: the records before it are not handed over
    assert _ours(log, fetch_offset) == _theirs(log, fetch_offset)


def test_a_fetch_of_plain_batches_is_one_block_and_the_next_fetch_starts_after_it():
    log = _log([([(1, b"k", b"v" * 300)] * 5, 0, []), ([(2, None, b"")] * 3, 0, [])])
    part = PartitionBlocks(0, TP, MemoryRecords(log))
    before = PartitionBlocks.blocks
    (block,) = part.take()
    assert PartitionBlocks.blocks == before + 1
    assert block.offsets.tolist() == [101, 102, 103, 104, 105, 107, 109, 111]
    assert part.next_fetch_offset == 112


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.tuples(records, st.just(0), headers), min_size=1, max_size=3), data=st.data())
def test_damaged_bytes_are_a_kafka_error_or_what_kafka_python_reads(batches, data):
    """CRCs off, as if the damage had passed them: the parse ends in kafka-python's own error type, never another
    exception, and what it reads where kafka-python reads too is the same. It may read a record kafka-python
    refuses: kafka-python reads a record's attributes (one byte) as a varint."""
    log = bytearray(_log(batches))
    at = data.draw(st.integers(61, len(log) - 1))
    if data.draw(st.booleans()):
        log[at] = data.draw(st.integers(0, 255))
    else:
        del log[at:]
        struct.pack_into(">i", log, 8, len(log) - 12)  # the first batch's length claims only what is left
    try:
        part = Fetcher.PartitionRecords(0, TP, MemoryRecords(bytes(log)), check_crcs=False)
        theirs = [(r.offset, r.key, r.value) for r in part.take()]
        if part:
            part.take()  # raises what the first take met after some records (kafka-python defers it)
    except Exception:  # noqa: BLE001 - any failure of the reference: only ours is held to a type
        theirs = None
    try:
        ours = _ours(bytes(log), 0, check_crcs=False)
    except KafkaError:
        return
    assert theirs is None or ours == theirs


@settings(max_examples=40, deadline=None)
@given(recs=records, magic=st.sampled_from([0, 1]))
def test_batches_of_the_old_message_formats_are_blocks_too(recs, magic):
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=0, batch_size=1 << 30)
    for i, (_, key, value) in enumerate(recs):
        builder.append(i, timestamp=1_700_000_000_000 if magic else None, key=key, value=value)
    log = bytes(builder.build())
    assert _ours(log, 0) == _theirs(log, 0)
    # A value too short for a schema id at the end of the block reads as unframed, not past the block's bytes.
    blocks = PartitionBlocks(0, TP, MemoryRecords(log)).take()
    assert all((_schema_ids(block) >= -1).all() for block in blocks)


def test_keys_and_values_come_back_to_back():
    block = block_of([batch_bytes([(7, b"a", b"\x00\x00\x00\x00\x05xy"), (8, None, None), (9, "ü".encode(), b"")])])
    assert block.keys().to_pylist() == ["a", "", "ü"]
    data, sizes = block.values(skip=5)
    assert (data, sizes.tolist()) == (b"xy", [2, 0, 0])
    assert [bytes(body) for body in Joined(data, sizes)] == [b"xy", b"", b""]
    assert block.upto(9).offsets.tolist() == [7, 8]
    assert block.rows(np.array([False, True, True])).key(1) == "ü".encode()


def test_a_key_that_is_not_utf8_is_an_error_naming_where_it_is():
    block = block_of([batch_bytes([(40, b"ok", b"v"), (41, None, b"v"), (42, b"\xff\xfe", b"v")])])
    with pytest.raises(SerializationError, match="^topic results partition 3: the record at offset 42 has a key "):
        block.keys("topic results partition 3")
    assert block.upto(42).keys().to_pylist() == ["ok", ""]
    with pytest.raises(SerializationError, match="at offset 42 "):
        key_text(b"\xff\xfe", "topic results partition 3", 42)
