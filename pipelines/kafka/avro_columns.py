"""Decode many schemaless Avro bodies of one writer schema straight into one Arrow StructArray.

Why: reading the event log record by record (``fastavro.schemaless_reader`` into dicts, ~11.5 µs per
StationTally) is the main cost of replaying a multi-million-event log, and the fold only wants columns. Bodies
written with one schema share their layout, so all of them can be advanced field by field at once: numpy keeps
a read position per body and decodes a field for every body in a few vectorised operations. Python loops run
per schema field, per array-item index and per array block, never per record or per value.

What the design leans on:
- A reader sees at most one row per body, in body order (array items are read one item index at a time), so
  read positions increase strictly; that lets all the strings of a column be copied in one Arrow ``take``.
- Values stay numpy (``_Column``) until the end, so putting array items in list order and spreading union
  values over null rows are cheap numpy steps, and each Arrow array is built once.
- Every read is checked against its own body's end before the position moves on (the buffer is padded, so
  fixed-size windows never leave it): a damaged body raises ``MalformedBody``, never a wrong value.

Results equal ``pa.array([fastavro.schemaless_reader(...) for body in bodies], type=arrow_type(schema))``. A
schema with a type this decoder does not handle raises ``Unsupported``; the caller decodes record by record.
Schemas must be parsed without logical types (see ``pipelines.kafka.serde.without_logical_types``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["MalformedBody", "Unsupported", "arrow_type", "decode"]


class Unsupported(Exception):
    """The schema has a type the column decoder does not handle (the caller decodes record by record)."""


class MalformedBody(ValueError):
    """A body is not a valid encoding of the schema (truncated, trailing bytes, bad union index, bad UTF-8, ...)."""


_PRIMITIVES: dict[str, pa.DataType] = {
    "null": pa.null(), "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(),
    "float": pa.float32(), "double": pa.float64(), "string": pa.string(), "bytes": pa.binary(),
}
_NAMED_KINDS = ("record", "error", "enum", "fixed")
# Zero bytes after the last body, so fixed-size windows (8-byte words, the 10-byte varint window) starting at
# any position up to the end stay inside the buffer; bounds are checked against each body's end separately.
_PAD = 16
_WIDE = 2**31  # buffers this large need 64-bit string offsets


@dataclass(frozen=True, eq=False)
class _Node:
    """A schema type compiled once: its kind, Arrow type and what reading it needs."""

    kind: str
    arrow: pa.DataType
    children: tuple[_Node, ...] = ()
    names: tuple[str, ...] = ()  # record field names, or enum symbols
    nullable: bool = False
    null_branch: int = -1  # unions: index of the "null" branch, -1 when there is none
    branches: int = 0  # unions: how many branches
    symbols: pa.Array | None = field(default=None, repr=False)  # enums: the symbols, to take from


# --- compiling a parsed schema -------------------------------------------------------------------------------

def arrow_type(schema: Any) -> pa.DataType:
    """The Arrow type ``decode`` returns for a parsed top-level record schema.

    Raises:
        Unsupported: the schema has a map, a fixed, a union other than null plus one type, or is recursive.
    """
    return _compiled(schema).arrow


_CACHE: dict[int, tuple[Any, _Node]] = {}


def _compiled(schema: Any) -> _Node:
    # Callers pass the same parsed schema object for every batch; keep the object itself beside its id so a
    # recycled id can never return another schema's plan.
    cached = _CACHE.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    root = _node(schema, _named_types(schema), ())
    if root.kind != "record":
        raise Unsupported(f"the top-level type is {root.kind}, not a record")
    if len(_CACHE) >= 256:
        _CACHE.clear()
    _CACHE[id(schema)] = (schema, root)
    return root


def _named_types(schema: Any) -> dict[str, Any]:
    """Full name -> definition of every named type, so references by name can be resolved."""
    found: dict[str, Any] = {}

    def walk(node: Any, namespace: str) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in _NAMED_KINDS and isinstance(node.get("name"), str):
                name = node["name"]
                namespace = node.get("namespace") or namespace
                if "." not in name and namespace:
                    name = f"{namespace}.{name}"
                found.setdefault(name, node)
                found.setdefault(node["name"], node)
            for inner in node.get("fields", ()):
                walk(inner.get("type"), namespace)
            for key in ("items", "values"):
                walk(node.get(key), namespace)
            if isinstance(kind, dict | list):
                walk(kind, namespace)

    walk(schema, "")
    if isinstance(schema, dict):
        found.update(schema.get("__named_schemas") or {})
    return found


def _node(schema: Any, named: dict[str, Any], stack: tuple[str, ...]) -> _Node:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _Node(schema, _PRIMITIVES[schema], nullable=schema == "null")
        if schema not in named:
            raise Unsupported(f"unknown type name {schema!r}")
        return _node(named[schema], named, stack)
    if isinstance(schema, list):
        return _union(schema, named, stack)
    if not isinstance(schema, dict):
        raise Unsupported(f"not a schema: {schema!r}")
    kind = schema.get("type")
    if isinstance(kind, dict | list) or (isinstance(kind, str) and kind not in _NAMED_KINDS + ("array", "map")):
        return _node(kind, named, stack)
    if kind in ("record", "error"):
        return _record(schema, named, stack)
    if kind == "enum":
        symbols = tuple(schema["symbols"])
        return _Node("enum", pa.string(), names=symbols, symbols=pa.array(symbols, pa.string()))
    if kind == "array":
        return _array(schema, named, stack)
    raise Unsupported(f"Avro type {kind!r} is not supported by the column decoder")


def _record(schema: dict[str, Any], named: dict[str, Any], stack: tuple[str, ...]) -> _Node:
    name = str(schema.get("name"))
    if name in stack:
        raise Unsupported(f"record {name} refers to itself")
    children = tuple(_node(f["type"], named, stack + (name,)) for f in schema["fields"])
    names = tuple(f["name"] for f in schema["fields"])
    arrow = pa.struct([pa.field(n, c.arrow, nullable=c.nullable) for n, c in zip(names, children)])
    return _Node("record", arrow, children, names)


def _array(schema: dict[str, Any], named: dict[str, Any], stack: tuple[str, ...]) -> _Node:
    item = _node(schema["items"], named, stack)
    # Items that take no bytes would let a few body bytes claim billions of items; no schema here has them.
    if _min_size(item) == 0:
        raise Unsupported("arrays of items that encode in zero bytes (null, records of nulls)")
    return _Node("array", pa.list_(pa.field("item", item.arrow, nullable=item.nullable)), (item,))


def _union(branches: list[Any], named: dict[str, Any], stack: tuple[str, ...]) -> _Node:
    nulls = [i for i, b in enumerate(branches) if _is_null(b)]
    others = [i for i, b in enumerate(branches) if not _is_null(b)]
    if len(others) != 1 or len(nulls) > 1:
        raise Unsupported(f"union of {[_label(b) for b in branches]}: only null and one other type is supported")
    child = _node(branches[others[0]], named, stack)
    null_branch = nulls[0] if nulls else -1
    return _Node("union", child.arrow, (child,), nullable=bool(nulls), null_branch=null_branch,
                 branches=len(branches))


def _label(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("name") or _label(schema.get("type")))
    return schema if isinstance(schema, str) else "union"


def _is_null(schema: Any) -> bool:
    return schema == "null" or (isinstance(schema, dict) and schema.get("type") == "null")


def _min_size(node: _Node) -> int:
    if node.kind == "null":
        return 0
    if node.kind == "record":
        return sum(_min_size(c) for c in node.children)
    return 1


# --- reading: bodies -> numpy columns ------------------------------------------------------------------------

class _Bad(Exception):
    """Internal: a malformed value, with where it was found (turned into MalformedBody at the top)."""

    def __init__(self, what: str, body: int):
        super().__init__(what)
        self.what, self.body, self.path = what, body, []


class Joined(Sequence[memoryview]):
    """Bodies already back to back (``data``), with each one's size: what a record batch's values give without a
    Python object per body (``pipelines.kafka.record_batches``)."""

    def __init__(self, data: bytes, sizes: np.ndarray):
        self.data, self.sizes = data, np.asarray(sizes, np.int64)
        self.ends = np.cumsum(self.sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        end = int(self.ends[i])
        return memoryview(self.data)[end - int(self.sizes[i]):end]


class _Buffer:
    """All bodies back to back, with views that gather 1-, 4- and 8-byte values at any byte position."""

    def __init__(self, bodies: Sequence[bytes | bytearray | memoryview]):
        if isinstance(bodies, Joined):
            joined, lengths = bodies.data + bytes(_PAD), bodies.sizes
        else:
            joined = b"".join(itertools.chain(bodies, (bytes(_PAD),)))
            lengths = np.fromiter(map(len, bodies), np.int64, len(bodies))
            if int(lengths.sum()) != len(joined) - _PAD:  # memoryviews whose items are not single bytes
                lengths = np.fromiter((memoryview(b).nbytes for b in bodies), np.int64, len(bodies))
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths
        self.data = pa.py_buffer(joined)
        self.u8 = np.frombuffer(joined, np.uint8)
        # Unaligned views with a one-byte stride: element i is the word starting at byte i.
        self.u32 = np.ndarray((len(joined) - 3,), np.dtype("<u4"), joined, 0, (1,))
        self.u64 = np.ndarray((len(joined) - 7,), np.dtype("<u8"), joined, 0, (1,))
        self.wide = len(joined) >= _WIDE  # int32 offsets can no longer address every byte

    def check(self, bad: np.ndarray, what: str, end: np.ndarray) -> None:
        """Raise for the first row flagged ``bad``, naming its body."""
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _Bad(what, self.body_of(i, end))

    def body_of(self, row: int, end: np.ndarray) -> int:
        # Rows are at most one per body, in body order, so with as many rows as bodies the row is the body.
        # Fewer rows come from union branches or array items, which had bytes to read: the body is not empty,
        # and is the one non-empty body with that end.
        if len(end) == len(self.ends):
            return row
        return int(np.searchsorted(self.ends, end[row], "left"))


@dataclass(eq=False)
class _Column:
    """Values of one type for some rows, still as numpy, so reordering array items and spreading union values
    over null rows stays cheap; Arrow arrays are built once at the end (``_to_arrow``)."""

    node: _Node
    size: int
    valid: np.ndarray | None = None  # which rows are not null; None when all are valid
    values: np.ndarray | None = None  # boolean, int, long, float, double; enum symbol indexes
    start: np.ndarray | None = None  # string, bytes: where each value's bytes start and stop in the buffer
    stop: np.ndarray | None = None
    counts: np.ndarray | None = None  # array: items per row
    children: tuple[_Column, ...] = ()  # record: one column per field; array: the items, in list order


def _fold_constants(dtype: type[np.unsignedinteger]) -> tuple[Any, ...]:
    """Masks to pack the 7-bit groups of a little-endian word: pairs of bytes, then pairs of 14-bit groups,
    then (64-bit words) of 28-bit groups; each fold keeps one group in place and moves the next one down."""
    folds = [(0x007F007F007F007F, 1, 0x3F803F803F803F80), (0x00003FFF00003FFF, 2, 0x0FFFC0000FFFC000),
             (0x000000000FFFFFFF, 4, 0x00FFFFFFF0000000)]
    bits = np.dtype(dtype).itemsize * 8
    mask = (1 << bits) - 1
    return (dtype(0x8080808080808080 & mask), dtype(0x7F7F7F7F7F7F7F7F & mask), dtype(1),
            tuple((dtype(k & mask), dtype(s), dtype(m & mask)) for k, s, m in folds[:bits // 32 + 1]))


_FOLD32, _FOLD64 = _fold_constants(np.uint32), _fold_constants(np.uint64)
_ONE = np.uint64(1)


def _long(buf: _Buffer, pos: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The zigzag varints (Avro int and long) at every position, and the positions after them."""
    first = buf.u8[pos]
    more = first >= 0x80
    longer = np.count_nonzero(more)
    # Lengths, union branches, enum indexes and small numbers take one byte and are decoded in 8 bits; when
    # most values are longer, decoding all of them beats picking them out.
    too_long = False
    if longer * 4 > len(pos):
        value, length = _multibyte(buf, pos)
        after, too_long = pos + length, not length.all()
    else:
        small = first.view(np.int8)
        value, after = ((small >> 1) ^ -(small & 1)).astype(np.int64), pos + 1
        if longer:
            rows = np.flatnonzero(more)
            value[rows], length = _multibyte(buf, pos[rows])
            after[rows] += length - 1
            too_long = not length.all()
    if too_long:  # a length of 0: the position did not move
        buf.check(after == pos, "a number is longer than 10 bytes", end)
    buf.check(after > end, "a number runs past the end of the body", end)
    return value, after


