"""Dense ranks of string columns: the order of Arrow's string sort (bytewise), by cheaper routes where the values
allow.

Arrow sorts a million random ids (event ids) in ~0.5 s, and a million rows of a few distinct values (an election,
a topic, ten thousand municipalities) in ~0.1 s, every row compared as a string. Two routes give the same ranks
for less:

* few distinct values: hash the column, sort only the distinct values;
* values whose first 8 bytes mostly differ (UUIDs): sort those bytes as one unsigned integer, and as strings only
  the values that share their first 8 bytes with another.

Which route applies is judged on a sample; the sample only chooses the route, never the ranks.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Columns shorter than this are ranked by Arrow directly: the routes only pay off on large ones.
MIN_ROWS = 1 << 16
_SAMPLE = 1 << 14
# The hashing route, when the sample's rows hold fewer distinct values than this share of them (a column of
# 160k values or fewer in a million rows); the prefix route, when this share of the sample's distinct values
# have a first 8 bytes of their own.
_REPEATS = 0.95
_DISTINCT_PREFIXES = 0.99
# The high L bytes of a big-endian uint64 (L = 0..8): what survives of a prefix key read past a short value's end.
_KEEP = np.array([(~((1 << (8 * (8 - n))) - 1)) & (2**64 - 1) for n in range(9)], dtype=np.uint64)


def dense_rank(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Rank of each value among the distinct values, from 0 (int64; nulls rank last, as one value)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if len(values) >= MIN_ROWS and (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        sample = values.take(pa.array(np.linspace(0, len(values) - 1, _SAMPLE).astype(np.int64))).drop_null()
        distinct = pc.unique(sample)
        if len(distinct) < _REPEATS * len(sample):
            return _by_distinct(values)
        prefixes = np.unique(prefix_keys(_one_array(distinct)))
        if len(distinct) and len(prefixes) >= _DISTINCT_PREFIXES * len(distinct):
            return _by_prefix(_one_array(values))
    return pc.rank(values, tiebreaker="dense").to_numpy(zero_copy_only=False).astype(np.int64) - 1


def _one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    return values.combine_chunks() if values.num_chunks else pa.array([], values.type)


def _by_distinct(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Hash, rank the distinct values, spread their ranks over the rows."""
    encoded = pc.dictionary_encode(values)
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    dictionary = chunks[0].dictionary if chunks else pa.array([], values.type)
    # The distinct values rank 0..d-1 with no ties; a null ranks d, after them all.
    of_distinct = np.append(pc.rank(dictionary, tiebreaker="dense").to_numpy(zero_copy_only=False).astype(np.int64)
                            - 1, len(dictionary))
    at = [c.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False) for c in chunks]
    return of_distinct[np.concatenate(at)] if at else np.zeros(0, np.int64)


def string_words(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each value's first byte, its end, the 8 bytes from each byte on as a big-endian uint64): the bytes of a
    string array as integers, read without a loop over the values. Positions are int64; a read past the last
    value's end sees zeros."""
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], offset_type)[values.offset:values.offset + len(values) + 1] \
        if len(values) else np.zeros(1, offset_type)
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    end = int(offsets[-1])
    padded = np.zeros(end + 8, np.uint8)  # every value's 8 bytes are readable, the last value's too
    padded[:end] = data[:end]
    words = np.ndarray(shape=(end + 1,), dtype=">u8", buffer=padded, strides=(1,))  # unaligned reads
    offsets = offsets.astype(np.int64)
    return offsets[:-1], offsets[1:], words


def prefix_keys(values: pa.Array) -> np.ndarray:
    """Each value's first 8 bytes as a big-endian uint64, zero past its end (arbitrary for nulls).

    A value before another in byte order has a key no greater than the other's: keys order values, ties aside.
    """
    return first_words(*string_words(values))


