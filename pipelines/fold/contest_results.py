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


# float64 sums of integers are exact while every partial sum stays below 2**53 (bincount sums in float64).
_EXACT_FLOAT = 1 << 53


@dataclass
class _Column:
    """A summed column of the station rows as numpy: values (0 where null) and where they are known."""

    values: np.ndarray  # int64
    valid: np.ndarray | None  # bool, None: never null

    @classmethod
    def of(cls, array: pa.Array | np.ndarray) -> _Column | None:
        """None for a column that is null throughout (its sums are null too: nothing to add up)."""
        if isinstance(array, np.ndarray):
            return cls(array.astype(np.int64, copy=False), None)
        if array.null_count == len(array) and len(array):
            return None
        if array.null_count == 0:
            return cls(array.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), None)
        return cls(array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
                   array.is_valid().to_numpy(zero_copy_only=False))


def _bin_sum(bins: np.ndarray, values: np.ndarray, n_bins: int, exact: bool) -> np.ndarray:
    """Sum of ``values`` per bin (int64; a bin without rows: 0)."""
    if exact:
        return np.rint(np.bincount(bins, weights=values, minlength=n_bins)).astype(np.int64)
    # Beyond float64's exact range: Arrow's integer sum, which wraps as the group-by it replaces did.
    grouped = pa.table({"b": bins, "v": values}).group_by("b").aggregate([("v", "sum")])
    out = np.zeros(n_bins, np.int64)
    out[grouped["b"].to_numpy()] = grouped["v_sum"].to_numpy()
    return out


def _sums(groupings: list[tuple[np.ndarray, np.ndarray | None]], cols: dict[str, _Column | None], n_bins: int
          ) -> tuple[np.ndarray, dict[str, np.ndarray | None], dict[str, np.ndarray | None]]:
    """Sum ``cols`` per bin over every grouping: (rows per bin, sums, known values per bin).

    Each grouping gives each row's bin, and which rows take part (None: all). A row adds to a bin at most once
    over all groupings (each grouping is another division of the row's station), so no sum exceeds the sum of
    the column's magnitudes: below 2**53, float64 sums are exact.
    """
    n_rows = max((len(c.values) for c in cols.values() if c is not None), default=0)
    count = np.zeros(n_bins, np.int64)
    sums: dict[str, np.ndarray | None] = {k: None if c is None else np.zeros(n_bins, np.int64) for k, c in cols.items()}
    known: dict[str, np.ndarray | None] = {k: None if c is None or c.valid is None else np.zeros(n_bins, np.int64)
                                           for k, c in cols.items()}
    exact = {k: c is not None and (int(np.abs(c.values).max()) if len(c.values) else 0) * n_rows < _EXACT_FLOAT
             for k, c in cols.items()}
    for bins, rows in groupings:
        b = bins if rows is None else bins[rows]
        count += np.bincount(b, minlength=n_bins)
        for k, c in cols.items():
            if c is None:
                continue
            values = c.values if rows is None else c.values[rows]
            sums[k] += _bin_sum(b, values, n_bins, exact[k])
            if c.valid is not None:
                valid = c.valid if rows is None else c.valid[rows]
                known[k] += np.bincount(b, weights=valid, minlength=n_bins).astype(np.int64)
    return count, sums, known


@dataclass
class _Level:
    """One level's rows, in (contest, unit, selection) order within each contest."""

    code: int  # index into sorted(t.LEVELS)
    contest: np.ndarray
    cs: np.ndarray  # (contest, selection) pair: index into _Pairs
    unit: np.ndarray  # index into the unit dictionary, -1: null
    columns: dict[str, tuple[np.ndarray, np.ndarray | None] | None]  # (values, known or None) or all null


@dataclass
class _Pairs:
    """The distinct (contest, selection) pairs of the station rows, sorted."""

    contest: np.ndarray
    selection: np.ndarray
    of_row: np.ndarray  # each station row's pair
    local: np.ndarray  # each station row's selection: its rank among its contest's selections
    first: np.ndarray  # per contest, its first pair
    width: int  # most selections of one contest


def _pairs(contest_idx: np.ndarray, sv: StationVotes) -> _Pairs:
    n_sel = np.int64(max(len(sv.selections), 1))
    enc = pc.dictionary_encode(pa.array(contest_idx * n_sel + sv.selection))
    keys = enc.dictionary.to_numpy()
    order = np.argsort(keys)
    rank = np.empty(len(keys), np.int64)
    rank[order] = np.arange(len(keys))
    keys = keys[order]
    of_row = rank[enc.indices.to_numpy()]
    del enc, rank
    contest, selection = keys // n_sel, keys % n_sel
    first = np.searchsorted(contest, np.arange(len(sv.contests) + 1))
    width = int(np.diff(first).max()) if len(sv.contests) else 0
    return _Pairs(contest=contest, selection=selection, of_row=of_row, local=of_row - first[contest_idx],
                  first=first, width=width)


