"""The fingerprint of a table file: a digest of everything that decides the bytes ``parquet.write_file`` makes of
a table, taken from its Arrow data before encoding (``pipelines.release.reuse`` links the file kept from the last
release when that release lists the fingerprint).

Why a fingerprint changes whenever the file's bytes would. The writer is deterministic: a file's bytes follow from
its inputs (Arrow's version, ``parquet._WRITE_OPTIONS``, ``parquet.ROW_GROUP_ROWS``), the table's schema with its
metadata, and the row groups it is given (``parquet._row_groups``, each dictionary column compacted): for each, the
number of rows and each column's content, i.e. which slots are null and the values of the others (of a dictionary
column: its dictionary, in order, and its indices). It reads nothing else; not the values under null slots, nor
how the arrays are sliced or laid out in memory.

The digest (sha256) is taken over a sequence of frames that holds exactly those: the inputs, the schema's IPC
serialization, then for each row group its row count and for each column, by its type,

- every slot null (a column of a flat type: fixed width, string or binary): how many, no more (the schema gives
  the type);
- integers: a bitmap of the valid slots when a slot is null, then the values (0 under a null) as the narrowest
  little-endian integer type that holds them all, that type's name framed before them (or, all one value, that
  value and their count);
- strings and binary: the valid-slot bitmap when a slot is null, each value's length (as integers, above), then
  their bytes one after another;
- a dictionary column: its dictionary (as a column, as above), then its indices (as integers);
- lists: the valid-slot bitmap when a slot is null, each list's length, then the values they hold (as a column);
- any other type: its Arrow IPC stream, a lossless serialization of its data.

Each frame is a tag and its length before its bytes (a bare tag opens a dictionary, a list or an IPC stream, whose
frames, or the stream itself, say where they end), so a sequence reads back one way only, given the schema:
two tables with equal fingerprints (barring a sha256 collision) have equal inputs, schemas, row groups and
column contents, hence give equal files. The converse need not hold: a string's bytes under a null slot are
hashed though Parquet drops them, an IPC stream carries what Parquet does not; that only costs a write.

The frames are smaller than an IPC stream of the same data, and sha256 is most of the cost of a publish that
reuses nearly every file: a column with every slot null (seven of contest_results') is a count instead of its
values, and small ids, counts and dictionary indices take one or two bytes instead of four or eight.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.release import parquet

# Part of every fingerprint: bump when what decides a file's bytes changes in a way the rest does not show, or
# when the frames change.
FINGERPRINT_FORMAT = "ballotstream.table-file-fingerprint/2"

_NARROW = tuple(np.dtype(t).newbyteorder("<") for t in (np.int8, np.int16, np.int32, np.int64))


class _Digest:
    """A write-only file object that feeds what Arrow's IPC writer gives it to a hash."""

    def __init__(self, digest: Any):
        self.digest = digest
        self.closed = False

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return len(memoryview(data))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _encoding() -> bytes:
    """What decides a file's bytes besides its data: Arrow's version and the writer's options."""
    return json.dumps({"format": FINGERPRINT_FORMAT, "pyarrow": pa.__version__, "options": parquet._WRITE_OPTIONS,
                       "row_group_rows": parquet.ROW_GROUP_ROWS}, sort_keys=True).encode()


def fingerprint(table: pa.Table, row_groups: list[pa.Table] | None = None) -> str:
    """A digest of everything that decides the bytes ``parquet.write_file`` makes of ``table`` (``row_groups``:
    its ``parquet._row_groups``, when made already); see the module's docstring for why it is safe."""
    digest = hashlib.sha256()
    _frame(digest, b"E", _encoding())
    _frame(digest, b"S", table.schema.serialize())
    for part in parquet._row_groups(table) if row_groups is None else row_groups:
        _frame(digest, b"G", struct.pack("<Q", part.num_rows))
        for column in part.columns:
            _column(digest, column.chunk(0) if column.num_chunks == 1 else column.combine_chunks())
    return digest.hexdigest()


def _frame(digest: Any, tag: bytes, payload: Any) -> None:
    digest.update(tag + struct.pack("<Q", memoryview(payload).nbytes))
    digest.update(payload)


def _column(digest: Any, array: pa.Array) -> None:
    kind = array.type
    if array.null_count == len(array) and (_is_bytes(kind) or _is_fixed_width(kind)):
        _frame(digest, b"N", struct.pack("<Q", len(array)))
    elif pa.types.is_dictionary(kind):
        digest.update(b"D")
        _column(digest, array.dictionary)
        _integers(digest, array.indices)
    elif pa.types.is_integer(kind):
        _integers(digest, array)
    elif _is_bytes(kind):
        _bytes(digest, array)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        digest.update(b"L")
        _validity(digest, array)
        offsets = _offsets(array)
        _narrowest(digest, np.diff(offsets))
        _column(digest, array.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])))
    else:
        digest.update(b"A")
        with pa.ipc.new_stream(_Digest(digest), pa.schema([pa.field("v", kind)])) as writer:
            writer.write_batch(pa.record_batch([array], names=["v"]))  # self-delimiting: needs no length


def _is_bytes(kind: pa.DataType) -> bool:
    return (pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind)
            or pa.types.is_large_binary(kind))


def _is_fixed_width(kind: pa.DataType) -> bool:
    return pa.types.is_primitive(kind) or pa.types.is_fixed_size_binary(kind) or pa.types.is_decimal(kind)


def _validity(digest: Any, array: pa.Array) -> None:
    if array.null_count:
        _frame(digest, b"V", np.packbits(array.is_valid().to_numpy(zero_copy_only=False)))


def _integers(digest: Any, array: pa.Array) -> None:
    _validity(digest, array)
    values = (array.fill_null(0) if array.null_count else array).to_numpy(zero_copy_only=False)
    _narrowest(digest, values)


def _narrowest(digest: Any, values: np.ndarray) -> None:
    """``values`` (integers) as the narrowest little-endian type that holds them, its name framed first; or, when
    they are all one value, that value and how many."""
    kind = values.dtype.newbyteorder("<")
    if values.size:
        low, high = int(values.min()), int(values.max())
        if low == high:  # an election id's or a topic's indices, ids' lengths: no need to hash each copy
            _frame(digest, b"K", low.to_bytes(9, "little", signed=True) + struct.pack("<Q", values.size))
            return
        kind = next((t for t in _NARROW if np.iinfo(t).min <= low and high <= np.iinfo(t).max), kind)
    _frame(digest, b"T", kind.str.encode())
    _frame(digest, b"I", np.ascontiguousarray(values.astype(kind, copy=False)))


def _offsets(array: pa.Array) -> np.ndarray:
    """The ``len(array) + 1`` offsets of a string, binary or list array's slice (not rebased to 0)."""
    if not len(array):
        return np.zeros(1, dtype=np.int64)
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type) or pa.types.is_large_list(
        array.type)
    return np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32)[
        array.offset:array.offset + len(array) + 1]


def _bytes(digest: Any, array: pa.Array) -> None:
    _validity(digest, array)
    offsets = _offsets(array)
    _narrowest(digest, np.diff(offsets))
    first, last = int(offsets[0]), int(offsets[-1])
    _frame(digest, b"B", array.buffers()[2].slice(first, last - first) if last > first else b"")
