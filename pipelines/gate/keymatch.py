"""Which row of one table has each row's key: a left join's row matching on integer codes, not strings.

The gate pairs each tally of station_results with its station_turnout row and back (a million of each at a
million stations). Arrow's hash join on three string columns, then a sort to restore the left rows' order, took
seconds; the tables' key values are mostly dictionary-encoded already, so each column's values are mapped to codes
in the right table's dictionary, the codes of a row packed into one int64, and the left rows found by a binary
search among the right table's sorted packed keys.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Packed keys stay below this (an int64, with room for the +1 that codes a null).
_PACKED_MAX = 2.0**62


def as_dictionary(values: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """``values`` as one dictionary array (encoded here unless it is one already)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)


def _codes_in(values: pa.Array | pa.ChunkedArray, dictionary: pa.Array) -> np.ndarray:
    """The index of each value in ``dictionary`` (int64; -1 for a null or a value not in it)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_dictionary(arr.type):  # look up the distinct values only
        own = pc.index_in(arr.dictionary, value_set=dictionary).fill_null(-1).to_numpy(zero_copy_only=False)
        idx = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.where(idx >= 0, own.astype(np.int64)[np.maximum(idx, 0)] if len(own) else -1, -1)
    return pc.index_in(arr, value_set=dictionary).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def matching_rows(left: list[pa.Array | pa.ChunkedArray], right: list[pa.Array | pa.ChunkedArray]
                  ) -> np.ndarray | None:
    """For each left row, the right row with an equal key (the columns ``left`` and ``right``, pairwise), -1 when
    none: what a left outer join finds (a null never matches). None when that is not one row each: a key in two
    right rows (the join would repeat the left row), or keys too wide to pack (the caller joins instead)."""
    rows = len(left[0])
    packed_left = np.zeros(rows, dtype=np.int64)
    packed_right = np.zeros(len(right[0]), dtype=np.int64)
    ok_left, ok_right = np.ones(rows, dtype=bool), np.ones(len(right[0]), dtype=bool)
    width = 1.0
    for lcol, rcol in zip(left, right, strict=True):
        encoded = as_dictionary(rcol)
        size = len(encoded.dictionary)
        width *= size + 1
        if width >= _PACKED_MAX:
            return None
        rcodes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        lcodes = _codes_in(lcol, encoded.dictionary)
        ok_left &= lcodes >= 0
        ok_right &= rcodes >= 0
        packed_left = packed_left * (size + 1) + lcodes + 1
        packed_right = packed_right * (size + 1) + rcodes + 1
    keys = packed_right[ok_right]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if len(keys) > 1 and np.any(keys[1:] == keys[:-1]):
        return None
    at = np.searchsorted(keys, packed_left)
    found = ok_left & (at < len(keys))
    found[found] &= keys[at[found]] == packed_left[found]
    right_rows = np.flatnonzero(ok_right)[order]
    return np.where(found, right_rows[np.minimum(at, max(len(keys) - 1, 0))] if len(keys) else -1, -1)
