"""contests (declared, plus each election's default contest) and contest_summary (one row per contest).

Every sum says how many values it was taken over, or is null when none was known; turnout is taken over the
tallies that report both registered voters and ballots cast (docs/contests.md, rule 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.fold import tables as t
from pipelines.fold.build import finish

if TYPE_CHECKING:
    from pipelines.fold.compose import Composition

DEFAULT_CONTEST_KIND = "OTHER"
# Contests whose winner is the most voted option, whatever number_elected says.
SINGLE_OPTION_KINDS = frozenset({"BALLOT_MEASURE", "RETENTION"})


def contests_with_defaults(declared: pa.Table, elections: pa.Table, turnout: pa.Table) -> pa.Table:
    """The declared contests, and the default contest (id = election id) of each election with tallies in it
    that no ContestDeclared declares: kind OTHER, the election's name, no trace."""
    implicit = turnout.filter(pc.equal(turnout["contest_id"], turnout["election_id"]))
    ids = pc.unique(implicit["election_id"])
    ids = ids.filter(pc.invert(pc.is_in(ids, value_set=declared["contest_id"])))
    at = pc.index_in(ids, value_set=elections["election_id"])
    n = len(ids)
    defaults = {
        "contest_id": ids, "election_id": ids, "name": elections["name"].combine_chunks().take(at),
        "kind": pa.array([DEFAULT_CONTEST_KIND] * n, pa.string()),
        **{c: pa.nulls(n, f.type) for c, f in ((f.name, f) for f in t.SCHEMAS[t.CONTESTS])
           if c not in ("contest_id", "election_id", "name", "kind")},
    }
    cols = {f.name: pa.chunked_array([declared[f.name].cast(f.type).combine_chunks(), defaults[f.name]],
                                     type=f.type)
            for f in t.SCHEMAS[t.CONTESTS]}
    return finish(t.CONTESTS, cols)


def _tally_sums(turnout: pa.Table) -> dict[str, dict[str, Any]]:
    """Per contest: stations reporting, and each figure's sum over the tallies that report it, with counts."""
    both = pc.and_(turnout["registered_voters"].is_valid(), turnout["ballots_cast"].is_valid())
    tab = turnout.select(["contest_id", "election_id", "registered_voters", "ballots_cast", "overvotes",
                          "undervotes", "blank_votes", "write_ins"])
    tab = tab.append_column("reg_both", pc.if_else(both, tab["registered_voters"], None)).append_column(
        "cast_both", pc.if_else(both, tab["ballots_cast"], None))
    figures = ("registered_voters", "ballots_cast", "overvotes", "undervotes", "blank_votes", "write_ins",
               "reg_both", "cast_both")
    grouped = tab.group_by("contest_id").aggregate(
        [("contest_id", "count"), ("election_id", "min"),
         *[(f, "sum") for f in figures], ("registered_voters", "count"), ("ballots_cast", "count")])
    return {r["contest_id"]: r for r in grouped.to_pylist()}


def _winners(kind: str | None, number_elected: int | None, ranked: list[tuple[int, str]]) -> tuple[
        list[str] | None, int | None]:
    """(winners, margin) from (votes, selection) sorted most voted first (ties: selection id)."""
    if not ranked:
        return None, None
    if kind in SINGLE_OPTION_KINDS:
        seats = 1
    elif number_elected is None:  # who won a candidate or party contest depends on seats we do not know
        return None, None
    else:
        seats = number_elected
    if seats <= 0:
        return None, None
    won = ranked[:seats]
    margin = won[-1][0] - ranked[seats][0] if len(ranked) > seats else None
    return [s for _, s in won], margin


def contest_summary(contests: pa.Table, turnout: pa.Table, top: pa.Table, comp: Composition,
                    station_flags: np.ndarray) -> pa.Table:
    """One row per contest that is declared or has tallies.

    ``top`` is contest_results' contest level: (contest_id, selection_id, votes) strings and int64.
    """
    sums = _tally_sums(turnout)
    ranked: dict[str, list[tuple[int, str]]] = {}
    for c, s, n in zip(*(top[k].to_pylist() for k in ("contest_id", "selection_id", "votes")), strict=True):
        ranked.setdefault(c, []).append((n, s))
    # Stations composing into each division: count the (station, division) pairs whose start is a station.
    is_station = station_flags[comp.start] if len(comp.start) else np.zeros(0, bool)
    expected = np.bincount(comp.division[is_station], minlength=len(comp.ids))
    declared = {r["contest_id"]: r for r in contests.select(
        ["contest_id", "election_id", "kind", "district_id", "number_elected"]).to_pylist()}
    districts = [r["district_id"] for r in declared.values() if r["district_id"]]
    district_code = dict(zip(districts, comp.code_of(pa.array(districts, pa.string())).tolist(), strict=True))
    cols: dict[str, list[Any]] = {f.name: [] for f in t.SCHEMAS[t.CONTEST_SUMMARY]}
    for cid in sorted(set(declared) | set(sums)):
        d, s = declared.get(cid, {}), sums.get(cid, {})
        order = sorted(ranked.get(cid, []), key=lambda p: (-(p[0] or 0), p[1]))
        winners, margin = _winners(d.get("kind"), d.get("number_elected"), order)
        district = d.get("district_id")
        at = district_code[district] if district else -1
        reg_both, cast_both = s.get("reg_both_sum"), s.get("cast_both_sum")
        reporting = s.get("contest_id_count", 0)
        row = {
            "election_id": d.get("election_id") or s.get("election_id_min"), "contest_id": cid,
            "kind": d.get("kind"), "stations_reporting": reporting,
            "stations_expected": int(expected[at]) if at >= 0 else None,
            "stations_withheld": 0,  # the fold sets it from the withheld table (pipelines.fold.withheld)
            "registered_voters": s.get("registered_voters_sum"), "registered_known": s.get("registered_voters_count", 0),
            "ballots_cast": s.get("ballots_cast_sum"), "ballots_cast_known": s.get("ballots_cast_count", 0),
            "turnout": cast_both / reg_both if reg_both else None,
            **{f: s.get(f"{f}_sum") for f in ("overvotes", "undervotes", "blank_votes", "write_ins")},
            # No tally: nothing is known; tallies that list no votes: a known zero.
            "total_votes": sum(n for n, _ in order) if reporting else None,
            "winners": winners, "margin": margin,
        }
        for k, value in row.items():
            cols[k].append(value)
    return finish(t.CONTEST_SUMMARY, cols)
