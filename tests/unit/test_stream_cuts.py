"""``FileCuts``: the file starts of a table fed a slice at a time are ``chunk_bounds`` of the whole table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.release.parquet import chunk_bounds, write_table_files
from pipelines.release.stream_cuts import FileCuts, write_table_stream


@st.composite
def sliced_tables(draw):
    """A table sorted by a split column of runs (strings, integers or dictionary-encoded strings, some nulls),
    its declared width and file size, and cut points to slice it at."""
    runs = draw(st.integers(1, 400))
    lengths = draw(st.lists(st.integers(1, 30), min_size=runs, max_size=runs))
    kind = draw(st.sampled_from(["string", "int", "dictionary"]))
    nulls = draw(st.booleans())
    values = [None] if nulls else []
    values += [f"s{i:05d}" for i in range(runs - len(values))] if kind != "int" else list(range(runs - len(values)))
    column = np.repeat(np.array(values, dtype=object), lengths[:len(values)]).tolist()
    array = pa.array(column, type=pa.int64() if kind == "int" else pa.string())
    if kind == "dictionary":
        array = array.dictionary_encode()
    table = pa.table({"k": array, "v": pa.array(np.arange(len(column)))})
    width = (draw(st.sampled_from([0.0, 10.0, 120.0])), draw(st.sampled_from([1.0, 8.0, 40.0])))
    file_bytes = draw(st.sampled_from([50, 200, 1000, 5000]))
    cuts = sorted(set(draw(st.lists(st.integers(0, table.num_rows), min_size=1, max_size=12))))
    return table, width, file_bytes, cuts


def _streamed(table: pa.Table, width, file_bytes: int, cuts: list[int], reencode: bool) -> list[int]:
    cutter = FileCuts("k", width, file_bytes)
    starts = [0]
    for a, b in zip([0, *cuts], [*cuts, table.num_rows], strict=True):
        part = table.slice(a, b - a)
        if reencode and pa.types.is_dictionary(part.schema.field("k").type):
            # A slice with a dictionary of its own, as a fold building slices would make it.
            part = part.set_column(0, "k", part["k"].cast(pa.string()).dictionary_encode())
        starts += cutter.add(part)
    return starts + cutter.finish()


@settings(max_examples=300, deadline=None)
@given(sliced_tables(), st.booleans())
def test_streamed_cuts_equal_the_whole_tables(case, reencode):
    table, width, file_bytes, cuts = case
    assert _streamed(table, width, file_bytes, cuts, reencode) == chunk_bounds(table, "k", width, file_bytes)


def test_starts_are_given_before_the_table_ends():
    keys = pa.array([f"s{i:06d}" for i in range(20_000)])
    table = pa.table({"k": keys})
    cutter = FileCuts("k", (0.0, 10.0), 2_000)
    early = []
    for start in range(0, 20_000, 1_000):
        early += cutter.add(table.slice(start, 1_000))
    bounds = chunk_bounds(table, "k", (0.0, 10.0), 2_000)
    assert len(bounds) > 20 and early == bounds[1:len(early) + 1] and len(early) >= len(bounds) - 5
    assert [0, *early, *cutter.finish()] == bounds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sliced_tables())
def test_a_streamed_table_is_written_as_write_table_files_writes_it(tmp_path_factory, case):
    table, width, file_bytes, cuts = case
    whole = write_table_files("t", table, tmp_path_factory.mktemp("whole"), split_column="k", width=width,
                              file_bytes=file_bytes)
    slices = [table.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, table.num_rows], strict=True)]
    streamed = write_table_stream("t", table.schema, iter(slices), tmp_path_factory.mktemp("streamed"),
                                  split_column="k", width=width, file_bytes=file_bytes)
    assert (streamed.sha256, streamed.rows, streamed.bytes) == (whole.sha256, whole.rows, whole.bytes)
    assert [p.sha256 for p in streamed.parts] == [p.sha256 for p in whole.parts]
    assert [p.name for p in streamed.paths()] == [p.name for p in whole.paths()]


def test_an_empty_stream_is_the_empty_table(tmp_path):
    schema = pa.schema([("k", pa.string())])
    streamed = write_table_stream("t", schema, iter(()), tmp_path / "s", split_column="k", width=(0.0, 1.0),
                                  file_bytes=100)
    whole = write_table_files("t", schema.empty_table(), tmp_path / "w", split_column="k", width=(0.0, 1.0),
                              file_bytes=100)
    assert streamed.sha256 == whole.sha256 and streamed.path.name == whole.path.name == "t.parquet"
