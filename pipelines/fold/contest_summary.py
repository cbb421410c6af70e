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


def _winners(kind: str | None, number_elected: int | None, votes: list[int], selections: list[str]) -> tuple[
        list[str] | None, int | None]:
    """(winners, margin) from a contest's votes and selections, most voted first (ties: selection id)."""
    if not votes:
        return None, None
    if kind in SINGLE_OPTION_KINDS:
        seats = 1
    elif number_elected is None:  # who won a candidate or party contest depends on seats we do not know
        return None, None
    else:
        seats = number_elected
    if seats <= 0:
        return None, None
    margin = votes[seats - 1] - votes[seats] if len(votes) > seats else None
    return selections[:seats], margin


def _ranked(top: pa.Table) -> dict[str, tuple[list[int], list[str]]]:
    """Per contest of ``top``, its selections' votes and ids, most voted first (ties: selection id)."""
    if top.num_rows == 0:
        return {}
    # top is in (contest, selection) order: each contest is a run, its selections in id order; one sort of the
    # integers (run, votes descending) ranks every contest (not a Python sort per contest).
    contest = top["contest_id"]
    new_run = np.append(True, pc.not_equal(contest[1:], contest[:-1]).to_numpy(zero_copy_only=False))
    votes = top["votes"].to_numpy()
    _, votes_rank = np.unique(votes, return_inverse=True)
    order = np.lexsort((-votes_rank, np.cumsum(new_run)))  # stable: ties keep the selection order
    ids = top["selection_id"].take(pa.array(order)).to_pylist()
    ranked = votes[order].tolist()
    bounds = [*np.flatnonzero(new_run).tolist(), top.num_rows]
    names = contest.take(pa.array(bounds[:-1])).to_pylist()
    return {c: (ranked[a:b], ids[a:b]) for c, a, b in zip(names, bounds[:-1], bounds[1:], strict=True)}


def contest_summary(contests: pa.Table, turnout: pa.Table, top: pa.Table, comp: Composition,
                    station_flags: np.ndarray) -> pa.Table:
    """One row per contest that is declared or has tallies.

    ``top`` is contest_results' contest level: (contest_id, selection_id, votes) strings and int64.
    """
    sums = _tally_sums(turnout)
    ranked = _ranked(top)
    # Stations composing into each division: count the (station, division) pairs whose start is a station.
    is_station = station_flags[comp.start] if len(comp.start) else np.zeros(0, bool)
    expected = np.bincount(comp.division[is_station], minlength=len(comp.ids))
    declared = {r["contest_id"]: r for r in contests.select(
        ["contest_id", "election_id", "kind", "district_id", "number_elected"]).to_pylist()}
    districts = [r["district_id"] for r in declared.values() if r["district_id"]]
    district_code = dict(zip(districts, comp.code_of(pa.array(districts, pa.string())).tolist(), strict=True))
    # Built column by column (list comprehensions), not row by row: 10,000 contests make 180,000 appends.
    ids = sorted(set(declared) | set(sums))
    ds, ss = [declared.get(c, {}) for c in ids], [sums.get(c, {}) for c in ids]
    picks = [ranked.get(c, ([], [])) for c in ids]
    won = [_winners(d.get("kind"), d.get("number_elected"), *p) for d, p in zip(ds, picks, strict=True)]
    reporting = [s.get("contest_id_count", 0) for s in ss]
    at = [district_code[d["district_id"]] if d.get("district_id") else -1 for d in ds]
    cols: dict[str, list[Any]] = {
        "election_id": [d.get("election_id") or s.get("election_id_min") for d, s in zip(ds, ss, strict=True)],
        "contest_id": ids, "kind": [d.get("kind") for d in ds], "stations_reporting": reporting,
        "stations_expected": [int(expected[a]) if a >= 0 else None for a in at],
        "stations_withheld": [0] * len(ids),  # the fold sets it from the withheld table (pipelines.fold.withheld)
        "registered_voters": [s.get("registered_voters_sum") for s in ss],
        "registered_known": [s.get("registered_voters_count", 0) for s in ss],
        "ballots_cast": [s.get("ballots_cast_sum") for s in ss],
        "ballots_cast_known": [s.get("ballots_cast_count", 0) for s in ss],
        "turnout": [s["cast_both_sum"] / s["reg_both_sum"] if s.get("reg_both_sum") else None for s in ss],
        **{f: [s.get(f"{f}_sum") for s in ss] for f in ("overvotes", "undervotes", "blank_votes", "write_ins")},
        # No tally: nothing is known; tallies that list no votes: a known zero.
        "total_votes": [sum(p[0]) if r else None for p, r in zip(picks, reporting, strict=True)],
        "winners": [w for w, _ in won], "margin": [m for _, m in won],
    }
    return finish(t.CONTEST_SUMMARY, cols)
