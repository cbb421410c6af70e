"""``keymatch.matching_rows`` finds what Arrow's left outer join finds, or says it cannot (None)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.gate.frames import _among, _resolves
from pipelines.gate.keymatch import matching_rows
from pipelines.gate.suspects import duplicated

S = pa.string()
values = st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.sampled_from(["x", "y", None])),
                  max_size=12)


def _columns(rows: list[tuple], dictionary: bool) -> list[pa.Array]:
    cols = [pa.array([r[i] for r in rows], S) for i in range(2)]
    return [c.dictionary_encode() for c in cols] if dictionary else cols


@settings(max_examples=300, deadline=None)
@given(left=values, right=values, left_dict=st.booleans(), right_dict=st.booleans())
def test_matching_rows_is_a_left_join(left: list[tuple], right: list[tuple], left_dict: bool,
                                      right_dict: bool) -> None:
    found = matching_rows(_columns(left, left_dict), _columns(right, right_dict))
    schema = pa.schema([("k0", S), ("k1", S), ("row", pa.int64())])
    lt = pa.Table.from_pylist([{"k0": a, "k1": b, "row": i} for i, (a, b) in enumerate(left)], schema)
    rt = pa.Table.from_pylist([{"k0": a, "k1": b, "row": i} for i, (a, b) in enumerate(right)], schema)
    joined = lt.join(rt, keys=["k0", "k1"], join_type="left outer", right_suffix="_r").sort_by("row")
    keyed = [r for r in right if None not in r]
    if len(keyed) != len(set(keyed)):  # a key in two right rows: the join repeats left rows; no answer
        assert found is None
        return
    assert found is not None and found.tolist() == [-1 if r is None else r for r in joined["row_r"].to_pylist()]


@pytest.mark.parametrize(("values", "targets"), [
    (["s1", None, "s9", "s1"], [f"s{i}" for i in range(40)] + [None]),  # few values: looked up the other way
    ([f"s{i}" for i in range(0, 80, 3)] + [None], [f"s{i}" for i in range(40)]),  # as many: the usual way
    (["s1"], []),
])
def test_a_reference_lookup_finds_what_is_in_finds_either_way_round(values: list, targets: list) -> None:
    expected = [None if x is None else x in targets for x in values]
    assert _resolves(pa.array(values, pa.string()), pa.array(targets, pa.string())).to_pylist() == expected


@pytest.mark.parametrize("values", [
    ["a", "b", None, None, "c"],  # all different (nulls are no duplicates)
    ["a", "b", "a", None],  # one repeated
    # Same length, first 8 and last 32 bytes: their fingerprints are equal, the strings are not.
    ["event-00" + "x" * 10 + "A" + "y" * 40, "event-00" + "x" * 10 + "B" + "y" * 40],
    ["event-00" + "x" * 10 + "A" + "y" * 40, "event-00" + "x" * 10 + "A" + "y" * 40, "z"],
])
def test_duplicated_flags_every_copy_of_a_repeated_string_and_nothing_else(values: list) -> None:
    flags = duplicated(pa.chunked_array([pa.array(values, pa.string())])).to_pylist()
    assert flags == [x is not None and values.count(x) > 1 for x in values]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.integers(-3, 40), max_size=30), targets=st.lists(st.integers(-3, 40), max_size=10))
def test_among_is_numpys_isin(values: list[int], targets: list[int]) -> None:
    """contest_results' declared pairs are looked up by a binary search: the same answer as ``np.isin``."""
    v, tg = np.array(values, dtype=np.int64), np.array(targets, dtype=np.int64)
    assert _among(v, tg).tolist() == np.isin(v, tg).tolist()
