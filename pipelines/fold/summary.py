"""national_summary: per election, figures computed from the stations beside those the source reported.

Computed figures come from the current tables (station_turnout, candidates, seats); ``known`` says how many
values each was computed over (stations reporting the figure, candidates whose attribute is known), and a
figure nobody reported is null, never 0. Reported figures come
from the current DivisionSummary of the country division (``ocd-division/country:xx``). ``difference`` is
computed − reported; whether it is acceptable (given the qualifier) is the gate's call, not the fold's.
Reported figures with metric OTHER are not comparable and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import ids
from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.build import current_rows, finish
from pipelines.fold.extract import Extracted
from pipelines.fold.repeats import fingerprints, repeated_values
from pipelines.fold.versions import Resolution

_COUNTRY = re.compile(ids.anchored(ids.COUNTRY_DIVISION_RE))
_AGE_MIN, _AGE_MAX = 21, 35  # the AGE_21_35 band, for candidates with a birth year but no band


# The station_turnout columns national_summary reads.
SUMMARY_TURNOUT_COLUMNS: tuple[str, ...] = ("election_id", "contest_id", "station_id", "municipality_id",
                                            "registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots")

Figure = tuple[float | None, int | None]  # (computed value, how many values it was taken over)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _decoded(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return values.cast(values.type.value_type) if pa.types.is_dictionary(values.type) else values


def _one_value(values: pa.ChunkedArray) -> bool:
    """Whether every value is the same, none null."""
    if values.null_count:
        return False
    bounds = pc.min_max(_decoded(values))
    return bounds["min"] == bounds["max"]


def primary_tallies(turnout: pa.Table) -> pa.Table:
    """One station_turnout row per (election, station), in no particular order: its default contest's, else its
    lowest contest's.

    registered voters and ballots cast are the station's figures, repeated on each of its contests; valid and
    invalid ballots are a contest's, so the national figures take them from one contest per station.
    """
    if turnout.num_rows == 0:
        return turnout
    if _one_value(turnout["election_id"]) and not repeated_values(_decoded(turnout["station_id"])).any():
        # A contest per station (a million rows, the usual case): every row is its station's, and the sums taken
        # over them do not depend on the rows' order, so none is sorted.
        return turnout
    other = pc.not_equal(turnout["contest_id"], turnout["election_id"]).cast(pa.int8())
    keys = turnout.select(["election_id", "station_id", "contest_id"]).append_column("_other", other)
    order = pc.sort_indices(keys, sort_keys=[("election_id", "ascending"), ("station_id", "ascending"),
                                             ("_other", "ascending"), ("contest_id", "ascending")])
    # Only the key columns are put in order; the rows kept are taken once (not the whole table sorted, then
    # filtered: two copies of every column).
    e, st = turnout["election_id"].take(order), turnout["station_id"].take(order)
    first = np.append(True, pc.or_(pc.not_equal(e[1:], e[:-1]), pc.not_equal(st[1:], st[:-1]))
                      .to_numpy(zero_copy_only=False))
    return turnout.take(order.filter(pa.array(first)))


def _with_both(tab: pa.Table) -> pa.Table:
    """``tab`` with registered voters and ballots cast where a station reports both (the turnout's terms)."""
    both = pc.and_(tab["registered_voters"].is_valid(), tab["ballots_cast"].is_valid()) if tab.num_rows \
        else pa.array([], pa.bool_())
    return tab.append_column("_reg_both", pc.if_else(both, tab["registered_voters"], None)).append_column(
        "_cast_both", pc.if_else(both, tab["ballots_cast"], None))


_COUNTED = ("registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots", "_reg_both", "_cast_both")


def _figures(r: dict[str, Any]) -> dict[str, Figure]:
    """An election's station figures from its sums and counts (named as Arrow's group_by names them)."""
    reg, cast = r["_reg_both_sum"], r["_cast_both_sum"]
    # Sums over the stations that report the figure (null when none does), with how many did.
    return {
        "REGISTERED_VOTERS": (r["registered_voters_sum"], r["registered_voters_count"]),
        "BALLOTS_CAST": (r["ballots_cast_sum"], r["ballots_cast_count"]),
        "TURNOUT": (_share(cast, reg) if reg is not None else None, r["_reg_both_count"]),
        v.METRIC_VALID_BALLOTS: (r["valid_ballots_sum"], r["valid_ballots_count"]),
        v.METRIC_INVALID_BALLOTS: (r["invalid_ballots_sum"], r["invalid_ballots_count"]),
        v.METRIC_STATIONS: (r["station_id_count"], r["station_id_count"]),
        "MUNICIPALITIES": (r["municipality_id_count_distinct"], r["municipality_id_count"]),
    }


def table_station_figures(turnout: pa.Table) -> dict[str, dict[str, Figure]]:
    tab = _with_both(primary_tallies(turnout))
    grouped = tab.group_by("election_id").aggregate([
        *[(c, "sum") for c in _COUNTED], *[(c, "count") for c in _COUNTED],
        ("station_id", "count"), ("municipality_id", "count_distinct"), ("municipality_id", "count"),
    ])
    return {r["election_id"]: _figures(r) for r in grouped.to_pylist()}


TurnoutParts = Callable[[], Iterator[pa.Table]]


@dataclass(frozen=True)
class PartFigures:
    """What national_summary sums of one station_turnout part (a file): its election (None: the part is empty),
    its sums and counts (``_add``), its municipalities, and its stations' fingerprints, sorted (whether a station
    is in two parts). A pure function of the part's rows: a caller may keep it by the file's sha256."""

    election: str | None
    totals: dict[str, int | None]
    municipalities: tuple[str, ...]
    prints: np.ndarray


PartsFigures = Callable[[], Iterator["PartFigures | None"]]


@dataclass(frozen=True)
class WholeTurnout:
    """station_turnout of the whole snapshot a part (file) at a time: ``read()`` gives the parts' tables, and
    ``figures()``, when given, each part's ``part_figures``, in the same order (``station_figures``)."""

    read: TurnoutParts
    figures: PartsFigures | None = None


def part_figures(part: pa.Table) -> PartFigures | None:
    """``part``'s figures, or None when they cannot be summed with other parts' (several elections, station ids
    that are not strings, or a station's fingerprint twice: a station in two rows, or two stations alike in
    length, first 8 and last 32 bytes)."""
    if part.num_rows == 0:
        return PartFigures(None, {}, (), np.zeros(0, np.uint64))
    elections, stations = _decoded(part["election_id"]), _decoded(part["station_id"])
    if not _one_value(elections) or not pa.types.is_string(stations.type):
        return None
    prints = np.sort(np.concatenate([fingerprints(c) for c in stations.chunks]))
    if _repeats(prints):
        return None
    totals: dict[str, int | None] = {}
    _add(totals, _with_both(part))
    municipalities = pc.unique(_decoded(part["municipality_id"])).drop_null().to_pylist()
    return PartFigures(elections[0].as_py(), totals, tuple(sorted(municipalities)), prints)


def station_figures(parts: TurnoutParts, figures: PartsFigures | None = None) -> dict[str, dict[str, Figure]]:
    """``table_station_figures`` of the station_turnout whose parts (files) ``parts()`` gives; ``figures()``, when
    given, gives each part's ``part_figures`` in the same order (kept by file: an unchanged file is not read).

    In the usual case (one election, one row per station: a million stations with a contest each) the parts'
    sums and counts add up, and no row needs choosing: each part is summed and let go as it is read, not a
    million rows held at once. Anything else (several elections, a station in several rows or parts) reads the
    parts again as one table.
    """
    summed = _summed(figures() if figures is not None else (part_figures(part) for part in parts()))
    if summed is not None:
        return summed
    # Parts read with their dictionaries have one each: the rows are put in order on the values.
    return table_station_figures(pa.concat_tables(
        pa.table({n: _decoded(part[n]) for n in part.column_names}) for part in parts()))


def _summed(parts: Iterable[PartFigures | None]) -> dict[str, dict[str, Figure]] | None:
    """The figures of one election whose stations each have one row, from its parts' figures; None if the parts
    are not that."""
    election: str | None = None
    totals: dict[str, int | None] = {}
    municipalities: set[str] = set()
    prints: list[np.ndarray] = []
    for part in parts:
        if part is None:
            return None
        if part.election is None:
            continue  # an empty part
        if election not in (None, part.election):
            return None
        election = part.election
        prints.append(part.prints)
        _merge(totals, part.totals)
        municipalities.update(part.municipalities)
    if election is None:
        return {}
    if _repeats(np.sort(np.concatenate(prints))):
        return None
    return {election: _figures({**totals, "municipality_id_count_distinct": len(municipalities)})}


def _repeats(ordered: np.ndarray) -> bool:
    return bool((ordered[1:] == ordered[:-1]).any())


def _add(totals: dict[str, int | None], part: pa.Table) -> None:
    """Adds a part's sums (null over no values, as Arrow's) and counts of non-null values to ``totals``."""
    _merge(totals, {**{f"{c}_count": pc.count(part[c]).as_py() for c in (*_COUNTED, "station_id", "municipality_id")},
                    **{f"{c}_sum": pc.sum(part[c]).as_py() for c in _COUNTED}})


def _merge(totals: dict[str, int | None], part: dict[str, int | None]) -> None:
    """Adds a part's counts and sums to ``totals``; a sum stays null while every part's is (no values)."""
    for key, value in part.items():
        before = totals.get(key)
        if key.endswith("_count"):
            totals[key] = (before or 0) + (value or 0)
        else:
            totals[key] = before if value is None else value if before is None else before + value


def _candidate_figures(candidates: pa.Table, election_years: dict[str, int]) -> dict[str, dict[str, Figure]]:
    """Counts and shares of candidates; each share over the candidates whose attribute is known (UNKNOWN is
    not a value of its own)."""
    cols = candidates.select(["election_id", "party_id", "gender", "education", "age_band", "birth_year"])

    def known(name: str) -> pa.ChunkedArray:
        return pc.fill_null(pc.not_equal(cols[name], v.UNKNOWN), False)

    def equal(name: str, value: str) -> pa.ChunkedArray:
        return pc.fill_null(pc.equal(cols[name], value), False)

    # Counted by column, not by looping over the candidates (125,000 of them at 1M stations: 89 -> 6 ms).
    at = pc.index_in(cols["election_id"], value_set=pa.array(list(election_years), pa.string()))
    year = pa.array(list(election_years.values()), pa.int64()).take(at)
    age = pc.subtract(year, cols["birth_year"].cast(pa.int64()))
    band_known = known("age_band")
    by_birth = pc.and_(pc.invert(band_known), pc.is_valid(age))  # no band: the birth year and the election's
    in_band = pc.fill_null(pc.and_(pc.greater_equal(age, _AGE_MIN), pc.less_equal(age, _AGE_MAX)), False)
    flags = {"party": pc.is_valid(cols["party_id"]),
             "gender_known": known("gender"), "women": equal("gender", "FEMALE"),
             "education_known": known("education"), "higher": equal("education", "HIGHER"),
             "age_known": pc.or_(band_known, by_birth),
             "aged": pc.or_(pc.and_(band_known, equal("age_band", "AGE_21_35")), pc.and_(by_birth, in_band))}
    grouped = pa.table({"e": cols["election_id"], **{k: f.cast(pa.int64()) for k, f in flags.items()}}).group_by(
        "e").aggregate([([], "count_all"), *((k, "sum") for k in flags)])
    out = {}
    for r in grouped.to_pylist():
        c = {k: r[f"{k}_sum"] for k in flags}
        every = r["count_all"]
        out[r["e"]] = {
            "CANDIDATES_PARTY": (c["party"], every), "CANDIDATES_INDEPENDENT": (every - c["party"], every),
            "CANDIDATES_WOMEN_SHARE": (_share(c["women"], c["gender_known"]), c["gender_known"]),
            "CANDIDATES_HIGHER_EDUCATION_SHARE": (_share(c["higher"], c["education_known"]), c["education_known"]),
            "CANDIDATES_AGED_21_35_SHARE": (_share(c["aged"], c["age_known"]), c["age_known"]),
        }
    return out


def _reported(ex: Extracted, res: Resolution) -> dict[tuple[str, str], dict[str, Any]]:
    rows = current_rows(ex, res, v.DIVISION_SUMMARY)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    # Figures keep their array order, so a metric given twice in one summary: the later figure counts.
    for r in rows.to_pylist():
        if _COUNTRY.match(r["division_id"] or "") and r["metric"] != "OTHER":
            out[(r["election_id"], r["metric"])] = r
    return out


def national_summary(ex: Extracted, res: Resolution, tables: dict[str, pa.Table],
                     stations: dict[str, dict[str, Figure]]) -> pa.Table:
    """One row per election × metric: computed, reported, qualifier, difference, note.

    ``stations``: the station figures, by election (``table_station_figures`` of station_turnout, or
    ``station_figures`` of its parts).
    """
    elections = tables[t.ELECTIONS]
    years = {e: d.year for e, d in zip(elections["election_id"].to_pylist(), elections["date"].to_pylist(),
                                       strict=True) if d is not None}
    cands = _candidate_figures(tables[t.CANDIDATES], years)
    seats = tables[t.SEATS]
    members = dict(zip(*(c.to_pylist() for c in pc.value_counts(seats["election_id"]).flatten()), strict=True)) \
        if seats.num_rows else {}
    reported = _reported(ex, res)
    election_ids = sorted(set(elections["election_id"].to_pylist()) | set(stations)
                          | {e for e, _ in reported})
    cols: dict[str, list[Any]] = {f.name: [] for f in t.SCHEMAS[t.NATIONAL_SUMMARY]}
    for e in election_ids:
        # Counts of things (stations, candidates, members) are 0 when there are none; sums of figures are
        # unknown (null, over 0 values) when no station reports them.
        computed: dict[str, Figure] = {
            **{m: (None, 0) for m in ("REGISTERED_VOTERS", "BALLOTS_CAST", v.METRIC_VALID_BALLOTS,
                                      v.METRIC_INVALID_BALLOTS, "TURNOUT", "CANDIDATES_WOMEN_SHARE",
                                      "CANDIDATES_HIGHER_EDUCATION_SHARE", "CANDIDATES_AGED_21_35_SHARE")},
            **{m: (0, 0) for m in (v.METRIC_STATIONS, "MUNICIPALITIES", "CANDIDATES_PARTY",
                                   "CANDIDATES_INDEPENDENT")},
            **stations.get(e, {}), **cands.get(e, {}), "MEMBERS_ELECTED": (members.get(e, 0), members.get(e, 0))}
        for metric in v.SUMMARY_METRICS:
            c, known = computed[metric]
            r = reported.get((e, metric), {})
            value = r.get("value")
            cols["election_id"].append(e)
            cols["metric"].append(metric)
            cols["computed"].append(None if c is None else float(c))
            cols["known"].append(known)
            cols["reported"].append(value)
            cols["qualifier"].append(r.get("qualifier"))
            cols["difference"].append(None if c is None or value is None else float(c) - value)
            cols["note"].append(r.get("note"))
            cols["division_id"].append(r.get("division_id"))
            for tc in t.TRACE_COLUMNS:
                cols[tc].append(r.get(tc))
    return finish(t.NATIONAL_SUMMARY, cols)
