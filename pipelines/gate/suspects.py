"""Find, with Arrow kernels, the rows of a check frame that *might* fail one of its checks.

Great Expectations' pandas engine costs seconds per million rows and per expectation (pandas conversion,
a hash of the whole dataframe for the batch id, one pass per metric). A clean million-station election has
no failing rows at all, so the gate hands GX only the *suspect* rows: those this module flags for at least
one check, with their original row numbers as the pandas index. GX still evaluates every expectation and
decides every verdict; this pre-pass only has to flag a superset of the rows GX would reject, so that:

* unexpected counts are unchanged (a row GX rejects is always forwarded; a forwarded row GX accepts is
  simply not counted), and
* ``expect_column_values_to_be_unique`` sees every copy of a duplicated value (all are flagged), so its
  count is unchanged too.

Where a kernel cannot mirror an expectation exactly it errs towards flagging: e.g. RE2's ``\\d`` is
ASCII-only while Python's also matches other decimal digits, so RE2 rejects at least what ``re`` rejects;
NaN is flagged for range checks. An expectation kind not handled here flags every row (GX sees it all).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.fold.repeats import repeated_values
from pipelines.gate import checks as c
from pipelines.gate.frames import on_values


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col


def duplicated(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """True for every non-null value that occurs more than once (each copy, as GX counts them).

    Integers (the packed codes of composite keys) are found by one numpy sort, strings by a sort of their
    fingerprints (``repeated_values``), other values by one dictionary encoding: an Arrow hash group-by of 13
    million keys took 3-8 s.
    """
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(arr.type):
        values = arr.fill_null(0).to_numpy(zero_copy_only=False)
        ordered = np.sort(values[valid])
        repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        flags = valid & np.isin(values, repeated) if len(repeated) else np.zeros(len(arr), dtype=bool)
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        # Sorted 64-bit fingerprints, strings compared only where two are equal: two million event ids in half
        # the time of hashing them into a dictionary.
        flags = valid & repeated_values(arr)
    else:
        encoded = pc.dictionary_encode(arr)
        if len(encoded.dictionary) == len(arr) - arr.null_count:  # every value distinct: the usual case
            flags = np.zeros(len(arr), dtype=bool)
        else:
            codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
            flags = valid & (np.bincount(codes, minlength=len(encoded.dictionary))[codes] > 1)
    return pa.chunked_array([flags], type=pa.bool_())


def _out_of_range(col: pa.ChunkedArray, kwargs: dict[str, Any]) -> pa.ChunkedArray:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    out = pa.chunked_array([np.zeros(len(col), dtype=bool)], type=pa.bool_())
    if lo is not None:
        out = pc.or_kleene(out, pc.less(col, lo))
    if hi is not None:
        out = pc.or_kleene(out, pc.greater(col, hi))
    if pa.types.is_floating(col.type):  # NaN compares false both ways: let GX judge it
        out = pc.or_kleene(out, pc.is_nan(col))
    return out


def failing(spec: c.CheckSpec, col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A boolean column: True where ``spec`` may fail on ``col`` (null counts as False)."""
    try:
        if pa.types.is_dictionary(col.type) and spec.expectation in (c.IN_SET, c.MATCH_REGEX):
            # Judged once per distinct value; a null row stays null, i.e. not suspect (GX skips nulls here too).
            return pc.fill_null(on_values(col, lambda values: _failing(spec, values)), False)
        return _failing(spec, _plain(col))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError):
        # A column/kwargs combination the kernels cannot evaluate: hand GX every row, let it judge.
        return pa.chunked_array([np.ones(len(col), dtype=bool)], type=pa.bool_())


def _failing(spec: c.CheckSpec, col: pa.ChunkedArray) -> pa.ChunkedArray:
    match spec.expectation:
        case c.NOT_NULL:
            flags = col.is_null()
        case c.UNIQUE:
            flags = duplicated(col)
        case c.BETWEEN:
            flags = _out_of_range(col, spec.kwargs)
        case c.IN_SET:
            values = pa.array(spec.kwargs["value_set"], type=col.type)
            # is_in says False, not null, for a null value: without the and, every null was handed to GX (at a
            # million stations, the 874,000 contest_results rows that are no declared selection).
            flags = pc.and_(pc.invert(pc.is_in(col, value_set=values)), pc.is_valid(col))
        case c.MATCH_REGEX:
            flags = pc.invert(pc.match_substring_regex(col, pattern=spec.kwargs["regex"]))
        case _:
            flags = pa.chunked_array([np.ones(len(col), dtype=bool)], type=pa.bool_())
    # Null values pass every column-values expectation but not_null (GX filters them out first).
    return pc.fill_null(flags, False)


def suspect_rows(frame: pa.Table, specs: tuple[c.CheckSpec, ...]) -> np.ndarray:
    """Row numbers (ascending) of ``frame`` that any of ``specs`` may reject."""
    mask = np.zeros(frame.num_rows, dtype=bool)
    for spec in specs:
        mask |= failing(spec, frame[spec.column]).to_numpy()
    return np.flatnonzero(mask)
