"""Release Parquet: deterministic bytes, and row groups that carry only their own dictionary values."""

from __future__ import annotations

from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.release import parquet


def _shared_dictionary_table(rows: int) -> pa.Table:
    # As the fold builds station_results: one dictionary of every station id, shared by every row.
    dictionary = pa.array([f"ocd-division/country:az/station:{i:07d}" for i in range(rows)])
    indices = pa.array(list(range(rows)), type=pa.int32())
    party = pa.DictionaryArray.from_arrays(pa.array([None if i % 3 else i % 2 for i in range(rows)], pa.int32()),
                                           pa.array(["party:a", "party:b"]))
    return pa.table({"station_id": pa.DictionaryArray.from_arrays(indices, dictionary), "party_id": party,
                     "votes": pa.array(range(rows), pa.int64())})


def test_each_row_group_holds_only_the_dictionary_values_it_uses(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 100)
    table = _shared_dictionary_table(1000)
    staged = parquet.write_table("t", table, tmp_path)
    f = pq.ParquetFile(staged.path)
    assert f.metadata.num_row_groups == 10 and staged.rows == 1000
    first = f.read_row_group(0).column("station_id").chunk(0)
    assert len(first.dictionary) == 100  # not the table's 1,000
    back = pq.read_table(staged.path)
    for name in table.column_names:
        assert back[name].cast(pa.string()).equals(table[name].cast(pa.string())), name
    assert back.schema == table.schema


def test_same_table_same_bytes_and_empty_tables_write(tmp_path):
    table = _shared_dictionary_table(50)
    a = parquet.write_table("a", table, tmp_path / "a")
    b = parquet.write_table("a", table, tmp_path / "b")
    assert a.sha256 == b.sha256
    empty = parquet.write_table("e", table.slice(0, 0), tmp_path / "e")
    assert empty.rows == 0 and pq.read_table(empty.path).schema == table.schema


@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 40), indices=st.lists(st.one_of(st.none(), st.integers(0, 39)), max_size=60),
       offset=st.integers(0, 5), small=st.integers(0, 40))
def test_compaction_keeps_the_used_values_in_dictionary_order(size, indices, offset, small):
    # Every way of finding the used values (counting a small dictionary's uses, marking the band of a large one
    # the indices cover, or sorting a few indices) against the rule.
    indices = [None if i is None or size == 0 else i % size for i in indices]
    dictionary = pa.array([f"v{i:02d}" for i in range(size)])
    column = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), dictionary).slice(offset)
    kept = column.indices.to_pylist()
    used = sorted({i for i in kept if i is not None})
    with mock.patch.object(parquet, "_SMALL_DICTIONARY", small):
        compacted = parquet.compact(column)
    assert compacted.dictionary.to_pylist() == [dictionary[i].as_py() for i in used]
    assert compacted.indices.to_pylist() == [None if i is None else used.index(i) for i in kept]
    assert compacted.to_pylist() == column.to_pylist()
