"""national_summary: per election, figures computed from the stations beside those the source reported.

Computed figures come from the current tables (station_turnout, candidates, seats). Reported figures come
from the current DivisionSummary of the country division (``ocd-division/country:xx``). ``difference`` is
computed − reported; whether it is acceptable (given the qualifier) is the gate's call, not the fold's.
Reported figures with metric OTHER are not comparable and are left out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import ids
from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.build import current_rows, finish
from pipelines.fold.extract import Extracted
from pipelines.fold.versions import Resolution

_COUNTRY = re.compile(ids.anchored(ids.COUNTRY_DIVISION_RE))
_AGE_MIN, _AGE_MAX = 21, 35  # the AGE_21_35 band, for candidates with a birth year but no band


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _station_figures(turnout: pa.Table) -> dict[str, dict[str, float | None]]:
    grouped = turnout.group_by("election_id").aggregate([
        ("registered_voters", "sum"), ("ballots_cast", "sum"), ("valid_ballots", "sum"),
        ("invalid_ballots", "sum"), ("station_id", "count"), ("municipality_id", "count_distinct"),
    ])
    out: dict[str, dict[str, float | None]] = {}
    for r in grouped.to_pylist():
        reg, cast = r["registered_voters_sum"] or 0, r["ballots_cast_sum"] or 0
        out[r["election_id"]] = {
            "REGISTERED_VOTERS": reg, "BALLOTS_CAST": cast, "TURNOUT": _share(cast, reg),
            v.METRIC_VALID_BALLOTS: r["valid_ballots_sum"] or 0, v.METRIC_INVALID_BALLOTS: r["invalid_ballots_sum"] or 0,
            v.METRIC_STATIONS: r["station_id_count"], "MUNICIPALITIES": r["municipality_id_count_distinct"],
        }
    return out


def _candidate_figures(candidates: pa.Table, election_years: dict[str, int]) -> dict[str, dict[str, float | None]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cols = candidates.select(["election_id", "party_id", "gender", "education", "age_band", "birth_year"])
    for e, party, gender, education, band, born in zip(*(cols[c].to_pylist() for c in cols.column_names),
                                                         strict=True):
        c = counts[e]
        c["all"] += 1
        c["party" if party is not None else "independent"] += 1
        c["women"] += gender == "FEMALE"
        c["higher"] += education == "HIGHER"
        year = election_years.get(e)
        aged = band == "AGE_21_35" or (band in (None, "UNKNOWN") and born is not None and year is not None
                                       and _AGE_MIN <= year - born <= _AGE_MAX)
        c["aged"] += aged
    return {e: {
        "CANDIDATES_PARTY": c["party"], "CANDIDATES_INDEPENDENT": c["independent"],
        "CANDIDATES_WOMEN_SHARE": _share(c["women"], c["all"]),
        "CANDIDATES_HIGHER_EDUCATION_SHARE": _share(c["higher"], c["all"]),
        "CANDIDATES_AGED_21_35_SHARE": _share(c["aged"], c["all"]),
    } for e, c in counts.items()}


def _reported(ex: Extracted, res: Resolution) -> dict[tuple[str, str], dict[str, Any]]:
    rows = current_rows(ex, res, v.DIVISION_SUMMARY)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    # Figures keep their array order, so a metric given twice in one summary: the later figure counts.
    for r in rows.to_pylist():
        if _COUNTRY.match(r["division_id"] or "") and r["metric"] != "OTHER":
            out[(r["election_id"], r["metric"])] = r
    return out


def national_summary(ex: Extracted, res: Resolution, tables: dict[str, pa.Table]) -> pa.Table:
    """One row per election × metric: computed, reported, qualifier, difference, note."""
    elections = tables[t.ELECTIONS]
    years = {e: d.year for e, d in zip(elections["election_id"].to_pylist(), elections["date"].to_pylist(),
                                       strict=True) if d is not None}
    stations = _station_figures(tables[t.STATION_TURNOUT])
    cands = _candidate_figures(tables[t.CANDIDATES], years)
    seats = tables[t.SEATS]
    members = dict(zip(*(c.to_pylist() for c in pc.value_counts(seats["election_id"]).flatten()), strict=True)) \
        if seats.num_rows else {}
    reported = _reported(ex, res)
    election_ids = sorted(set(elections["election_id"].to_pylist()) | set(stations)
                          | {e for e, _ in reported})
    cols: dict[str, list[Any]] = {f.name: [] for f in t.SCHEMAS[t.NATIONAL_SUMMARY]}
    for e in election_ids:
        computed = {**{m: 0 for m in ("REGISTERED_VOTERS", "BALLOTS_CAST", v.METRIC_VALID_BALLOTS,
                                      v.METRIC_INVALID_BALLOTS, v.METRIC_STATIONS, "MUNICIPALITIES",
                                      "CANDIDATES_PARTY", "CANDIDATES_INDEPENDENT")},
                    "TURNOUT": None, "CANDIDATES_WOMEN_SHARE": None, "CANDIDATES_HIGHER_EDUCATION_SHARE": None,
                    "CANDIDATES_AGED_21_35_SHARE": None,
                    **stations.get(e, {}), **cands.get(e, {}), "MEMBERS_ELECTED": members.get(e, 0)}
        for metric in v.SUMMARY_METRICS:
            c = computed[metric]
            r = reported.get((e, metric), {})
            value = r.get("value")
            cols["election_id"].append(e)
            cols["metric"].append(metric)
            cols["computed"].append(None if c is None else float(c))
            cols["reported"].append(value)
            cols["qualifier"].append(r.get("qualifier"))
            cols["difference"].append(None if c is None or value is None else float(c) - value)
            cols["note"].append(r.get("note"))
            cols["division_id"].append(r.get("division_id"))
            for tc in t.TRACE_COLUMNS:
                cols[tc].append(r.get(tc))
    return finish(t.NATIONAL_SUMMARY, cols)