def first_words(starts: np.ndarray, ends: np.ndarray, words: np.ndarray) -> np.ndarray:
    """``prefix_keys`` from ``string_words``."""
    keys = words[starts].astype(np.uint64)
    lengths = ends - starts
    short = np.flatnonzero(lengths < 8)
    keys[short] &= _KEEP[lengths[short]]
    return keys


def _by_prefix(values: pa.Array) -> np.ndarray:
    """Sort the prefix keys; rank the values that share a key with another as strings, and place them by it."""
    n = len(values)
    rows = np.flatnonzero(values.is_valid().to_numpy(zero_copy_only=False)) if values.null_count else None
    keys = prefix_keys(values)
    if rows is not None:
        keys = keys[rows]
    # numpy's unstable sort is SIMD and ~5x the stable one; rows that tie get one rank whatever their order.
    order = np.argsort(keys)
    keys = keys[order]
    same = keys[1:] == keys[:-1]
    new_value = np.ones(len(keys), bool)
    new_value[1:] = ~same
    if same.any():
        tied = np.flatnonzero(np.append(same, False) | np.append(False, same))
        at = order[tied] if rows is None else rows[order[tied]]
        sub = pc.rank(values.take(pa.array(at)), tiebreaker="dense").to_numpy(zero_copy_only=False)
        # Keys order the values, so the tied values in string order fill the tied places in key order.
        by_string = np.argsort(sub)
        order[tied] = order[tied][by_string]
        within = np.zeros(len(keys), sub.dtype)
        within[tied] = sub[by_string]
        new_value[1:] |= within[1:] != within[:-1]
    ranked = np.cumsum(new_value, dtype=np.int64) - 1
    rank = np.empty(len(keys), np.int64)
    rank[order] = ranked
    if rows is None:
        return rank
    out = np.full(n, ranked[-1] + 1 if len(ranked) else 0, np.int64)  # nulls: one value after the rest
    out[rows] = rank
    return out


def searchsorted(ordered: pa.Array, values: pa.Array) -> np.ndarray:
    """For each of ``values`` (no nulls), how many of ``ordered`` (sorted, no nulls) come before it in byte order:
    numpy's ``searchsorted`` for Arrow strings, as a binary search of all the values at once (int64)."""
    low, high = np.zeros(len(values), np.int64), np.full(len(values), len(ordered), np.int64)
    active = np.flatnonzero(low < high)
    while len(active):
        middle = (low[active] + high[active]) // 2
        before = pc.less(ordered.take(pa.array(middle)), values.take(pa.array(active))).to_numpy(
            zero_copy_only=False)
        low[active[before]] = middle[before] + 1
        high[active[~before]] = middle[~before]
        active = active[low[active] < high[active]]
    return low


def sorted_union(ordered: pa.Array, few: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(the sorted distinct values of both, each of ``ordered``'s index in them, each of ``few``'s; int32), for two
    sorted arrays of distinct strings without nulls: a binary search of the few among the many, not a sort of
    both."""
    at = searchsorted(ordered, few)
    found = at < len(ordered)
    found[found] = pc.equal(ordered.take(pa.array(at[found])), few.filter(pa.array(found))).to_numpy(
        zero_copy_only=False)
    new = np.flatnonzero(~found)
    # Each new value goes before the ordered value it was found before; every one before an ordered value moves
    # it up by one.
    of_ordered = np.arange(len(ordered)) + np.searchsorted(at[new], np.arange(len(ordered)), side="right")
    of_few = np.empty(len(few), np.int64)
    of_few[new] = at[new] + np.arange(len(new))
    found_at = np.flatnonzero(found)
    of_few[found_at] = of_ordered[at[found_at]]
    source = np.empty(len(ordered) + len(new), np.int64)
    source[of_ordered] = np.arange(len(ordered))
    source[of_few[new]] = len(ordered) + np.arange(len(new))
    union = pa.concat_arrays([ordered, few.take(pa.array(new))]).take(pa.array(source))
    return union, of_ordered.astype(np.int32), of_few.astype(np.int32)
