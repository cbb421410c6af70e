"""Kafka record batches handed over whole, as columns (``RecordBlock``), for the snapshot read.

kafka-python parses each record of a fetched batch through six varint calls, a ``DefaultRecord``, a dropwhile
filter, two deserializer calls and a ``ConsumerRecord``: 70 % of a snapshot read's time in one process
(``benchmarks/README.md``). A consumer given ``install`` hands over one ``RecordBlock`` per partition fetch
instead: the records' offsets and where their keys and values sit in the batches' bytes, found by one short loop
over the record lengths and numpy for the fields inside. Everything else stays kafka-python's own: fetching,
positions, leaders, CRCs, decompression, control batches and aborted transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError, KafkaError
from kafka.protocol.consumer.offsets import IsolationLevel
from kafka.record.util import decode_varint

from pipelines.errors import SerializationError

# A record's fewest bytes: its length, attributes, timestamp and offset deltas, key and value sizes, headers.
_MIN_RECORD = 7
_PAD = 16  # zero bytes after a batch's records, so that a varint read past a damaged end stays in the array


class RecordBlock:
    """Records of one partition, in offset order (a fetch's batches, or part of them): ``offsets``, and per
    record where its key and value start in ``data`` and their sizes (-1: null)."""

    __slots__ = ("data", "offsets", "key_at", "key_size", "value_at", "value_size")

    def __init__(self, data: np.ndarray, offsets: np.ndarray, key_at: np.ndarray, key_size: np.ndarray,
                 value_at: np.ndarray, value_size: np.ndarray):
        self.data, self.offsets = data, offsets
        self.key_at, self.key_size, self.value_at, self.value_size = key_at, key_size, value_at, value_size

    @property
    def offset(self) -> int:
        """The first record's offset (kafka-python's consumer skips what comes before its fetch offset)."""
        return int(self.offsets[0])

    def __len__(self) -> int:
        return len(self.offsets)

    def rows(self, rows: slice | np.ndarray) -> RecordBlock:
        """The block of the records ``rows`` selects, on the same bytes."""
        return RecordBlock(self.data, self.offsets[rows], self.key_at[rows], self.key_size[rows],
                           self.value_at[rows], self.value_size[rows])

    def upto(self, stop: int) -> RecordBlock:
        """The records before offset ``stop``."""
        return self.rows(slice(0, int(np.searchsorted(self.offsets, stop, "left"))))

    def value(self, row: int) -> bytes | None:
        at, size = int(self.value_at[row]), int(self.value_size[row])
        return None if size < 0 else self.data[at:at + size].tobytes()

    def key(self, row: int) -> bytes | None:
        at, size = int(self.key_at[row]), int(self.key_size[row])
        return None if size < 0 else self.data[at:at + size].tobytes()

    def values(self, skip: int = 0) -> tuple[bytes, np.ndarray]:
        """Every value without its first ``skip`` bytes, back to back, and their sizes (a null value: 0)."""
        sizes = np.maximum(self.value_size - skip, 0)
        return gather(self.data, self.value_at + skip, sizes), sizes

    def keys(self, source: str = "a partition") -> pa.StringArray:
        """The keys as text (a null key: "").

        Raises:
            SerializationError: a key is not UTF-8; the message names ``source`` and the record's offset.
        """
        sizes = np.maximum(self.key_size, 0)
        text = gather(self.data, self.key_at, sizes)
        ends = np.cumsum(sizes)
        if len(ends) and ends[-1] >= 2**31:
            return pa.array(list(self._texts(text, ends, source)), pa.string())
        offsets = np.concatenate([[0], ends]).astype(np.int32)
        keys = pa.StringArray.from_buffers(len(sizes), pa.py_buffer(offsets), pa.py_buffer(text))
        try:
            keys.validate(full=True)
        except pa.ArrowInvalid:
            for _ in self._texts(text, ends, source):  # raises at the first key that is not text
                pass
        return keys

    def _texts(self, text: bytes, ends: np.ndarray, source: str) -> Iterator[str]:
        start = 0
        for row, end in enumerate(ends.tolist()):
            yield key_text(text[start:end], source, int(self.offsets[row]))
            start = end


def key_text(key: bytes, source: str, offset: int) -> str:
    """The key of the record at ``offset`` of ``source`` (a topic's partition) as text.

    Raises:
        SerializationError: the key is not UTF-8; the message names ``source`` and ``offset``.
    """
    try:
        return key.decode()
    except UnicodeDecodeError as exc:
        raise SerializationError(f"{source}: the record at offset {offset} has a key that is not UTF-8 ({exc})"
                                 ) from exc


def gather(data: np.ndarray, at: np.ndarray, sizes: np.ndarray) -> bytes:
    """The byte ranges ``data[at[i]:at[i] + sizes[i]]``, back to back."""
    # One slice per range: faster than numpy's index arithmetic over the ranges' bytes (measured at 4,096 ranges).
    view = memoryview(data)
    return b"".join([view[a:a + n] for a, n in zip(at.tolist(), sizes.tolist(), strict=True)])


def _varints(u8: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The zigzag varints starting at ``at`` and the positions after them."""
    value = np.zeros(len(at), np.uint64)
    size = np.zeros(len(at), np.int64)
    going = np.ones(len(at), bool)
    limit = len(u8) - 1
    for k in range(10):
        byte = u8[np.minimum(at + k, limit)].astype(np.uint64)
        value |= np.where(going, (byte & 0x7F) << np.uint64(7 * k), 0).astype(np.uint64)
        size += going
        going &= byte >= 0x80
        if not going.any():
            break
    else:
        raise CorruptRecordError("a record's varint is longer than 10 bytes")
    signed = (value >> np.uint64(1)).astype(np.int64) ^ -(value & np.uint64(1)).astype(np.int64)
    return signed, at + size


def _varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    """kafka-python's reading of the zigzag varint at ``pos`` and the position after it; an over-long varint is a
    ``CorruptRecordError``, as it is in a record kafka-python reads itself."""
    try:
        return decode_varint(buf, pos)
    except ValueError as exc:
        raise CorruptRecordError("a record's varint is longer than 10 bytes") from exc


def _record_bounds(buf: bytes | bytearray, pos: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``count`` records' bodies start (after its length) and their lengths: the one loop per
    record, since each record's place depends on the lengths before it."""
    end = len(buf)
    if not 0 <= count * _MIN_RECORD <= end - pos:
        raise CorruptRecordError(f"record batch: {count} records cannot fit in its {end - pos} bytes")
    starts, lengths = np.empty(count, np.int64), np.empty(count, np.int64)
    for i in range(count):
        if pos >= end:
            raise CorruptRecordError(f"record batch ends after {i} of {count} records")
        # Lengths of one or two bytes are read inline: a call costs more than the read.
        b = buf[pos]
        if b < 0x80:
            length, pos = (b >> 1) ^ -(b & 1), pos + 1
        elif pos + 1 < end and buf[pos + 1] < 0x80:
            u = (b & 0x7F) | (buf[pos + 1] << 7)
            length, pos = (u >> 1) ^ -(u & 1), pos + 2
        else:
            length, pos = _varint(buf, pos)
        if length < 0:
            raise CorruptRecordError(f"record {i} of its batch has a negative length")
        starts[i], lengths[i] = pos, length
        pos += length
    if pos != end:
        raise CorruptRecordError(f"record batch: {end - pos} bytes after or missing from its {count} records")
    return starts, lengths


def parse(batches: list[tuple[bytes | bytearray, int, int, int]]) -> RecordBlock:
    """The records of uncompressed v2 batches, each given as (its bytes, where its records start, their count,
    its base offset), as one block; ``CorruptRecordError`` when the bytes do not hold them.

    A fetch brings many small batches (a producer's default is 16 KB): their records are parsed together, so
    numpy's per-call cost is paid once per fetch, not per batch.
    """
    data = b"".join([*(buf for buf, _, _, _ in batches), bytes(_PAD)])
    u8 = np.frombuffer(data, np.uint8)
    starts, lengths, base, shift = [], [], [], 0
    for buf, pos, count, base_offset in batches:
        try:
            at, size = _record_bounds(buf, pos, count)
        except IndexError as exc:  # a varint cut off by the batch's end
            raise CorruptRecordError(f"record batch at offset {base_offset} ends inside a record") from exc
        starts.append(at + shift)
        lengths.append(size)
        base.append(np.full(count, base_offset, np.int64))
        shift += len(buf)
    start, length, bases = (np.concatenate(x) if x else np.zeros(0, np.int64) for x in (starts, lengths, base))
    # A record: attributes (1 byte), timestamp delta, offset delta, key size, key, value size, value, headers.
    _, at = _varints(u8, start + 1)
    delta, at = _varints(u8, at)
    key_size, key_at = _varints(u8, at)
    value_size, value_at = _varints(u8, key_at + np.maximum(key_size, 0))
    headers, ends = _varints(u8, value_at + np.maximum(value_size, 0))
    if (headers < 0).any():
        raise CorruptRecordError("a record has a negative number of headers")
    for i in np.flatnonzero(headers).tolist():  # rare: the consumer hands no headers over, only skips them
        try:
            ends[i] = _skip_headers(data, int(ends[i]), int(headers[i]))
        except IndexError as exc:
            raise CorruptRecordError(f"record at offset {int(bases[i] + delta[i])}: headers cut off") from exc
    bad = ends != start + length
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CorruptRecordError(f"record at offset {int(bases[i] + delta[i])}: {int(length[i])} bytes "
                                 f"declared, {int(ends[i] - start[i])} read")
    return RecordBlock(u8, bases + delta, key_at, key_size, value_at, value_size)


def _skip_headers(buf: bytes | bytearray, pos: int, count: int) -> int:
    """The position after a record's ``count`` headers, checked as kafka-python checks them (a key is text)."""
    for _ in range(count):
        size, pos = _varint(buf, pos)
        if size < 0:
            raise CorruptRecordError(f"invalid negative header key size {size}")
        try:
            bytes(buf[pos:pos + size]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptRecordError(f"a header key is not UTF-8: {exc}") from exc
        size, pos = _varint(buf, pos + size)
        pos += max(size, 0)
    return pos


def _uncompress(batch: Any) -> None:
    """kafka-python's own decompression of a v2 batch, in place; damaged bytes are a ``CorruptRecordError``."""
    try:
        batch._maybe_uncompress()  # noqa: SLF001
    except KafkaError:
        raise
    except Exception as exc:  # noqa: BLE001  # each codec raises errors of its own for bytes it cannot read
        raise CorruptRecordError(f"record batch at offset {batch.base_offset} does not decompress: {exc!r}") from exc


def legacy_block(batch: Any) -> RecordBlock:
    """A batch of the old message formats (v0, v1; Kafka 4 no longer writes them) from kafka-python's records."""
    try:
        records = list(batch)
    except KafkaError:
        raise
    except Exception as exc:  # noqa: BLE001  # kafka-python's parsing of damaged old-format bytes
        raise CorruptRecordError(f"message set at offset {batch.base_offset} cannot be read: {exc!r}") from exc
    keys = [r.key for r in records]
    values = [r.value for r in records]
    sizes = np.array([[len(k) if k is not None else -1 for k in keys],
                      [len(v) if v is not None else -1 for v in values]], np.int64).reshape(2, len(records))
    data = np.frombuffer(b"".join([*(k or b"" for k in keys), *(v or b"" for v in values), bytes(_PAD)]), np.uint8)
    at = np.concatenate([[0], np.cumsum(np.maximum(sizes.ravel(), 0))[:-1]]).astype(np.int64)
    return RecordBlock(data, np.array([r.offset for r in records], np.int64), at[:len(records)], sizes[0],
                       at[len(records):], sizes[1])


class PartitionBlocks(Fetcher.PartitionRecords):
    """kafka-python's ``PartitionRecords`` (3.0) handing over a ``RecordBlock`` per partition fetch instead of a
    ``ConsumerRecord`` per record. The batch loop is kafka-python's: CRCs, aborted transactions, control
    batches, and the next fetch offset as it sets them."""

    blocks = 0  # blocks handed over in this process: tests see that the consumer took this path

    def _unpack_records(self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
                        ) -> Iterator[RecordBlock]:
        if key_deserializer is not None or value_deserializer is not None:
            raise TypeError("record_batches hands over undecoded blocks: the consumer must have no deserializers")
        plain: list[tuple[bytes | bytearray, int, int, int]] = []  # v2 batches, parsed together at the end
        batch, last = records.next_batch(), None
        while batch is not None:
            last = batch
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(f"Record batch for partition {tp} at offset {batch.base_offset} failed "
                                         "crc check")
            if batch.magic != 2:
                yield from self._handed_over(batch.size_in_bytes, [*self._parsed(plain), legacy_block(batch)])
                plain = []
            else:
                self.leader_epoch = batch.leader_epoch
                if not (self._aborted(batch) or batch.is_control_batch):
                    _uncompress(batch)
                    plain.append((batch._buffer, batch._pos, batch.records_count, batch.base_offset))  # noqa: SLF001
            batch = records.next_batch()
        yield from self._handed_over(records.size_in_bytes(), self._parsed(plain))
        # v2 keeps a batch's last offset even when compaction removed its last record: fetch after it.
        if last is not None and last.magic == 2:
            self.next_fetch_offset = last.next_offset
        self.drain()

    @staticmethod
    def _parsed(plain: list[tuple[bytes | bytearray, int, int, int]]) -> list[RecordBlock]:
        return [parse(plain)] if plain else []

    def _handed_over(self, size: int, blocks: list[RecordBlock]) -> Iterator[RecordBlock]:
        for block in blocks:
            block = block.rows(block.offsets >= self.fetch_offset)  # a fetch may start inside a batch
            if len(block):
                self.records_read += len(block)
                self.bytes_read += size
                self.next_fetch_offset = int(block.offsets[-1]) + 1
                PartitionBlocks.blocks += 1
                yield block

    def _aborted(self, batch: Any) -> bool:
        """Whether ``batch`` belongs to an aborted transaction (a read_committed consumer skips it)."""
        if self.isolation_level != IsolationLevel.READ_COMMITTED or not batch.has_producer_id():
            return False
        self._consume_aborted_transactions_up_to(batch.last_offset)
        if self._contains_abort_marker(batch):
            self.aborted_producer_ids.discard(batch.producer_id)
            return False
        return self._is_batch_aborted(batch)


def install(consumer: Any) -> None:
    """Make ``consumer`` (without key or value deserializers) hand over a ``RecordBlock`` per partition fetch."""
    fetcher = consumer._fetcher  # noqa: SLF001  # kafka-python builds its PartitionRecords through this attribute
    if not isinstance(fetcher, Fetcher) or fetcher.PartitionRecords is not Fetcher.PartitionRecords:
        raise TypeError("kafka-python's Fetcher changed: record_batches.install needs a review")
    fetcher.PartitionRecords = PartitionBlocks
