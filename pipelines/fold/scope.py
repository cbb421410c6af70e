"""The part of the state a delta of tallies can change, and the extraction of that part alone.

On election night almost every publish adds tallies and nothing else: new StationTally events, corrections of
earlier ones (``supersedes``), the same record delivered again. Such a delta changes the rows of the contests its
tallies are in and nothing of any other contest, *if* the contests are cut along every line the fold joins
tallies on. The scope is the smallest set of contests, holding the delta's, that is closed under those lines:

- a municipality (municipality_results sums a municipality's tallies over all its contests);
- a message key and an event id (versions and re-deliveries: ``versions.resolve``);
- a correction and the tally it supersedes.

Not a station: the only table that joins a station's contests is national_summary (one contest's tally per
station, ``summary.primary_tallies``), which the caller folds again over the whole station_turnout. An election
whose contests span municipalities (a regional list, a national referendum at every station) has one scope, the
whole of it.

Folding every reference, observation and news event with the scope's tallies alone (``restrict``) gives, for the
scope, the rows a fold of everything gives (``SCOPED_BY``); every row outside the scope keeps its value. The
test that holds this module to it compares both with full folds on random histories and deltas
(``tests/unit/test_fold_scope.py``).

A delta of anything else (a Retraction, a reference, observation or news event, a tally correcting one of
those, a tally that a Retraction in the log names) has no scope: ``tally_scope`` returns None and the caller
folds in full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.build import take_chunked
from pipelines.fold.contest_results import STATION_KINDS
from pipelines.fold.extract import Extracted, Votes

# The column by which each table's rows belong to a scope: the contest for the tables of contests, the
# municipality for municipality_results, the event for the history tables. Tables not named here do not change
# with a delta of tallies, except national_summary, which sums over every station.
SCOPED_BY: dict[str, str] = {
    t.STATION_RESULTS: "contest_id", t.STATION_TURNOUT: "contest_id", t.CONTESTS: "contest_id",
    t.CONTEST_RESULTS: "contest_id", t.CONTEST_SUMMARY: "contest_id", t.WITHHELD: "contest_id",
    t.MUNICIPALITY_RESULTS: "municipality_id", t.EVENTS: "event_id", t.NONCURRENT_EVENTS: "event_id",
    t.CORRECTIONS: "correction_event_id",
}
UNSCOPED: frozenset[str] = frozenset({t.NATIONAL_SUMMARY})


@dataclass(frozen=True)
class Scope:
    """What a delta of tallies can change: its contests, their municipalities, their tallies' event ids."""

    contests: pa.Array  # string, distinct
    municipalities: pa.Array  # string, distinct, no null
    event_ids: pa.Array  # string, distinct: every tally event (any version, any copy) of the contests
    tally_rows: np.ndarray  # bool per row of the extraction's StationTally buffer: in the scope
    share: float  # the scope's tallies over all tallies (0 when there are none)

    def values(self, table: str) -> pa.Array:
        """The values of ``SCOPED_BY[table]`` that belong to the scope."""
        column = SCOPED_BY[table]
        return self.municipalities if column == "municipality_id" else \
            self.event_ids if column in ("event_id", "correction_event_id") else self.contests


@dataclass(frozen=True)
class _Line:
    """One column that joins the tallies sharing a value (a null joins nothing when ``null_joins`` is false: a
    tally without a municipality is in no municipality's sum).

    ``values`` has a row per tally, or (``at`` given) is an envelope column and ``at`` each tally's row of it: the
    envelope's keys and event ids are looked up where they are, never copied out for a million tallies (taking
    them cost 1.5 s of a scoped publish at a million stations, most of it fresh memory's page faults).
    """

    values: pa.Array | pa.ChunkedArray
    null_joins: bool = True
    at: np.ndarray | None = None

    def spread(self, rows: np.ndarray) -> np.ndarray:
        """Every tally sharing a value with one of ``rows`` (a flag per tally)."""
        fresh = self.values.filter(pa.array(rows)) if self.at is None else take_chunked(self.values, self.at[rows])
        shared = pc.unique(fresh)
        if not self.null_joins:
            shared = shared.drop_null()
        # A value set, not codes of every row: a delta's scope has a few thousand values, and hashing a million
        # tallies' ids to codes took most of a scoped publish's fixed cost.
        hit = _flags(pc.is_in(self.values, value_set=shared, skip_nulls=not self.null_joins))
        return hit if self.at is None else hit[self.at]