def _division_level(pairs: _Pairs, comp: Composition, station_code: np.ndarray, tally_contest: np.ndarray,
                    rank: np.ndarray, cols: dict[str, _Column | None], unit_of_id: np.ndarray) -> _Level:
    """Sums per (contest, division, selection) over the stations composing into each division.

    The k-th division a station composes into (k = 0, 1, ...) is its *ancestor slot* k; each slot is a grouping
    of the station rows. A row's bin is its (contest, division) block (sorted) times the widest contest plus its
    selection's rank in the contest, so bins are in output order and sums need no sort of the rows.
    """
    n_ids = max(len(comp.ids), 1)
    starts = np.searchsorted(comp.start, np.arange(n_ids))
    slot = np.arange(len(comp.start)) - starts[comp.start] if len(comp.start) else np.zeros(0, np.int64)
    units_of_tally = []
    for k in range(int(slot.max()) + 1 if len(slot) else 0):
        ancestor = np.full(n_ids, -1, np.int64)
        ancestor[comp.start[slot == k]] = comp.division[slot == k]
        units_of_tally.append(np.where(station_code >= 0, ancestor[np.maximum(station_code, 0)], -1))
    block_keys = np.concatenate([np.zeros(0, np.int64)] + [tally_contest[u >= 0] * n_ids + u[u >= 0]
                                                           for u in units_of_tally])
    block_keys.sort()
    if len(block_keys) > 1:
        block_keys = block_keys[np.append(True, block_keys[1:] != block_keys[:-1])]
    width = np.int64(max(pairs.width, 1))
    groupings = []
    for units in units_of_tally:
        block = np.searchsorted(block_keys, tally_contest * n_ids + units)  # garbage where units < 0: not used
        rows = units[rank] >= 0
        groupings.append((block[rank] * width + pairs.local, None if rows.all() else rows))
    del units_of_tally
    n_bins = len(block_keys) * int(width)
    count, sums, known = _sums(groupings, cols, n_bins)
    del groupings
    present = np.flatnonzero(count)
    block, local = present // width, present % width
    contest, unit = block_keys[block] // n_ids, block_keys[block] % n_ids
    columns = {k: None if sums[k] is None else (sums[k][present], None if known[k] is None else known[k][present])
               for k in cols}
    columns["stations"] = (count[present], None)
    return _Level(code=1, contest=contest, cs=pairs.first[contest] + local, unit=unit_of_id[unit], columns=columns)


def contest_results(sv: StationVotes, methods: Methods, comp: Composition, station_of_tally: np.ndarray, contest_election: pa.Array) -> tuple[pa.Table, pa.Table]:
    """(contest_results: all three levels, sorted by (contest_id, level, unit_id, selection_id); the contest level
    as (contest_id, selection_id, votes)).

    ``station_of_tally`` is each current tally's station code in ``comp.ids``; ``contest_election`` the election
    of each ``sv.contests`` entry.
    """
    rank = sv.rank
    tally_contest = sv.contest_of_tally.astype(np.int64)
    contest_idx = tally_contest[rank] if len(rank) else np.zeros(0, np.int64)
    pairs = _pairs(contest_idx, sv)
    cols = {"votes": _Column.of(sv.votes), **{c: _Column.of(a) for c, a in zip(t.METHOD_COLUMNS, methods.values,
                                                                                   strict=True)},
            "methods_unknown": _Column.of(methods.unknown)}
    # One unit dictionary for station, division and contest ids; levels sort as contest < division < station.
    units, unit_codes = sorted_dictionary(pa.chunked_array([comp.ids, sv.contests], type=pa.string()))
    unit_of_id = unit_codes[:len(comp.ids)].astype(np.int64)
    unit_of_contest = unit_codes[len(comp.ids):].astype(np.int64)
    division = _division_level(pairs, comp, station_of_tally, tally_contest, rank, cols, unit_of_id)
    count, sums, known = _sums([(pairs.of_row, None)], cols, len(pairs.contest))
    contest_columns = {k: None if sums[k] is None else (sums[k], known[k]) for k in cols}
    contest_columns["stations"] = (count, None)
    contest = _Level(code=0, contest=pairs.contest, cs=np.arange(len(pairs.contest)),
                     unit=unit_of_contest[pairs.contest], columns=contest_columns)
    station_unit = np.where(station_of_tally >= 0, unit_of_id[np.maximum(station_of_tally, 0)], -1)
    station = _Level(code=2, contest=contest_idx, cs=pairs.of_row, unit=station_unit[rank] if len(rank) else rank,
                     columns={k: None if c is None else (c.values, c.valid) for k, c in cols.items()}
                     | {"stations": (np.ones(len(rank), np.int64), None)})
    kind_of_pair = np.full(len(pairs.contest), -1, np.int32)
    kind_of_pair[pairs.of_row] = sv.kind  # a function of (contest, selection): any row will do
    top = pa.table({"contest_id": sv.contests.take(pa.array(pairs.contest)),
                    "selection_id": sv.selections.take(pa.array(pairs.selection)),
                    "votes": pa.array(sums["votes"], pa.int64())})
    return _assemble([contest, division, station], sv, pairs, kind_of_pair, contest_election, units), top


