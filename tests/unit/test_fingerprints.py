"""Table-file fingerprints (``pipelines.release.fingerprints``): a file is reused from the last release when its
fingerprint is listed, so two tables whose files differ by a byte must never share one; and the same content laid
out otherwise in memory (a slice, several chunks, a larger shared dictionary, other values under null slots)
should keep its fingerprint, or nothing would be reused."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.release import fingerprints, parquet

# Values around the edges of each narrower integer type, and strings whose concatenations collide.
_INTEGERS = st.one_of(st.none(), st.sampled_from([0, 1, -1, 127, 128, -128, -129, 255, 32_767, 32_768, -32_769,
                                                  2**31 - 1, 2**31, -(2**63), 2**63 - 1]))
_STRINGS = st.one_of(st.none(), st.sampled_from(["", "a", "aa", "b", "\0", "Zürich"]))
_COLUMNS = {
    "votes": (_INTEGERS, pa.int64()), "small": (_INTEGERS.filter(lambda v: v is None or -128 <= v < 128), pa.int8()),
    "name": (_STRINGS, pa.string()), "id": (_STRINGS, pa.dictionary(pa.int32(), pa.string())),
    "share": (st.one_of(st.none(), st.sampled_from([0.0, -0.0, 0.5, float("inf")])), pa.float64()),
    "flag": (st.one_of(st.none(), st.booleans()), pa.bool_()),
    "members": (st.one_of(st.none(), st.lists(_STRINGS, max_size=3)), pa.list_(pa.string())),
    "nothing": (st.none(), pa.int64()),
}


def _array(values: list, kind: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(kind):
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, kind)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[pa.Table, pa.Table]:
    """A table, and the same table with one value drawn anew, or one column (values whose concatenations, or
    whose bytes in a narrower type, match another's)."""
    rows = draw(st.integers(0, 8))
    columns = {name: draw(st.lists(values, min_size=rows, max_size=rows)) for name, (values, _) in _COLUMNS.items()}
    changed = draw(st.sampled_from(sorted(_COLUMNS)))
    other = dict(columns)
    if rows and draw(st.booleans()):
        row = draw(st.integers(0, rows - 1))
        other[changed] = [*columns[changed][:row], draw(_COLUMNS[changed][0]), *columns[changed][row + 1:]]
    else:
        other[changed] = draw(st.lists(_COLUMNS[changed][0], min_size=rows, max_size=rows))

    def table(cols: dict) -> pa.Table:
        return pa.table({name: _array(vals, _COLUMNS[name][1]) for name, vals in cols.items()})

    return table(columns), table(other)


def _bytes(table: pa.Table, folder: Path) -> bytes:
    return parquet.write_file("t", table, folder / "t.parquet").path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=_tables(), row_group_rows=st.sampled_from([parquet.ROW_GROUP_ROWS, 5]))
def test_files_that_differ_never_share_a_fingerprint(pair, row_group_rows, tmp_path_factory):
    before, after = pair
    folder = tmp_path_factory.mktemp("fp")
    with mock.patch.object(parquet, "ROW_GROUP_ROWS", row_group_rows):
        same_bytes = _bytes(before, folder) == _bytes(after, folder)
        same_print = fingerprints.fingerprint(before) == fingerprints.fingerprint(after)
    # Equal prints must mean equal files; here (no values under nulls, no unused bytes) the converse holds too.
    assert same_print == same_bytes


@settings(max_examples=100, deadline=None)
@given(pair=_tables(), cut=st.integers(0, 12))
def test_the_same_content_laid_out_otherwise_keeps_its_fingerprint(pair, cut):
    table, _ = pair
    cut = min(cut, table.num_rows)
    chunked = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    padded = pa.concat_tables([table.slice(0, 1), table, table.slice(0, 2)]).combine_chunks()
    sliced = padded.slice(min(1, table.num_rows), table.num_rows)
    print_ = fingerprints.fingerprint(table)
    assert fingerprints.fingerprint(chunked) == print_
    assert fingerprints.fingerprint(sliced) == print_


@pytest.mark.parametrize(("before", "after"), [
    (pa.array(["a", "a"]), pa.array(["aa", ""])),  # the same bytes, cut elsewhere
    (pa.array(["ab", "ab"]), pa.array(["a", "bab"])),  # one length for every value
    (pa.array(["a", None]), pa.array([None, "a"])),
    (pa.array([["a"], ["a"]]), pa.array([["a", "a"], []])),
    (pa.array([["ab"]]), pa.array([["a", "b"]])),
    (pa.array([None, None], pa.int64()), pa.array([0, 0], pa.int64())),
    (pa.array([0, None], pa.int64()), pa.array([None, 0], pa.int64())),
    (pa.array(["x", "y", "x"]).dictionary_encode(), pa.array(["y", "x", "y"]).dictionary_encode()),
    (pa.array([None, "x"]).dictionary_encode(), pa.array(["x", None]).dictionary_encode()),
], ids=["strings", "equal lengths", "string nulls", "lists", "list values", "all null", "integer nulls", "dictionary order",
        "dictionary nulls"])
def test_contents_whose_bytes_read_alike_get_fingerprints_apart(before, after, tmp_path):
    assert _bytes(pa.table({"c": before}), tmp_path) != _bytes(pa.table({"c": after}), tmp_path)
    assert fingerprints.fingerprint(pa.table({"c": before})) != fingerprints.fingerprint(pa.table({"c": after}))


def test_values_under_nulls_and_unused_dictionary_values_do_not_count():
    mask = np.array([False, True, False, True])
    ids = pa.DictionaryArray.from_arrays(pa.array([2, 0, 2, 1], pa.int32(), mask=mask), pa.array(["x", "y", "z"]))
    wider = pa.DictionaryArray.from_arrays(pa.array([3, 9, 3, 0], pa.int32(), mask=mask),
                                           pa.array(["y", "q", "r", "z", "s", "t", "u", "v", "w", "x"]))

    def table(votes: np.ndarray, station: pa.Array) -> pa.Table:
        return pa.table({"votes": pa.array(votes, mask=mask), "station": station, "nothing": pa.nulls(4, pa.int64())})

    first = fingerprints.fingerprint(table(np.array([5, 6, 7, 8]), ids))
    assert fingerprints.fingerprint(table(np.array([5, -1, 7, 2**40]), wider)) == first
    assert fingerprints.fingerprint(table(np.array([5, 6, 8, 8]), ids)) != first
