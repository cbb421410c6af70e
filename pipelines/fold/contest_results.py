"""contest_results: votes per selection at each station, each division the station composes into, and the contest.

Built from the same numpy arrays as station_results (``results.StationVotes``): the station level is those
arrays re-labelled, the division level one Arrow group-by per *ancestor slot* (the k-th division a station
composes into, k = 0, 1, ...) instead of one over a table expanded by every (station, division) pair, and the
contest level one group-by over the station rows. Vote-method columns are null where no tally of the unit
reported the method; a unit's sums are over the tallies that did (docs/contests.md, rule 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold import extract as x
from pipelines.fold import tables as t
from pipelines.fold.build import current_rows, dict_column, sorted_dictionary
from pipelines.fold.compose import Composition, compose
from pipelines.fold.contest_summary import contest_summary, contests_with_defaults
from pipelines.fold.extract import Extracted
from pipelines.fold.tallies import CurrentTallies, StationVotes
from pipelines.fold.versions import Resolution

# The division kinds that are polling places: what ``stations_expected`` counts.
STATION_KINDS = ("POLLING_STATION", "PRECINCT")
_SUMMED = ("votes", *t.METHOD_COLUMNS, "methods_unknown", "stations")


@dataclass
class Methods:
    """Per station row: each method's known votes (masked where not known) and the unknown-figure count."""

    values: list[pa.Array]  # one per VOTE_METHODS entry
    unknown: pa.Array  # reported method figures without votes; null where the tally reported no method


def _null_int64(n: int) -> pa.Array:
    # One zeroed buffer and one all-null bitmap shared by every column that is entirely unknown.
    return pa.Array.from_buffers(pa.int64(), n, [pa.py_buffer(bytes((n + 7) // 8)), _zeros(n)], null_count=n)


_ZEROS: dict[int, pa.Buffer] = {}


def _zeros(n: int) -> pa.Buffer:
    if n not in _ZEROS:
        _ZEROS.clear()
        _ZEROS[n] = pa.py_buffer(np.zeros(n, dtype=np.int64))
    return _ZEROS[n]


def station_methods(ex: Extracted, res: Resolution, cur: CurrentTallies, sv: StationVotes) -> Methods:
    """Spread the current tallies' by_method entries over the station rows."""
    n = len(sv.votes)
    rows = ex.content[x.METHOD_VOTES]
    if rows.num_rows:
        rows = rows.filter(pa.array(res.current[rows["ord"].to_numpy()]))
    if rows.num_rows == 0:
        return Methods(values=[_null_int64(n)] * len(v.VOTE_METHODS), unknown=_null_int64(n))
    rank = pc.index_in(rows["ord"], value_set=cur.table["ord"]).to_numpy(zero_copy_only=False).astype(np.int64)
    sel = pc.index_in(rows["selection_id"], value_set=sv.selections).to_numpy(zero_copy_only=False).astype(np.int64)
    width = np.int64(max(len(sv.selections), 1))
    row_keys = sv.rank.astype(np.int64) * width + sv.selection
    at = np.searchsorted(row_keys, rank * width + sel)
    # A method symbol this fold does not know is read as OTHER, as readers read an unknown enum symbol.
    method = pc.index_in(rows["method"], value_set=pa.array(v.VOTE_METHODS)).fill_null(
        v.VOTE_METHODS.index("OTHER")).to_numpy(zero_copy_only=False)
    known = rows["votes"].is_valid().to_numpy(zero_copy_only=False)
    votes = rows["votes"].fill_null(0).to_numpy(zero_copy_only=False)
    values, counts = np.zeros((len(v.VOTE_METHODS), n), np.int64), np.zeros((len(v.VOTE_METHODS), n), np.int64)
    np.add.at(values, (method[known], at[known]), votes[known])
    np.add.at(counts, (method[known], at[known]), 1)
    unknown, reported = np.zeros(n, np.int64), np.zeros(n, bool)
    np.add.at(unknown, at[~known], 1)
    reported[at] = True
    return Methods(values=[pa.array(values[i], mask=counts[i] == 0) for i in range(len(v.VOTE_METHODS))],
                   unknown=pa.array(unknown, mask=~reported))


def _group(codes: dict[str, np.ndarray], cols: dict[str, pa.Array], mask: np.ndarray | None) -> pa.Table:
    """Sum ``cols`` per distinct ``codes`` (nulls skipped; a sum of nothing but nulls is null)."""
    data = {k: pa.array(c if mask is None else c[mask]) for k, c in codes.items()}
    data.update({k: (c if mask is None else c.filter(pa.array(mask))) for k, c in cols.items()})
    grouped = pa.table(data).group_by(list(codes)).aggregate([(k, "sum") for k in cols])
    return grouped.rename_columns([c.removesuffix("_sum") for c in grouped.column_names])


def _division_level(sv: StationVotes, comp: Composition, station_code: np.ndarray, cols: dict[str, pa.Array],
                    contest_idx: np.ndarray) -> pa.Table:
    """Sums per (contest, division, selection) over the stations composing into each division."""
    n_ids = max(len(comp.ids), 1)
    starts = np.searchsorted(comp.start, np.arange(n_ids))
    slot = np.arange(len(comp.start)) - starts[comp.start] if len(comp.start) else np.zeros(0, np.int64)
    parts = []
    for k in range(int(slot.max()) + 1 if len(slot) else 0):
        ancestor = np.full(n_ids, -1, np.int64)
        ancestor[comp.start[slot == k]] = comp.division[slot == k]
        unit = np.where(station_code >= 0, ancestor[np.maximum(station_code, 0)], -1)
        has = unit >= 0
        if has.any():
            parts.append(_group({"contest": contest_idx, "unit": unit, "sel": sv.selection.astype(np.int64)},
                                cols, has))
    if not parts:
        return pa.table({"contest": pa.array([], pa.int64()), "unit": pa.array([], pa.int64()),
                         "sel": pa.array([], pa.int64()), **{c: pa.array([], pa.int64()) for c in _SUMMED}})
    merged = pa.concat_tables(parts)
    if len(parts) > 1:  # one division can be a station's k-th ancestor and another's j-th
        merged = merged.group_by(["contest", "unit", "sel"]).aggregate([(c, "sum") for c in _SUMMED])
        merged = merged.rename_columns([c.removesuffix("_sum") for c in merged.column_names])
    return merged


def contest_results(cur: CurrentTallies, sv: StationVotes, methods: Methods, comp: Composition,
                    contest_election: pa.Array) -> pa.Table:
    """All three levels, sorted by (contest_id, level, unit_id, selection_id).

    ``contest_election`` is the election of each ``sv.contests`` entry.
    """
    n = len(sv.votes)
    contest_idx = sv.contest_of_tally[sv.rank].astype(np.int64) if n else np.zeros(0, np.int64)
    station_of_tally = comp.code_of(cur.table["station_id"])
    station_code = station_of_tally[sv.rank] if n else np.zeros(0, np.int64)
    cols = {"votes": pa.array(sv.votes, pa.int64()),
            **dict(zip(t.METHOD_COLUMNS, methods.values, strict=True)), "methods_unknown": methods.unknown,
            "stations": pa.array(np.ones(n, np.int64))}
    division = _division_level(sv, comp, station_code, cols, contest_idx)
    contest = _group({"contest": contest_idx, "sel": sv.selection.astype(np.int64)}, cols, None)
    # One unit dictionary for station, division and contest ids; levels sort as contest < division < station.
    units, _ = sorted_dictionary(pa.chunked_array([comp.ids, sv.contests], type=pa.string()))
    unit_of_id = pc.index_in(comp.ids, value_set=units).to_numpy(zero_copy_only=False).astype(np.int64)
    unit_of_contest = pc.index_in(sv.contests, value_set=units).to_numpy(zero_copy_only=False).astype(np.int64)
    contest_sorted = contest.sort_by([("contest", "ascending"), ("sel", "ascending")])
    division_sorted = division.sort_by([("contest", "ascending"), ("unit", "ascending"), ("sel", "ascending")])
    parts = [
        (0, contest_sorted["contest"].to_numpy(), unit_of_contest[contest_sorted["contest"].to_numpy()],
         contest_sorted),
        (1, division_sorted["contest"].to_numpy(), unit_of_id[division_sorted["unit"].to_numpy()], division_sorted),
        (2, contest_idx, np.where(station_code >= 0, unit_of_id[np.maximum(station_code, 0)], -1),
         pa.table({"sel": pa.array(sv.selection.astype(np.int64)), **cols})),
    ]
    return _assemble(parts, sv, contest_election, units)


def _assemble(parts: list[tuple[int, np.ndarray, np.ndarray, pa.Table]], sv: StationVotes,
              contest_election: pa.Array, units: pa.Array) -> pa.Table:
    """Concatenate the levels in key order: per contest, its contest rows, division rows, then station rows.

    Each part is already ordered by (contest, unit, selection) within a contest (station rows follow the
    tallies' (election, contest, station) order, so each contest's station rows are one run), so the order is
    a concatenation of runs, not a sort of ~13M rows.
    """
    offsets = np.cumsum([0] + [len(p[1]) for p in parts])
    runs: list[list[np.ndarray]] = [[] for _ in range(len(sv.contests))]
    for (_, contest, _, _), base in zip(parts, offsets, strict=False):
        if not len(contest):
            continue
        bounds = np.flatnonzero(np.r_[True, contest[1:] != contest[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            runs[int(contest[a])].append(np.arange(base + a, base + b))
    order = np.concatenate([r for rs in runs for r in rs]) if any(runs) else np.zeros(0, np.int64)
    level = np.concatenate([np.full(len(p[1]), p[0], np.int32) for p in parts])[order]
    contest = np.concatenate([p[1] for p in parts]).astype(np.int64)[order]
    unit = np.concatenate([p[2] for p in parts])[order]
    sel = np.concatenate([p[3]["sel"].to_numpy() for p in parts]).astype(np.int64)[order]
    idx = pa.array(order, pa.int64())
    table = pa.concat_tables([p[3].select(list(_SUMMED)) for p in parts]).take(idx) if len(order) \
        else pa.table({c: pa.array([], pa.int64()) for c in _SUMMED})
    kinds = _kind_of(sv, contest, sel)
    elections, election_idx = sorted_dictionary(contest_election)
    cols = {
        "election_id": dict_column(elections, election_idx[contest] if len(contest) else contest),
        "contest_id": dict_column(sv.contests, contest), "selection_id": dict_column(sv.selections, sel),
        "selection_kind": dict_column(sv.kinds, kinds),
        "level": dict_column(pa.array(sorted(t.LEVELS), pa.string()), level), "unit_id": dict_column(units, unit),
        **{c: table[c] for c in _SUMMED},
    }
    schema = t.SCHEMAS[t.CONTEST_RESULTS]
    return pa.Table.from_arrays([cols[f.name].cast(f.type) if not isinstance(cols[f.name], pa.DictionaryArray)
                                 else cols[f.name] for f in schema], schema=schema).combine_chunks()


def _kind_of(sv: StationVotes, contest: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """The selection kind of each (contest, selection), as the station rows have it."""
    width = np.int64(max(len(sv.selections), 1))
    station_keys = sv.contest_of_tally[sv.rank].astype(np.int64) * width + sv.selection
    keys, first = np.unique(station_keys, return_index=True)
    wanted = contest * width + sel
    at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
    return sv.kind[first][at] if len(keys) else np.zeros(len(wanted), np.int32)


def contest_tables(ex: Extracted, res: Resolution, cur: CurrentTallies, sv: StationVotes,
                   reference: dict[str, pa.Table], turnout: pa.Table) -> dict[str, pa.Table]:
    """contests (with each election's default contest), contest_results and contest_summary."""
    divisions = reference[t.DIVISIONS]
    stations = divisions.filter(pc.is_in(divisions["kind"], value_set=pa.array(STATION_KINDS)))["division_id"]
    comp = compose(divisions, pa.chunked_array([*stations.chunks, *cur.table["station_id"].chunks],
                                               type=pa.string()))
    contests = contests_with_defaults(reference[t.CONTESTS], reference[t.ELECTIONS], turnout)
    tally_election = cur.table["election_id"]
    first = np.unique(sv.contest_of_tally, return_index=True)[1] if len(sv.contest_of_tally) else np.zeros(0, int)
    contest_election = tally_election.take(pa.array(first, pa.int64())).combine_chunks() if len(first) \
        else pa.array([], pa.string())
    results = contest_results(cur, sv, station_methods(ex, res, cur, sv), comp, contest_election)
    station_flags = pc.is_in(comp.ids, value_set=stations).to_numpy(zero_copy_only=False)
    return {t.CONTESTS: contests, t.CONTEST_RESULTS: results,
            t.CONTEST_SUMMARY: contest_summary(contests, turnout, results, comp, station_flags)}


def declared(ex: Extracted, res: Resolution) -> tuple[pa.Table, pa.Table]:
    """(current ContestDeclared rows, their selections), with trace columns."""
    return current_rows(ex, res, v.CONTEST_DECLARED), current_rows(ex, res, x.CONTEST_SELECTION)