def _runs_order(levels: list[_Level]) -> np.ndarray:
    """Row order of the concatenated levels: per contest, its contest rows, division rows, then station rows.

    Each level is already ordered by (unit, selection) within a contest (station rows follow the tallies'
    (election, contest, station) order, so each contest's station rows are one run), so the order is a
    concatenation of runs, not a sort of ~13M rows.
    """
    starts, lengths, contests = [], [], []
    base = 0
    for level in levels:
        c = level.contest
        if len(c):
            bounds = np.flatnonzero(np.r_[True, c[1:] != c[:-1], True])
            starts.append(base + bounds[:-1])
            lengths.append(np.diff(bounds))
            contests.append(c[bounds[:-1]])
        base += len(c)
    if not starts:
        return np.zeros(0, np.int64)
    start, length = np.concatenate(starts), np.concatenate(lengths)
    by_contest = np.argsort(np.concatenate(contests), kind="stable")  # runs are listed level by level
    start, length = start[by_contest], length[by_contest]
    ends = np.cumsum(length)
    return np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(start - (ends - length), length)


def _gathered(levels: list[_Level], name: str, order: np.ndarray) -> pa.Array:
    """Column ``name`` of the levels, concatenated and put in ``order``."""
    parts = [level.columns[name] for level in levels]
    n = len(order)
    if all(p is None for p in parts):
        return _null_int64(n)
    values = np.concatenate([p[0] if p is not None else np.zeros(len(lv.contest), np.int64)
                             for p, lv in zip(parts, levels, strict=True)])[order]
    if all(p is not None and p[1] is None for p in parts):
        return pa.array(values, pa.int64())
    known = np.concatenate([np.zeros(len(lv.contest), bool) if p is None else
                            np.ones(len(lv.contest), bool) if p[1] is None else p[1] > 0
                            for p, lv in zip(parts, levels, strict=True)])[order]
    return pa.array(values, pa.int64(), mask=~known)


def _assemble(levels: list[_Level], sv: StationVotes, pairs: _Pairs, kind_of_pair: np.ndarray,
              contest_election: pa.Array, units: pa.Array) -> pa.Table:
    """The contest_results table from its levels."""
    order = _runs_order(levels)
    cs = np.concatenate([lv.cs for lv in levels])[order]
    contest = pairs.contest[cs]
    elections, election_idx = sorted_dictionary(contest_election)
    cols = {
        "election_id": dict_column(elections, election_idx[contest] if len(contest) else contest),
        "contest_id": dict_column(sv.contests, contest), "selection_id": dict_column(sv.selections,
                                                                                     pairs.selection[cs]),
        "selection_kind": dict_column(sv.kinds, kind_of_pair[cs]),
        "level": dict_column(pa.array(sorted(t.LEVELS), pa.string()),
                             np.concatenate([np.full(len(lv.contest), lv.code, np.int32) for lv in levels])[order]),
        "unit_id": dict_column(units, np.concatenate([lv.unit for lv in levels])[order]),
    }
    del cs, contest
    for name in _SUMMED:
        cols[name] = _gathered(levels, name, order)
    schema = t.SCHEMAS[t.CONTEST_RESULTS]
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


def contest_tables(ex: Extracted, res: Resolution, cur: CurrentTallies, sv: StationVotes,
                   reference: dict[str, pa.Table], turnout: pa.Table) -> dict[str, pa.Table]:
    """contests (with each election's default contest), contest_results and contest_summary."""
    divisions = reference[t.DIVISIONS]
    stations = divisions.filter(pc.is_in(divisions["kind"], value_set=pa.array(STATION_KINDS)))["division_id"]
    comp = compose(divisions, pa.chunked_array([*stations.chunks, *cur.table["station_id"].chunks],
                                               type=pa.string()))
    contests = contests_with_defaults(reference[t.CONTESTS], reference[t.ELECTIONS], turnout)
    n_contests = len(sv.contests)
    first = np.full(n_contests, len(sv.contest_of_tally), np.int64)
    np.minimum.at(first, sv.contest_of_tally, np.arange(len(sv.contest_of_tally), dtype=np.int64))
    contest_election = cur.table["election_id"].take(pa.array(first)).combine_chunks() if n_contests \
        else pa.array([], pa.string())
    station_codes = comp.starts[:len(stations)]
    results, top = contest_results(sv, station_methods(ex, res, cur, sv), comp, comp.starts[len(stations):],
                                   contest_election)
    station_flags = np.zeros(len(comp.ids), bool)
    station_flags[station_codes[station_codes >= 0]] = True
    return {t.CONTESTS: contests, t.CONTEST_RESULTS: results,
            t.CONTEST_SUMMARY: contest_summary(contests, turnout, top, comp, station_flags)}


def declared(ex: Extracted, res: Resolution) -> tuple[pa.Table, pa.Table]:
    """(current ContestDeclared rows, their selections), with trace columns."""
    return current_rows(ex, res, v.CONTEST_DECLARED), current_rows(ex, res, x.CONTEST_SELECTION)
