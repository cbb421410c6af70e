"""national_summary's station figures, read a part (a spliced file) at a time on election night, or from each
part's figures kept by its sha256 (``part_figures``): the same figures as over the whole station_turnout at once,
whatever the parts, nulls and repeats."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.fold.summary import (
    SUMMARY_TURNOUT_COLUMNS,
    _summed,
    part_figures,
    station_figures,
    table_station_figures,
)
from pipelines.release.part_figures import FiguresCache

COUNTS = st.one_of(st.none(), st.integers(min_value=0, max_value=5_000))
STATIONS = st.one_of(st.none(), st.integers(min_value=0, max_value=30).map(lambda i: f"ocd-division/st:{i}"))
ROW = st.tuples(st.sampled_from(["e-1", "e-2"]), st.sampled_from(["", "c-1", "c-2"]), STATIONS,
                st.sampled_from(["m-1", "m-2", "m-3", None]), COUNTS, COUNTS, COUNTS, COUNTS)


def _parts(rows: list[tuple], cuts: list[int], encoded: bool) -> list[pa.Table]:
    columns = list(zip(*rows)) if rows else [()] * len(SUMMARY_TURNOUT_COLUMNS)
    types = [pa.string()] * 4 + [pa.int64()] * 4
    table = pa.table({name: pa.array(values, kind) for name, values, kind in
                      zip(SUMMARY_TURNOUT_COLUMNS, columns, types, strict=True)})
    # An empty contest id stands for the election's default contest, whose id is the election's.
    table = table.set_column(1, "contest_id", pa.array([c or e for e, c, *_ in rows], pa.string()))
    bounds = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    parts = [table.slice(lo, hi - lo) for lo, hi in zip(bounds, bounds[1:])] or [table]
    if encoded:  # as files read with their dictionaries: one dictionary per part
        parts = [p.set_column(2, "station_id", p["station_id"].dictionary_encode()) for p in parts]
    return parts


def _whole(parts: list[pa.Table]) -> pa.Table:
    return pa.concat_tables([p.set_column(2, "station_id", p["station_id"].cast(pa.string())) for p in parts])


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(ROW, max_size=40), cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=5),
       encoded=st.booleans(), one_each=st.booleans())
def test_figures_summed_a_part_at_a_time_are_those_of_the_whole_table(rows, cuts, encoded, one_each):
    if one_each:  # the usual case: one election, each station in one row
        seen: set = set()
        rows = [("e-1", "", *rest) for _, _, *rest in rows if not (rest[0] in seen or seen.add(rest[0]))]
    parts = _parts(rows, cuts, encoded)
    whole = table_station_figures(_whole(parts))
    assert station_figures(lambda: iter(parts)) == whole
    with tempfile.TemporaryDirectory() as folder:
        cache = FiguresCache(Path(folder))
        names = [_sha(p) for p in parts]
        assert station_figures(lambda: iter(parts), lambda: (cache.of(n, lambda p=p: p) for n, p in
                                                             zip(names, parts, strict=True))) == whole
        # Kept: summed again without reading a part (only the exact path reads them, when a row needs choosing).
        assert station_figures(lambda: iter(parts), lambda: (cache.of(n, _unread) for n in names)) == whole


def _sha(part: pa.Table) -> str:
    return hashlib.sha256(repr(part.to_pydict()).encode()).hexdigest()


def _unread() -> pa.Table:
    raise AssertionError("a kept part was read")


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=40), cuts=st.lists(st.integers(min_value=0, max_value=40),
                                                                  max_size=5))
def test_parts_are_summed_one_at_a_time_only_when_no_row_needs_choosing(rows, cuts):
    seen: set = set()
    distinct = [("e-1", "", *rest) for _, _, *rest in rows if not (rest[0] in seen or seen.add(rest[0]))]
    assert _summed(map(part_figures, _parts(distinct, cuts, encoded=False))) is not None
    # The same station twice, in one part or two: the contest that counts is chosen over the whole table.
    twice = distinct + [("e-1", "c-1", *distinct[0][2:])]
    assert _summed(map(part_figures, _parts(twice, cuts, encoded=False))) is None
    if len({e for e, *_ in rows}) > 1:
        assert _summed(map(part_figures, _parts(rows, cuts, encoded=False))) is None


def test_a_station_figure_nobody_reported_stays_unknown_over_the_parts():
    rows = [("e-1", "", "st-1", "m-1", 100, 40, 38, 2), ("e-1", "", "st-2", "m-1", None, 50, None, None),
            ("e-1", "", "st-3", None, 200, None, None, None)]
    figures = station_figures(lambda: iter(_parts(rows, [1, 2], encoded=True)))["e-1"]
    assert figures["REGISTERED_VOTERS"] == (300, 2)
    assert figures["TURNOUT"] == (0.4, 1)  # only st-1 reports both
    assert figures["VALID_BALLOTS"] == (38, 1)
    assert figures["STATIONS"] == (3, 3)
    assert figures["MUNICIPALITIES"] == (1, 2)
    assert station_figures(lambda: iter(_parts([], [], encoded=False))) == {}