def _flags(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as numpy (null: False)."""
    chunks = mask.chunks if isinstance(mask, pa.ChunkedArray) else [mask]
    if not chunks:
        return np.zeros(0, bool)
    return np.concatenate([c.fill_null(False).to_numpy(zero_copy_only=False) for c in chunks]).astype(bool)


def _valid(values: pa.ChunkedArray) -> np.ndarray:
    """Whether each value is not null. A chunk all null or none null is told by its null count alone: its
    validity bitmap is not read (on a mapped checkpoint, each chunk's bitmap read maps a page cache folio of up to
    2 MB in: the envelope's hundreds of chunks made a barely-set column cost its whole file's pages)."""
    parts = [np.zeros(len(c), bool) if c.null_count == len(c) else np.ones(len(c), bool) if c.null_count == 0
             else c.is_valid().to_numpy(zero_copy_only=False) for c in values.chunks]
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def _nothing() -> None:
    return None


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


@dataclass(frozen=True)
class _Tallies:
    """The StationTally buffer's rows as the closure sees them."""

    ords: np.ndarray  # envelope row of each tally
    contest: _Line
    lines: list[_Line]  # municipality, key, event id
    pairs: np.ndarray  # (correction, corrected) tally rows, shape (k, 2)


def _tallies(ex: Extracted, read: Callable[[], None]) -> _Tallies | None:
    """The tallies' lines and correction pairs; None when a tally corrects an event that is not a tally (``read``
    told after each column read)."""
    env, content = ex.envelope, ex.content[v.STATION_TALLY]
    ords = content["ord"].to_numpy()
    read()
    row_of_ord = np.full(env.num_rows, -1, np.int64)
    row_of_ord[ords] = np.arange(len(ords))
    supersedes = env["supersedes_event_id"]
    correcting = np.flatnonzero(_valid(supersedes)[ords]) if len(ords) else np.zeros(0, np.int64)
    read()
    pairs = np.zeros((0, 2), np.int64)
    if len(correcting):
        targets = take_chunked(supersedes, ords[correcting])
        is_target = pc.is_in(env["event_id"], value_set=pc.unique(targets))
        target_ords = np.flatnonzero(is_target.to_numpy(zero_copy_only=False))
        if (row_of_ord[target_ords] < 0).any():
            return None  # a tally corrects a reference or other event: reference tables change
        named = env["event_id"].take(pa.array(target_ords, pa.int64()))
        # Every copy of a target: pair each correction with each tally row carrying the id it names.
        left = pa.table({"c": pa.array(correcting, pa.int64()), "id": targets})
        right = pa.table({"r": pa.array(row_of_ord[target_ords], pa.int64()), "id": named})
        joined = left.join(right, keys="id", join_type="inner")
        pairs = np.column_stack([joined["c"].to_numpy(), joined["r"].to_numpy()]).astype(np.int64)
    lines = [_Line(content["municipality_id"], null_joins=False), _Line(env["key"], at=ords),
             _Line(env["event_id"], at=ords)]
    return _Tallies(ords, _Line(content["contest_id"]), lines, pairs)


def _close(tallies: _Tallies, start: np.ndarray, read: Callable[[], None]) -> np.ndarray:
    """The tally rows of the smallest set of contests holding ``start``'s that no line crosses (``read`` told
    after each line's lookup)."""
    rows = start
    spread = [np.zeros(len(start), bool) for _ in tallies.lines]  # rows whose values a line has spread already
    while True:
        grown = rows.copy()
        for line, done in zip(tallies.lines, spread, strict=True):
            fresh = grown & ~done
            if fresh.any():  # only the values of rows this line has not seen: each value is looked up once
                grown |= line.spread(fresh)
                done |= grown  # the rows it added share a value with ``fresh``: nothing more to look up
                read()
        if len(tallies.pairs):
            linked = grown[tallies.pairs[:, 0]] | grown[tallies.pairs[:, 1]]
            grown[tallies.pairs[linked].ravel()] = True
        if grown.any():
            grown = tallies.contest.spread(grown)
        if (grown == rows).all():
            return rows
        rows = grown


def tally_scope(ex: Extracted, new: np.ndarray, read: Callable[[], None] = _nothing) -> Scope | None:
    """The scope of the delta ``new`` (a flag per envelope row: read since the last release) in ``ex``, the
    extraction of everything read; None when the delta is not tallies alone (fold in full). ``read`` is told
    after each step that read columns of ``ex`` (a memory-mapped extraction's caller may let go of their
    pages)."""
    env = ex.envelope
    types = env["record_type"].filter(pa.array(new))
    if len(types) and pc.any(pc.not_equal(types, v.STATION_TALLY)).as_py():
        return None
    tallies = _tallies(ex, read)
    read()
    if tallies is None:
        return None
    is_new = new[tallies.ords]
    retractions = ex.content[v.RETRACTION]
    if retractions.num_rows and is_new.any():
        named = take_chunked(env["event_id"], tallies.ords[is_new])
        if pc.any(pc.is_in(retractions["target_event_id"], value_set=named)).as_py():
            return None  # a Retraction read before its target: the target's arrival changes its row
    rows = _close(tallies, is_new, read)
    content = ex.content[v.STATION_TALLY]
    at = pa.array(np.flatnonzero(rows), pa.int64())
    municipalities = pc.unique(content["municipality_id"].take(at)).drop_null()
    return Scope(contests=pc.unique(content["contest_id"].take(at)), municipalities=municipalities,
                 event_ids=pc.unique(take_chunked(env["event_id"], tallies.ords[rows])),
                 tally_rows=rows, share=float(rows.mean()) if len(rows) else 0.0)


def _links(divisions: pa.Table, targets: pa.Array) -> np.ndarray:
    """Whether each division names one of ``targets`` as its parent, municipality or a division it is a member
    of."""
    hit = pc.or_(pc.is_in(divisions["parent_id"], value_set=targets),
                 pc.is_in(divisions["municipality_id"], value_set=targets)).fill_null(False)
    members = divisions["member_of"]
    flat = pc.list_flatten(members)
    if len(flat):
        member_hit = pc.is_in(flat, value_set=targets).fill_null(False)
        rows = pc.list_parent_indices(members)
        hit = pc.or_(hit, pa.array(np.bincount(np.asarray(rows), weights=np.asarray(member_hit, dtype=float),
                                               minlength=divisions.num_rows) > 0))
    return np.asarray(hit.combine_chunks() if isinstance(hit, pa.ChunkedArray) else hit, dtype=bool)


def _unneeded_places(ex: Extracted, scope: Scope) -> np.ndarray:
    """The DivisionDeclared rows of the polling places the scope's tables do not read: a polling place counts only
    in the contest_results of its own tallies and in the stations expected of the districts it composes into
    (``contest_summary``). A million polling places are most of the reference events; a scope needs a few of
    them. Decided per division id, over every version; nothing is dropped when a division composes into a
    polling place."""
    divisions = ex.content[v.DIVISION_DECLARED]
    is_place = np.asarray(pc.is_in(divisions["kind"], value_set=pa.array(STATION_KINDS)).fill_null(False), bool)
    if not is_place.any():
        return is_place
    ids = divisions["division_id"]
    place_ids = ids.filter(pa.array(is_place))
    # A division id declared as a polling place and as anything else, or a division inside a polling place: keep
    # every polling place (the composition below them is not a polling place's). The million place ids are
    # looked up in the few other ids and named parents, not the other way round (a hash set of a million ids).
    named = [ids.filter(pa.array(~is_place)), divisions["parent_id"], divisions["municipality_id"],
             pc.list_flatten(divisions["member_of"])]
    # Each column's distinct values first: the parents repeat across a million rows, and copying two million
    # strings into one array to find them took longer than the rest of this function.
    named = pc.unique(pa.concat_arrays([pc.unique(c).cast(pa.string()) for c in named])).drop_null()
    if pc.any(pc.is_in(place_ids, value_set=named)).as_py():
        return np.zeros(len(is_place), bool)
    contests = ex.content[v.CONTEST_DECLARED]
    districts = contests.filter(pc.is_in(contests["contest_id"], value_set=scope.contests))["district_id"]
    inside = pc.unique(districts.drop_null()).cast(pa.string())
    areas = divisions.filter(pa.array(~is_place))
    while True:  # the districts and every division that composes into them
        grown = pc.unique(pa.chunked_array([inside, areas["division_id"].filter(pa.array(_links(areas, inside)))],
                                           pa.string()))
        if len(grown) == len(inside):
            break
        inside = grown
    tallies = ex.content[v.STATION_TALLY]
    stations = pc.unique(tallies["station_id"].filter(pa.array(scope.tally_rows)))
    needed = pc.unique(ids.filter(pa.array(is_place & (_links(divisions, inside)
                                                        | np.asarray(pc.is_in(ids, value_set=stations), bool)))))
    return is_place & ~np.asarray(pc.is_in(ids, value_set=needed), bool)


def _filtered(table: pa.Table, mask: pa.Array, read: Callable[[], None]) -> pa.Table:
    """``table.filter(mask)`` a column at a time, ``read`` told after each."""
    columns = []
    for column in table.columns:
        columns.append(column.filter(mask))
        read()
    return pa.table(columns, schema=table.schema)


def restrict(ex: Extracted, scope: Scope, read: Callable[[], None] = _nothing) -> Extracted:
    """``ex`` without the tallies outside ``scope`` and the polling places it does not read
    (``_unneeded_places``): every other event, with the ordinals and tally rows renumbered as if the extraction
    had read only these. ``read`` is told each time a part of ``ex`` has been read for the last time (a memory-mapped
    extraction's caller may let go of its pages)."""
    tally_ords = ex.content[v.STATION_TALLY]["ord"].to_numpy()
    keep = np.ones(ex.envelope.num_rows, bool)
    keep[tally_ords[~scope.tally_rows]] = False
    keep[ex.content[v.DIVISION_DECLARED]["ord"].to_numpy()[_unneeded_places(ex, scope)]] = False
    read()
    new_ord = np.cumsum(keep) - 1

    def kept(table: pa.Table) -> pa.Table:
        ords = table["ord"].to_numpy()
        mask = keep[ords]
        if mask.all():  # most reference tables: renumbered, not copied
            return table.set_column(0, "ord", pa.array(new_ord[ords], pa.int64()))
        out = _filtered(table, pa.array(mask), read)
        return out.set_column(0, "ord", pa.array(new_ord[ords[mask]], pa.int64()))

    rows, codes, votes = ex.votes.numpy()
    new_row = np.cumsum(scope.tally_rows) - 1
    mine = scope.tally_rows[rows] if len(rows) else np.zeros(0, bool)
    candidates = ex.votes.candidate_ids()
    sub_votes = Votes.from_tables(
        pa.table([pa.array(new_row[rows[mine]].astype(np.int32)), pa.array(codes[mine]), pa.array(votes[mine])],
                 schema=pa.schema([("tally_row", pa.int32()), ("candidate_code", pa.int32()),
                                   ("votes", pa.int64())])),
        pa.table({"candidate_id": pa.array(candidates, pa.string())}))
    return Extracted(envelope=_filtered(ex.envelope, pa.array(keep), read),
                     content={name: kept(table) for name, table in ex.content.items()},
                     mentions=kept(ex.mentions), votes=sub_votes)


def in_scope(table: str, rows: pa.Table, scope: Scope) -> pa.Array:
    """Whether each row of ``rows`` (of table ``table``) belongs to the scope: its rows come from the scoped fold,
    the others from the last release."""
    column = rows[SCOPED_BY[table]]
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    mask = pc.is_in(column, value_set=scope.values(table))
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask
