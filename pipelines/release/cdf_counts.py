"""The NIST ``VoteCounts`` of every selection and the ``OtherCounts`` (over/under votes, write-ins) of every
contest, from the election's contest_results and station_turnout rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.release import cdf_json as js
from pipelines.release import cdf_report as rp
from pipelines.release import cdf_vocab as v
from pipelines.release.cdf_tables import CONTEST, OTHER_COUNTS, STATION


def _code(values: pa.Array, value: str) -> int:
    """The code of ``value`` among ``ranked`` values (-2, matching no row, when absent)."""
    found = pc.index(values, value).as_py()
    return -2 if found < 0 else found


@dataclass(frozen=True)
class Counts:
    """VoteCounts JSON, grouped by selection: ``items`` (each but a group's first led by a comma) in runs
    beginning at ``starts``, one run per (``contest_id``, ``selection_id``)."""

    contest_id: pa.Array
    selection_id: pa.Array
    starts: np.ndarray
    items: pa.Array


def vote_counts(report: rp.Report) -> Counts:
    """Every selection's VoteCounts.

    Each station and division row gives its unit's counts; the contest row gives the district's, unless a row of
    the district itself already did. Of two rows for one unit the contest row wins, then the station row.
    """
    r = report.results
    c, contests = r.ids["contest_id"]
    s, selections = r.ids["selection_id"]
    u0, units = r.ids["unit_id"]
    lv, levels = r.ids["level"]
    is_contest, at_station = (lv == _code(levels, CONTEST)), (lv == _code(levels, STATION))
    at_unit = ~is_contest & (u0 >= 0)
    report.stations_named.append(units.take(pa.array(np.unique(u0[at_unit & at_station]))))
    report.units_named.append(units.take(pa.array(np.unique(u0[at_unit & ~at_station]))))
    # One code space for the units the rows name and the contests' districts.
    districts = rp.lookup(contests, report.contest_ids, report.districts)
    all_units = pc.unique(pa.concat_arrays([units, districts]))
    all_units = all_units.take(pc.sort_indices(all_units))
    u = np.append(pc.index_in(units, value_set=all_units).to_numpy(), -1)[u0]
    d = pc.index_in(districts, value_set=all_units).to_numpy()[c] if len(c) else np.zeros(0, np.int64)
    votes_known, _ = r.figures["votes"]
    pair = c * (len(selections) + 1) + s
    covered = np.isin(pair, pair[at_unit & (u == d) & votes_known])
    usable = ~(is_contest & covered) & (is_contest | (u >= 0))
    unit = np.where(is_contest, d, u)
    priority = np.where(is_contest, 2, np.where(at_station, 1, 0))
    parts: list[tuple[np.ndarray, ...]] = []
    for order, column in enumerate(["votes", *v.METHOD_TYPES]):
        known, count = r.figures[column]
        keep = known & usable
        parts.append((c[keep], s[keep], unit[keep], np.full(int(keep.sum()), order), priority[keep], count[keep]))
    c, s, unit, order, priority, count = (np.concatenate(p) for p in zip(*parts, strict=True))
    sort = np.lexsort((-priority, order, unit, s, c))
    c, s, unit, order, count = c[sort], s[sort], unit[sort], order[sort], count[sort]
    first = rp.starts(c, s, unit, order)[:-1]
    c, s, unit, order, count = c[first], s[first], unit[first], order[first], count[first]
    types = [v.TOTAL, *v.METHOD_TYPES.values()]
    starts = rp.starts(c, s)
    items = js.obj(len(c), [
        ("@type", '"ElectionResults.VoteCounts"'), ("Count", pa.array(count, pa.int64()).cast(js.TEXT)),
        ("GpUnitId", pc.take(js.string(all_units), pa.array(unit, pa.int64()))),
        ("OtherType", pc.if_else(pa.array(order == types.index(v.OTHER)),
                                 pa.scalar(rp.dumps(v.OTHER_METHOD), js.TEXT), rp.NONE)),
        ("Type", pc.take(pa.array([rp.dumps(t) for t in types], js.TEXT), pa.array(order, pa.int64())))],
        before=js.separators(starts))
    return Counts(contests.take(pa.array(c[starts[:-1]], pa.int64())),
                   selections.take(pa.array(s[starts[:-1]], pa.int64())), starts, items)


def other_counts(report: rp.Report) -> dict[str, str]:
    """``{contest_id: OtherCounts JSON array}``: over/under votes and write-ins per station, and for the district
    where every station reported them (a sum over only some stations is not the district's figure)."""
    t = report.turnout
    if t is None or t.num_rows == 0:
        return {}
    t = t.filter(pc.is_in(rp.column(t, "contest_id"), value_set=report.contest_ids))
    contest, station = rp.column(t, "contest_id"), rp.column(t, "station_id")
    figures = {col: rp.column(t, col, pa.int64()) for col in OTHER_COUNTS}
    known = pa.array(np.zeros(t.num_rows, bool))
    for figure in figures.values():
        known = pc.or_(known, figure.is_valid())
    report.stations_named.append(station.filter(known))
    rows = pc.sum(known).as_py() or 0
    station_items = js.obj(rows, [
        ("@type", '"ElectionResults.OtherCounts"'), ("GpUnitId", js.string(station.filter(known))),
        *[(nist, js.integer(figures[col].filter(known))) for col, nist in OTHER_COUNTS.items()]])
    # The district's figure: the contest's sum, where every one of its station rows has the figure.
    complete: dict[str, dict[str, int]] = {}
    per_contest = pa.table({"contest_id": contest, **figures}).group_by("contest_id").aggregate(
        [("contest_id", "count", pc.CountOptions(mode="all"))] + [(col, "count") for col in OTHER_COUNTS])
    for row in per_contest.to_pylist():
        summary = report.summary.get(row["contest_id"]) or {}
        items = {nist: summary[col] for col, nist in OTHER_COUNTS.items()
                 if summary.get(col) is not None and row[f"{col}_count"] == row["contest_id_count"]}
        if items:
            complete[row["contest_id"]] = items
    district_of = dict(zip(report.contest_ids.to_pylist(), report.districts.to_pylist(), strict=True))
    district_rows = sorted(complete)
    items = pa.table({
        "contest_id": pa.concat_arrays([contest.filter(known), pa.array(district_rows, js.TEXT)]),
        "unit": pa.concat_arrays([station.filter(known), pa.array([district_of[c] for c in district_rows], js.TEXT)]),
        "tie": pa.concat_arrays([pa.array(np.zeros(rows, np.int8)), pa.array(np.ones(len(district_rows), np.int8))]),
        "item": pa.concat_arrays([station_items, pa.array(
            [rp.dumps({"@type": "ElectionResults.OtherCounts", "GpUnitId": district_of[c], **complete[c]})
             for c in district_rows], js.TEXT)])})
    items = items.take(pc.sort_indices(items, sort_keys=[("contest_id", "ascending"), ("unit", "ascending"),
                                                         ("tie", "ascending")]))
    contest = items["contest_id"].combine_chunks()
    starts = js.runs(contest)
    grouped = js.arrays(items["item"].combine_chunks(), starts)
    return dict(zip(contest.take(pa.array(starts[:-1])).to_pylist(), grouped.to_pylist(), strict=True))

