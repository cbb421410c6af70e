"""contest_results: votes per selection at each station, each division the station composes into, and the contest.

Built from the same numpy arrays as station_results (``tallies.StationVotes``): the station level is those
arrays re-labelled; the station rows are summed once per (block, selection), a block being the tallies of one
contest whose stations compose into the same divisions, and the division level (per *ancestor slot*: the k-th
division a station composes into) and the contest level sum those sums, with integer bins and bincount rather
than group-bys or sorts of the ~13M rows. Vote-method columns are null where no tally of the unit reported the
method; a unit's sums are over the tallies that did (docs/contests.md, rule 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold import extract as x
from pipelines.fold import tables as t
from pipelines.fold.build import bin_sum, current_rows, dict_column, exact_in_float, gather, sorted_dictionary
from pipelines.fold.compose import Composition, compose
from pipelines.fold.contest_summary import contest_summary, contests_with_defaults
from pipelines.fold.extract import Extracted
from pipelines.fold.ranks import sorted_union
from pipelines.fold.sliced import SlicedTable
from pipelines.fold.tallies import CurrentTallies, Pairs, StationVotes
from pipelines.fold.versions import Resolution

# The division kinds that are polling places: what ``stations_expected`` counts.
STATION_KINDS = ("POLLING_STATION", "PRECINCT")
_SUMMED = ("votes", *t.METHOD_COLUMNS, "methods_unknown", "stations")
# contest_results searches the contests among the division ids when they are fewer than one in this many.
_FEW_CONTESTS = 16


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


@dataclass
class _Column:
    """A summed column as numpy: values (0 where null), how many known values each entry stands for, and
    whether float64 sums of it are exact."""

    values: np.ndarray | None  # int64; None: 1 per entry (the ``stations`` column of station rows)
    known: np.ndarray | None  # bool, or int64 counts; None: every value known
    exact: bool

    @classmethod
    def of(cls, array: pa.Array | np.ndarray) -> _Column | None:
        """None for a column that is null throughout (its sums are null too: nothing to add up).

        Every sum of the column is over a subset of its rows, each row at most once, so no sum's magnitude
        exceeds the rows' largest magnitude times their number: below 2**53, float64 sums are exact.
        """
        if isinstance(array, np.ndarray):
            values, known = array.astype(np.int64, copy=False), None
        elif array.null_count == len(array) and len(array):
            return None
        elif array.null_count == 0:
            values, known = array.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), None
        else:
            values = array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            known = array.is_valid().to_numpy(zero_copy_only=False)
        return cls(values, known, exact_in_float(values))

    def take(self, at: np.ndarray) -> _Column:
        return _Column(None if self.values is None else self.values[at],
                       None if self.known is None else self.known[at], self.exact)


Columns = dict[str, "_Column | None"]
_COUNT = _Column(None, None, True)  # the ``stations`` column of station rows: each row is one


def _sums(groupings: Iterable[tuple[np.ndarray, np.ndarray | None]], cols: Columns, n_bins: int) -> Columns:
    """Sum ``cols`` per bin over every grouping; each gives each entry's bin, and which entries take part (None:
    all). A bin's known count is the known values summed into it."""
    values = {k: np.zeros(n_bins, np.int64) for k, c in cols.items() if c is not None}
    known = {k: np.zeros(n_bins, np.int64) for k, c in cols.items() if c is not None and c.known is not None}
    for bins, rows in groupings:
        b = bins if rows is None else bins[rows]
        for k, c in cols.items():
            if c is None:
                continue
            values[k] += bin_sum(b, c.values if rows is None or c.values is None else c.values[rows], n_bins,
                                  c.exact)
            if c.known is not None:
                known[k] += bin_sum(b, c.known if rows is None else c.known[rows], n_bins, True)
    return {k: None if c is None else _Column(values[k], known.get(k), c.exact) for k, c in cols.items()}


def _taken(cols: Columns, at: np.ndarray) -> Columns:
    return {k: None if c is None else c.take(at) for k, c in cols.items()}


@dataclass
class _Level:
    """One level's rows, in (unit, selection) order within each contest."""

    code: int  # index into sorted(t.LEVELS)
    contest: np.ndarray  # index into StationVotes.contests
    selection: np.ndarray  # index into StationVotes.selections
    kind: np.ndarray  # index into StationVotes.kinds, -1: null
    unit: np.ndarray  # index into the unit dictionary, -1: null
    columns: Columns


def _dense(keys: np.ndarray) -> np.ndarray:
    """An index per distinct key (in order of first appearance)."""
    return pc.dictionary_encode(pa.array(keys, pa.int64())).indices.to_numpy().astype(np.int64)