def _multibyte(buf: _Buffer, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zigzag varints of any length, and their lengths in bytes (0 when none of 10 bytes is a last byte)."""
    # Most multi-byte numbers fit in 4 bytes (ints below 2**27), and 32-bit words halve the arithmetic;
    # the rest are read as 8-byte words, and the few longer still byte by byte.
    value, length = _fold(buf.u32[pos], _FOLD32)
    value = value.astype(np.uint64)
    longer = np.flatnonzero(length == 0)
    if longer.size:
        value[longer], length[longer] = _fold(buf.u64[pos[longer]], _FOLD64)
        longest = longer[length[longer] == 0]
        if longest.size:
            value[longest], length[longest] = _long_varint(buf, pos[longest])
    # Zigzag: 2n -> n, 2n+1 -> -n-1, i.e. (u >> 1) ^ -(u & 1), in place.
    sign = np.negative(value & _ONE)
    value >>= _ONE
    value ^= sign
    return value.view(np.int64), length


def _fold(word: np.ndarray, constants: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The varints starting each word and their lengths in bytes (0 where the word holds no last byte)."""
    high, low7, one, folds = constants
    last = np.invert(word)
    last &= high  # the high bit of every byte that could end the varint
    spare = np.negative(last)
    last &= spare  # x & -x: only the lowest, i.e. the first such byte
    keep = np.left_shift(last, one, out=spare)
    keep -= one  # every bit up to that byte's (all of them when it is the last byte of the word)
    length = np.bitwise_count(keep).astype(np.int64) >> 3
    length[last == 0] = 0
    value = word & keep
    value &= low7
    for kept, shift, moved in folds:
        np.right_shift(value, shift, out=spare)
        spare &= moved
        value &= kept
        value |= spare
    return value, length


_WINDOW = np.arange(10)
_SHIFTS = (7 * _WINDOW).astype(np.uint64)


def _long_varint(buf: _Buffer, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    window = buf.u8[pos[:, None] + _WINDOW]
    more = window >= 0x80
    length = np.where(more.all(axis=1), 0, more.argmin(axis=1) + 1)
    groups = (window & 0x7F).astype(np.uint64) << _SHIFTS  # bits past 64 fall off, as in a C reader
    groups[_WINDOW[None, :] >= length[:, None]] = 0
    return np.bitwise_or.reduce(groups, axis=1), length


def _int(buf: _Buffer, pos: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    value, after = _long(buf, pos, end)
    buf.check((value < -(2**31)) | (value >= 2**31), "an int is out of the 32-bit range", end)
    return value.astype(np.int32), after


_Reader = Callable[[_Buffer, _Node, np.ndarray, np.ndarray], tuple[_Column, np.ndarray]]


def _read(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    """Read one value of ``node`` at every position (each row's body ends at ``end``): the values and the
    positions after them. Rows are at most one per body and in body order, so positions increase strictly.

    Readers never change the arrays they are given; the positions returned may be an array the column also
    holds, so a caller copies them before changing them in place."""
    return _READERS[node.kind](buf, node, pos, end)


def _read_null(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    return _Column(node, len(pos)), pos


def _read_boolean(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    buf.check(pos >= end, "a boolean runs past the end of the body", end)
    byte = buf.u8[pos]
    buf.check(byte > 1, "a boolean byte is neither 0 nor 1", end)
    return _Column(node, len(pos), values=byte.view(np.bool_)), pos + 1


def _read_int(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    value, after = _int(buf, pos, end)
    return _Column(node, len(pos), values=value), after


def _read_long(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    value, after = _long(buf, pos, end)
    return _Column(node, len(pos), values=value), after


def _read_float(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    buf.check(pos + 4 > end, "a float runs past the end of the body", end)
    value = buf.u32[pos].view("<f4").astype(np.float32, copy=False)
    return _Column(node, len(pos), values=value), pos + 4


def _read_double(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    buf.check(pos + 8 > end, "a double runs past the end of the body", end)
    value = buf.u64[pos].view("<f8").astype(np.float64, copy=False)
    return _Column(node, len(pos), values=value), pos + 8


def _read_bytes(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    # Only the byte ranges are noted here; the bytes are copied once, into the final array.
    length, start = _long(buf, pos, end)
    buf.check(length < 0, "a negative length", end)
    buf.check(length > end - start, "a string or bytes runs past the end of the body", end)
    stop = start + length
    return _Column(node, len(pos), start=start, stop=stop), stop


def _read_enum(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    index, after = _int(buf, pos, end)
    buf.check((index < 0) | (index >= len(node.names)), "an enum index is out of range", end)
    return _Column(node, len(pos), values=index), after


def _read_union(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    branch, after = _long(buf, pos, end)
    buf.check((branch < 0) | (branch >= node.branches), "a union branch index is out of range", end)
    present = branch != node.null_branch
    if present.all():
        return _read(buf, node.children[0], after, end)
    rows = np.flatnonzero(present)
    values, after[rows] = _read(buf, node.children[0], after[rows], end[rows])
    return _spread(values, present, rows), after


def _spread(column: _Column, present: np.ndarray, rows: np.ndarray) -> _Column:
    """A column of ``len(present)`` rows holding ``column``'s rows at ``rows`` (where ``present``), the others
    null: what a union with null reads."""
    if column.children or column.counts is not None:  # records and arrays: take their rows, nested and all
        return _take(column, np.cumsum(present) - 1, present)
    # Plain values are scattered (cheaper than a gather); null rows hold zeros, as Arrow's builders put there.
    size = len(present)
    out = _Column(column.node, size, present)
    if column.valid is not None:
        out.valid = np.zeros(size, np.bool_)
        out.valid[rows] = column.valid
    for name in ("values", "start", "stop"):
        if (values := getattr(column, name)) is not None:
            spread = np.zeros(size, values.dtype)
            spread[rows] = values
            setattr(out, name, spread)
    return out


def _read_record(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    columns = []
    for name, child in zip(node.names, node.children):
        try:
            column, pos = _read(buf, child, pos, end)
        except _Bad as exc:
            exc.path.append(name)
            raise
        columns.append(column)
    return _Column(node, len(pos), children=tuple(columns)), pos


def _block(buf: _Buffer, pos: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An array block header: (item count, position of the first item)."""
    count, after = _long(buf, pos, end)
    negative = count < 0
    if negative.any():  # a negative count is followed by the block's size in bytes, which is not needed
        rows = np.flatnonzero(negative)
        _, after[rows] = _long(buf, after[rows], end[rows])
        count = np.where(negative, -count, count)  # -(-2**63) stays negative and fails the check below
    # Every item takes at least one byte (arrays of zero-byte items are unsupported), so a count larger
    # than the bytes left is malformed; this also bounds the item loop by the body's length.
    buf.check((count < 0) | (count > end - after), "an array block count is out of range", end)
    return count, after


def _read_array(buf: _Buffer, node: _Node, pos: np.ndarray, end: np.ndarray) -> tuple[_Column, np.ndarray]:
    # Items of one body follow each other, so pass j reads item j of every array that has one (a row per
    # body, in body order, as every reader expects); the items are put in list order at the end.
    left, pos = _block(buf, pos, end)
    counts = np.zeros(len(pos), np.int64)
    rows = np.flatnonzero(left)  # the arrays still being read, and their state, compacted to them
    at, ends, left = pos[rows], end[rows], left[rows]
    chunks, owners = [], []
    while rows.size:
        items, at = _read(buf, node.children[0], at, ends)
        chunks.append(items)
        owners.append(rows)
        left -= 1
        if not left.all():  # some blocks are done: read the next block headers there
            at = at.copy()  # a reader may return an array it also keeps (a string's stops)
            done = np.flatnonzero(left == 0)
            left[done], at[done] = _block(buf, at[done], ends[done])
            over = left == 0
            if over.any():  # those arrays have ended (a block of 0 items)
                pos[rows[over]], counts[rows[over]] = at[over], len(chunks)
                going = ~over
                rows, at, ends, left = rows[going], at[going], ends[going], left[going]
    if len(chunks) <= 1:  # at most one item per list: already in list order
        items = chunks[0] if chunks else _empty(node.children[0], 0)
    else:
        offsets = _offsets(counts)
        items = _place(chunks, [offsets[rows] + j for j, rows in enumerate(owners)], int(offsets[-1]))
    return _Column(node, len(pos), counts=counts, children=(items,)), pos


_READERS: dict[str, _Reader] = {
    "null": _read_null, "boolean": _read_boolean, "int": _read_int, "long": _read_long,
    "float": _read_float, "double": _read_double, "string": _read_bytes, "bytes": _read_bytes,
    "enum": _read_enum, "union": _read_union, "record": _read_record, "array": _read_array,
}


# --- reshaping numpy columns ---------------------------------------------------------------------------------

def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of range(start, start + count) for each pair."""
    offsets = _offsets(counts)
    return np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])


def _take(column: _Column, index: np.ndarray, keep: np.ndarray | None = None) -> _Column:
    """The rows ``index`` of a column; where ``keep`` is False the row is null (and empty) instead."""
    if keep is not None:
        if column.size == 0:
            return _empty(column.node, len(index))
        index = np.where(keep, index, 0)
    valid = None if column.valid is None else column.valid[index]
    if keep is not None:
        valid = keep if valid is None else valid & keep
    out = _Column(column.node, len(index), valid)
    if column.values is not None:
        out.values = column.values[index]
        if keep is not None:
            out.values[~keep] = 0  # what Arrow's builders put under a null too
    if column.start is not None and column.stop is not None:
        out.start, out.stop = column.start[index], column.stop[index]
    if column.counts is not None:
        counts = column.counts[index] if keep is None else np.where(keep, column.counts[index], 0)
        out.counts = counts
        out.children = (_take(column.children[0], _ranges(_offsets(column.counts)[index], counts)),)
    elif column.children:
        out.children = tuple(_take(child, index, keep) for child in column.children)
    return out


def _empty(node: _Node, size: int) -> _Column:
    """A column of ``size`` null rows (no rows at all when size is 0)."""
    if node.kind == "union":  # columns hold the union's value type
        node = node.children[0]
    kind = node.kind
    zeros = np.zeros(size, np.int64)
    column = _Column(node, size, np.zeros(size, np.bool_) if size else None)
    if kind in ("boolean", "int", "long", "float", "double", "enum"):
        column.values = zeros.astype(_NUMPY[kind])
    elif kind in ("string", "bytes"):
        column.start, column.stop = zeros, zeros
    elif kind == "array":
        column.counts, column.children = zeros, (_empty(node.children[0], 0),)
    elif kind == "record":
        column.children = tuple(_empty(child, size) for child in node.children)
    return column


_NUMPY = {"boolean": np.bool_, "int": np.int32, "long": np.int64, "float": np.float32, "double": np.float64,
          "enum": np.int32}


def _place(chunks: list[_Column], targets: list[np.ndarray], size: int) -> _Column:
    """One column of ``size`` rows, each chunk's rows written at its targets (which together cover every row).

    Array items arrive one item index at a time; writing each chunk at ascending targets is a streaming write,
    much cheaper than concatenating and then gathering in list order."""
    node = chunks[0].node  # the node read, so never a union (a union's column is its value's)
    out = _Column(node, size)
    if any(c.valid is not None for c in chunks):
        out.valid = np.ones(size, np.bool_)
        for chunk, target in zip(chunks, targets):
            if chunk.valid is not None:
                out.valid[target] = chunk.valid
    for name in ("values", "start", "stop", "counts"):
        if getattr(chunks[0], name) is not None:
            placed = np.empty(size, getattr(chunks[0], name).dtype)
            for chunk, target in zip(chunks, targets):
                placed[target] = getattr(chunk, name)
            setattr(out, name, placed)
    if out.counts is not None:
        offsets = _offsets(out.counts)
        item_targets = [_ranges(offsets[target], chunk.counts) for chunk, target in zip(chunks, targets)]
        out.children = (_place([c.children[0] for c in chunks], item_targets, int(offsets[-1])),)
    elif node.kind == "record":
        out.children = tuple(_place([c.children[i] for c in chunks], targets, size)
                             for i in range(len(node.children)))
    return out


# --- numpy columns -> Arrow ----------------------------------------------------------------------------------

def _to_arrow(buf: _Buffer, column: _Column, hidden: np.ndarray | None = None) -> pa.Array:
    """The Arrow array of a column. ``hidden`` rows are under a null record: like ``pa.array``, they get an
    empty value that is not null, since a non-nullable field must hold no nulls (Parquet refuses them)."""
    node, valid = column.node, column.valid
    if valid is not None and hidden is not None:
        valid = valid | hidden
    bitmap = None if valid is None else pa.array(valid, pa.bool_()).buffers()[1]  # a bool array's bits
    if node.kind == "null":
        return pa.nulls(column.size)
    if node.kind == "enum":
        assert node.symbols is not None
        return node.symbols.take(pa.array(column.values, mask=None if valid is None else ~valid))
    if node.kind in _NUMPY:
        return pa.array(column.values, node.arrow, mask=None if valid is None else ~valid)
    if node.kind in ("string", "bytes"):
        return _binary_to_arrow(buf, column, bitmap)
    if node.kind == "array":
        offsets = _offsets(column.counts)
        if offsets[-1] >= 2**31:
            raise Unsupported("more than 2**31 - 1 array items in one batch: decode smaller batches")
        items = _to_arrow(buf, column.children[0])
        return pa.Array.from_buffers(node.arrow, column.size, [bitmap, pa.py_buffer(offsets.astype(np.int32))],
                                     children=[items])
    fields = []
    empty = None if column.valid is None else ~column.valid  # rows of the record that are null or hidden
    for name, child in zip(node.names, column.children):
        try:
            fields.append(_to_arrow(buf, child, empty))
        except _Bad as exc:
            exc.path.append(name)
            raise
    return pa.Array.from_buffers(node.arrow, column.size, [bitmap], children=fields)


def _binary_to_arrow(buf: _Buffer, column: _Column, bitmap: pa.Buffer | None) -> pa.Array:
    start, stop, size = column.start, column.stop, column.size
    assert start is not None and stop is not None
    if column.valid is not None:  # null rows: an empty range where the previous value stopped
        filled = np.maximum.accumulate(np.where(column.valid, stop, 0))
        start, stop = np.where(column.valid, start, filled), np.where(column.valid, stop, filled)
    if size and (start[1:] < stop[:-1]).any():  # rows are in body order by construction (see the top)
        raise RuntimeError("avro_columns: string ranges out of order; this is a bug in the decoder")
    # Every other element of a binary array laid over the whole buffer with offsets start0, stop0, start1,
    # ... is one value (the ranges increase and do not overlap); take() copies just those, contiguously.
    offsets = np.empty(2 * size, np.int64 if buf.wide else np.int32)
    offsets[0::2], offsets[1::2] = start, stop
    spread = pa.Array.from_buffers(pa.large_binary() if buf.wide else pa.binary(), max(2 * size - 1, 0),
                                   [None, pa.py_buffer(offsets if size else np.zeros(1, offsets.dtype)), buf.data])
    packed = spread.take(np.arange(0, 2 * size - 1, 2))
    if buf.wide:
        packed = packed.cast(pa.binary())
    values = pa.Array.from_buffers(column.node.arrow, size, [bitmap, *packed.buffers()[1:]])
    if column.node.kind == "string":
        _check_utf8(buf, values, start)
    return values


def _check_utf8(buf: _Buffer, values: pa.Array, start: np.ndarray) -> None:
    try:
        values.validate(full=True)  # checks the UTF-8 of every value, as decoding to str would
    except pa.ArrowInvalid:
        for i, value in enumerate(values.view(pa.binary()).to_pylist()):  # the error path only
            if value is not None and not _utf8(value):
                body = int(np.searchsorted(buf.ends, start[i], "right"))
                raise _Bad("a string is not valid UTF-8", body) from None
        raise


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode(schema: Any, bodies: Sequence[bytes | bytearray | memoryview]) -> pa.StructArray:
    """Decode schemaless Avro bodies, all written with ``schema``, into one StructArray (a row per body).
    ``bodies`` may come ``Joined`` already.

    The bodies are copied once into one buffer; the result shares no memory with them.

    Raises:
        Unsupported: see ``arrow_type``.
        MalformedBody: a body is not exactly one valid encoding of the schema.
    """
    root = _compiled(schema)
    if not len(bodies):
        return pa.array([], root.arrow)
    buf = _Buffer(bodies)
    try:
        column, pos = _read(buf, root, buf.starts, buf.ends)
        unread = np.flatnonzero(pos != buf.ends)
        if unread.size:
            raise _Bad(f"{int(buf.ends[unread[0]] - pos[unread[0]])} bytes are left after the record",
                       int(unread[0]))
        return _to_arrow(buf, column)
    except _Bad as exc:
        where = ".".join(reversed(exc.path))
        raise MalformedBody(f"body {exc.body}{f' at field {where}' if where else ''}: {exc.what}") from None
