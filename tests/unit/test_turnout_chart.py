"""The catalog's turnout chart groups a million stations' turnout rows on integer codes: the same figures as
grouping the ids themselves, whatever the nulls, chunks and dictionaries."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.release.catalog.charts import _station_figures, turnout_by_municipality

STATIONS = [f"st-{i}" for i in range(6)]
PLACES = ["m-1", "m-2", "m-3", None]
COUNTS = st.one_of(st.none(), st.integers(min_value=0, max_value=2_000))
ROWS = st.lists(st.tuples(st.sampled_from(STATIONS), st.sampled_from(PLACES), COUNTS, COUNTS), max_size=40)


def _expected(rows: list[tuple]) -> list[dict]:
    """Per (station, municipality), in order of first appearance: the largest known figures; kept when both are
    known."""
    groups: dict[tuple, list] = {}
    for station, place, registered, cast in rows:
        largest = groups.setdefault((station, place), [None, None])
        for i, value in enumerate((registered, cast)):
            if value is not None and (largest[i] is None or value > largest[i]):
                largest[i] = value
    return [{"municipality_id": place, "registered_voters": r, "ballots_cast": c}
            for (_, place), (r, c) in groups.items() if r is not None and c is not None]


def _table(rows: list[tuple], cuts: list[int], encoded: bool) -> pa.Table:
    columns = list(zip(*rows)) if rows else [(), (), (), ()]
    table = pa.table({"station_id": pa.array(columns[0], pa.string()),
                      "municipality_id": pa.array(columns[1], pa.string()),
                      "registered_voters": pa.array(columns[2], pa.int64()),
                      "ballots_cast": pa.array(columns[3], pa.int64())})
    if encoded:  # as a release's files read with their dictionaries: one dictionary per chunk
        table = table.set_column(0, "station_id", table["station_id"].dictionary_encode())
        table = table.set_column(1, "municipality_id", table["municipality_id"].dictionary_encode())
    bounds = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    batches = [b for lo, hi in zip(bounds, bounds[1:]) for b in table.slice(lo, hi - lo).to_batches()]
    return pa.Table.from_batches(batches, table.schema)


@settings(max_examples=150, deadline=None)
@given(rows=ROWS, cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=4), encoded=st.booleans())
def test_stations_are_grouped_as_their_ids_are(rows, cuts, encoded):
    figures = _station_figures(_table(rows, cuts, encoded))
    got = figures.to_pylist()
    assert got == _expected(rows)


def test_the_chart_sums_each_station_once_per_municipality():
    rows = [("st-1", "m-1", 100, 50), ("st-1", "m-1", 100, 50),  # one station, two contests
            ("st-2", "m-1", 300, None), ("st-2", "m-1", None, 30),  # figures known in different contests
            ("st-3", "m-2", 200, 150), ("st-4", None, 10, 10)]
    series = turnout_by_municipality({"station_turnout": _table(rows, [3], encoded=True)})
    assert dict(zip(series.labels, series.values)) == {"m-1": 80 / 400, "m-2": 0.75, "unknown": 1.0}