def _dense_enough(n_bins: int, n_rows: int) -> bool:
    """Whether summing rows into ``n_bins`` dense bins costs no more memory than the rows themselves."""
    return n_bins <= max(n_rows, 1 << 20)


def _slots(comp: Composition, station_of_tally: np.ndarray) -> list[np.ndarray]:
    """Per *ancestor slot* k (the k-th division a station composes into), the slot's division of each tally (-1:
    none)."""
    n_ids = max(len(comp.ids), 1)
    starts = np.searchsorted(comp.start, np.arange(n_ids))
    slot = np.arange(len(comp.start)) - starts[comp.start] if len(comp.start) else np.zeros(0, np.int64)
    out = []
    for k in range(int(slot.max()) + 1 if len(slot) else 0):
        ancestor = np.full(n_ids, -1, np.int64)
        ancestor[comp.start[slot == k]] = comp.division[slot == k]
        out.append(np.where(station_of_tally >= 0, ancestor[np.maximum(station_of_tally, 0)], -1))
    return out


def _roll_up(pairs: Pairs, comp: Composition, station_of_tally: np.ndarray, tally_contest: np.ndarray,
             rank: np.ndarray, cols: Columns, unit_of_id: np.ndarray, unit_of_contest: np.ndarray
             ) -> tuple[_Level, _Level]:
    """(the contest level, the division level): sums per (contest, selection), and per (contest, division,
    selection) over the stations composing into each division.

    Tallies of one contest whose stations compose into the same divisions form a *block*. The station rows are
    summed per (block, selection) once (a million stations fall into tens of thousands of blocks); the levels
    sum those sums. A bin is a block (or a (contest, division) pair, sorted) times the widest contest plus the
    selection's rank in its contest, so bins come out in output order and nothing sorts the rows.
    """
    # Long: one pass of bin arithmetic whose intermediate arrays (blocks, bins, slots) are shared by both levels.
    n_ids = np.int64(max(len(comp.ids), 1))
    slots = _slots(comp, station_of_tally)
    key = tally_contest
    for units in slots:
        key = _dense(key) * (n_ids + 1) + units + 1
    block_of_tally = _dense(key)
    rep = np.zeros(int(block_of_tally.max()) + 1 if len(block_of_tally) else 0, np.int64)
    rep[block_of_tally] = np.arange(len(block_of_tally))  # any tally of each block stands for it
    width = np.int64(max(pairs.width, 1))
    rows = {**cols, "stations": _COUNT}
    if _dense_enough(len(rep) * int(width), len(rank)):
        summed = _sums([(gather(block_of_tally, rank) * width + pairs.local, None)], rows, len(rep) * int(width))
        present = np.flatnonzero(summed["stations"].values)
        entry_block, entry_local, entries = present // width, present % width, _taken(summed, present)
    else:  # selections too sparse for dense bins (thousands of write-ins): sum the rows themselves
        entry_block, entry_local, entries = gather(block_of_tally, rank), pairs.local, rows
    block_contest = tally_contest[rep]
    block_units = [units[rep] for units in slots]
    del slots, key

    contest_sums = _sums([(pairs.first[block_contest[entry_block]] + entry_local, None)], entries,
                         len(pairs.contest))
    contest = _Level(code=0, contest=pairs.contest, selection=pairs.selection, kind=pairs.kind,
                     unit=unit_of_contest[pairs.contest], columns=contest_sums)

    pair_keys = [block_contest * n_ids + units for units in block_units]
    divisions = np.concatenate([np.zeros(0, np.int64)] + [k[u >= 0] for k, u in zip(pair_keys, block_units,
                                                                                      strict=True)])
    divisions.sort()
    if len(divisions) > 1:
        divisions = divisions[np.append(True, divisions[1:] != divisions[:-1])]

    def groupings() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for k, units in zip(pair_keys, block_units, strict=True):
            bin_of_block = np.searchsorted(divisions, k) * width  # meaningless where units < 0: not taken
            taking = (units >= 0)[entry_block]
            yield bin_of_block[entry_block] + entry_local, None if taking.all() else taking

    summed = _sums(groupings(), entries, len(divisions) * int(width))
    present = np.flatnonzero(summed["stations"].values)
    pair = divisions[present // width]
    division_contest = pair // n_ids
    cs = pairs.first[division_contest] + present % width
    division = _Level(code=1, contest=division_contest, selection=pairs.selection[cs], kind=pairs.kind[cs],
                      unit=unit_of_id[pair % n_ids], columns=_taken(summed, present))
    return contest, division


def contest_results(sv: StationVotes, methods: Methods, comp: Composition, station_of_tally: np.ndarray,
                    contest_election: pa.Array) -> tuple[SlicedTable, pa.Table]:
    """(contest_results: all three levels, sorted by (contest_id, level, unit_id, selection_id), in slices; the
    contest level as (contest_id, selection_id, votes)).

    ``station_of_tally`` is each current tally's station code in ``comp.ids``; ``contest_election`` the election
    of each ``sv.contests`` entry.
    """
    rank, pairs = sv.rank, sv.pairs
    tally_contest = sv.contest_of_tally.astype(np.int64)
    cols = {"votes": _Column.of(sv.votes), **{c: _Column.of(a) for c, a in zip(t.METHOD_COLUMNS, methods.values,
                                                                                   strict=True)},
            "methods_unknown": _Column.of(methods.unknown)}
    # One unit dictionary for station, division and contest ids; levels sort as contest < division < station.
    # Both are sorted already: a few contests are searched among a million ids, many are sorted with them.
    if len(sv.contests) * _FEW_CONTESTS <= len(comp.ids):
        units, unit_of_id, unit_of_contest = sorted_union(comp.ids, sv.contests)
    else:
        units, unit_codes = sorted_dictionary(pa.chunked_array([comp.ids, sv.contests], type=pa.string()))
        unit_of_id, unit_of_contest = unit_codes[:len(comp.ids)], unit_codes[len(comp.ids):]
    contest, division = _roll_up(pairs, comp, station_of_tally, tally_contest, rank, cols, unit_of_id,
                                 unit_of_contest)
    station_unit = np.where(station_of_tally >= 0, unit_of_id[np.maximum(station_of_tally, 0)], -1).astype(np.int32)
    station = _Level(code=2, contest=sv.contest, selection=sv.selection, kind=sv.kind,
                     unit=gather(station_unit, rank), columns={**cols, "stations": _COUNT})
    top = pa.table({"contest_id": sv.contests.take(pa.array(pairs.contest)),
                    "selection_id": sv.selections.take(pa.array(pairs.selection)),
                    "votes": pa.array(contest.columns["votes"].values, pa.int64())})
    return _assemble([contest, division, station], sv, contest_election, units), top


def _runs(levels: list[_Level]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The output's runs in order, as (level, first row in the level, rows): per contest, its contest rows,
    division rows, then station rows.

    Each level is already ordered by (unit, selection) within a contest (station rows follow the tallies'
    (election, contest, station) order, so each contest's station rows are one run), so the output is a
    concatenation of runs, not a sort of ~13M rows.
    """
    level, starts, lengths, contests = [], [], [], []
    for i, lv in enumerate(levels):
        c = lv.contest
        if len(c):
            bounds = np.flatnonzero(np.r_[True, c[1:] != c[:-1], True])
            level.append(np.full(len(bounds) - 1, i))
            starts.append(bounds[:-1])
            lengths.append(np.diff(bounds))
            contests.append(c[bounds[:-1]])
    if not starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    by_contest = np.argsort(np.concatenate(contests), kind="stable")  # runs are listed level by level
    return (np.concatenate(level)[by_contest], np.concatenate(starts)[by_contest],
            np.concatenate(lengths)[by_contest])


def _scattered(levels: list[_Level], name: str, place: _Place) -> pa.Array:
    """Summed column ``name`` of the levels, in output order."""
    parts = [level.columns[name] for level in levels]
    if all(p is None for p in parts):
        return _null_int64(place.n)
    values = place([0 if p is None else 1 if p.values is None else p.values for p in parts], np.int64)
    if all(p is not None and p.known is None for p in parts):
        return pa.array(values, pa.int64())
    known = place([False if p is None else True if p.known is None else p.known > 0 for p in parts], np.bool_)
    return pa.array(values, pa.int64(), mask=~known)


class _Place:
    """Puts the levels' rows of some of the output's runs (``_runs``: (level, first row in it, rows)) in output
    order: each level's values (or one value for all its rows), run by run into one array, without concatenating
    the levels first.

    Past ``MANY_RUNS`` runs (tens of thousands of contests) a copy per run costs more in Python than one gather
    per level of every row from its place.
    """

    MANY_RUNS = 1 << 16

    def __init__(self, level: np.ndarray, start: np.ndarray, length: np.ndarray) -> None:
        self.level, self.start, self.length = level, start, length
        self.n = int(self.length.sum())
        self.source = None
        if len(self.level) > self.MANY_RUNS:
            ends = np.cumsum(self.length)
            self.source = np.arange(self.n, dtype=np.int64) + np.repeat(self.start - (ends - self.length),
                                                                        self.length)
            self.row_level = np.repeat(self.level, self.length)

    def slices(self, rows: int) -> Iterator[_Place]:
        """The same runs as places of at most ``rows`` rows each (a run longer than that is cut), in order."""
        if self.n <= rows:
            yield self
            return
        level, start, length = [], [], []
        held = 0
        for lv, st, ln in zip(self.level.tolist(), self.start.tolist(), self.length.tolist(), strict=True):
            while ln:
                take = min(ln, rows - held)
                level.append(lv)
                start.append(st)
                length.append(take)
                held, st, ln = held + take, st + take, ln - take
                if held == rows:
                    yield _Place(np.array(level, np.int64), np.array(start, np.int64), np.array(length, np.int64))
                    level, start, length, held = [], [], [], 0
        if held:
            yield _Place(np.array(level, np.int64), np.array(start, np.int64), np.array(length, np.int64))

    def __call__(self, parts: list[np.ndarray | int | bool], dtype: type) -> np.ndarray:
        out = np.empty(self.n, dtype)
        if self.source is not None:
            for i, part in enumerate(parts):
                rows = np.flatnonzero(self.row_level == i)
                out[rows] = part[self.source[rows]] if isinstance(part, np.ndarray) else part
            return out
        at = 0
        for level, start, length in zip(self.level.tolist(), self.start.tolist(), self.length.tolist(), strict=True):
            part = parts[level]
            out[at:at + length] = part[start:start + length] if isinstance(part, np.ndarray) else part
            at += length
        return out


# Rows of contest_results assembled at once: a slice of ~100 MB, where the whole table is 1.3 GB at a million stations.
SLICE_ROWS = 1 << 20


def _assemble(levels: list[_Level], sv: StationVotes, contest_election: pa.Array, units: pa.Array) -> SlicedTable:
    """The contest_results table from its levels, a slice at a time; the slices share their dictionaries."""
    schema = t.SCHEMAS[t.CONTEST_RESULTS]
    elections, election_idx = sorted_dictionary(contest_election)
    level_names = pa.array(sorted(t.LEVELS), pa.string())

    def slices() -> Iterator[pa.Table]:
        for place in _Place(*_runs(levels)).slices(SLICE_ROWS):
            contest = place([lv.contest for lv in levels], np.int32)
            cols = {
                "election_id": dict_column(elections, gather(election_idx, contest)),
                "contest_id": dict_column(sv.contests, contest),
                "selection_id": dict_column(sv.selections, place([lv.selection for lv in levels], np.int32)),
                "selection_kind": dict_column(sv.kinds, place([lv.kind for lv in levels], np.int32)),
                "level": dict_column(level_names, place([lv.code for lv in levels], np.int32)),
                "unit_id": dict_column(units, place([lv.unit for lv in levels], np.int32)),
            }
            del contest
            for name in _SUMMED:
                cols[name] = _scattered(levels, name, place)
            yield pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)

    return SlicedTable(schema, slices())


def station_composition(divisions: pa.Table, cur: CurrentTallies) -> tuple[Composition, np.ndarray]:
    """(what every current tally's station and every polling place composes into, which divisions are polling
    places)."""
    is_station = pc.is_in(divisions["kind"], value_set=pa.array(STATION_KINDS)).to_numpy(zero_copy_only=False) \
        if divisions.num_rows else np.zeros(0, bool)
    return compose(divisions, cur.table["station_id"], division_starts=is_station), is_station


def contest_tables(ex: Extracted, res: Resolution, cur: CurrentTallies, sv: StationVotes,
                   reference: dict[str, pa.Table], turnout: pa.Table, stations: tuple[Composition, np.ndarray]
                   ) -> dict[str, pa.Table]:
    """contests (with each election's default contest), contest_results and contest_summary; ``stations`` is
    ``station_composition``."""
    comp, is_station = stations
    contests = contests_with_defaults(reference[t.CONTESTS], reference[t.ELECTIONS], turnout)
    n_contests = len(sv.contests)
    first = np.full(n_contests, len(sv.contest_of_tally), np.int64)
    np.minimum.at(first, sv.contest_of_tally, np.arange(len(sv.contest_of_tally), dtype=np.int64))
    contest_election = cur.table["election_id"].take(pa.array(first)).combine_chunks() if n_contests \
        else pa.array([], pa.string())
    results, top = contest_results(sv, station_methods(ex, res, cur, sv), comp, comp.starts, contest_election)
    station_flags = np.zeros(len(comp.ids), bool)
    station_flags[comp.division_codes[is_station]] = True
    return {t.CONTESTS: contests, t.CONTEST_RESULTS: results,
            t.CONTEST_SUMMARY: contest_summary(contests, turnout, top, comp, station_flags)}


def declared(ex: Extracted, res: Resolution) -> tuple[pa.Table, pa.Table]:
    """(current ContestDeclared rows, their selections), with trace columns."""
    return current_rows(ex, res, v.CONTEST_DECLARED), current_rows(ex, res, x.CONTEST_SELECTION)
