"""The current tallies and their votes as sorted numpy arrays: what station_results, station_turnout and
contest_results are built from.

Tallies are the volume (a million stations, ~12 selections each), so nothing here loops over vote rows in
Python: the votes stay in numpy arrays from the extraction pass and are ordered with one integer argsort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.build import gather, sorted_dictionary, trace
from pipelines.fold.extract import Extracted
from pipelines.fold.versions import Resolution


@dataclass(frozen=True)
class CurrentTallies:
    """The current StationTally rows, sorted by (election_id, contest_id, station_id)."""

    table: pa.Table  # tally content + trace columns, sorted
    rank_of_row: np.ndarray  # tally buffer row -> position in `table`, or -1 when not current


def current_tallies(ex: Extracted, res: Resolution) -> CurrentTallies:
    """The current tallies, sorted by station_turnout's key, with their trace columns."""
    content = ex.content[v.STATION_TALLY]
    rows = np.flatnonzero(res.current[content["ord"].to_numpy()]) if content.num_rows else np.zeros(0, np.int64)
    # Sorted on the key columns alone, then every column taken once, straight from its chunks (Arrow 26 takes
    # from a chunked column as fast as from one array: a combined copy first would only add a copy).
    columns = {c: content[c] for c in content.column_names}
    at = pa.array(rows, type=pa.int64())
    keys = pa.table({k: columns[k].take(at) for k in t.KEYS[t.STATION_TURNOUT]})
    order = pc.sort_indices(keys, sort_keys=[(k, "ascending") for k in keys.column_names]).to_numpy()
    at = pa.array(rows[order], type=pa.int64())
    table = pa.table({c: col.take(at) for c, col in columns.items()})
    for name, col in trace(ex, table["ord"]).items():
        table = table.append_column(name, col)
    # int32 halves the per-vote index arrays station_results derives from this (tally rows are int32 too).
    rank = np.full(content.num_rows, -1, dtype=np.int32)
    rank[rows[order]] = np.arange(len(rows), dtype=np.int32)
    del rows, order, keys, columns
    table = table.combine_chunks()
    return CurrentTallies(table=table, rank_of_row=rank)


@dataclass
class Pairs:
    """The distinct (contest, selection) pairs of the station rows, sorted, and each row's pair."""

    contest: np.ndarray  # int32 index into StationVotes.contests
    selection: np.ndarray  # int32 index into StationVotes.selections
    kind: np.ndarray  # int32 index into StationVotes.kinds (-1: unknown)
    of_row: np.ndarray  # int32: each station row's pair
    local: np.ndarray  # int32: each station row's selection, as its rank among its contest's selections
    first: np.ndarray  # per contest, its first pair (and one past the last contest's last)
    width: int  # most selections of one contest


@dataclass
class StationVotes:
    """The votes of the current tallies as numpy arrays in station_results order (one entry per row).

    contest_results' station level and every roll-up are built from these, not from the table.
    """

    rank: np.ndarray  # row of CurrentTallies.table
    selection: np.ndarray  # index into `selections`
    votes: np.ndarray
    selections: pa.Array  # sorted distinct selection ids
    contests: pa.Array  # sorted distinct contest ids of the current tallies
    contest_of_tally: np.ndarray  # CurrentTallies row -> index into `contests`
    contest: np.ndarray  # int32 index into `contests` of each row
    kind: np.ndarray  # index into `kinds` (-1: unknown)
    kinds: pa.Array
    pairs: Pairs


def _pairs(contest: np.ndarray, selection: np.ndarray, n_contests: int, n_selections: int) -> Pairs:
    """The (contest, selection) pairs: one hash of 12M integer keys (few distinct), no sort of the rows."""
    n_sel = np.int64(max(n_selections, 1))
    key = contest.astype(np.int64)
    key *= n_sel  # in place: each 12M-entry temporary is 100 MB of fresh pages
    key += selection
    enc = pc.dictionary_encode(pa.array(key))
    del key
    keys = enc.dictionary.to_numpy()
    order = np.argsort(keys)
    rank = np.empty(len(keys), np.int32)
    rank[order] = np.arange(len(keys), dtype=np.int32)
    keys = keys[order]
    of_row = gather(rank, enc.indices.to_numpy())
    del enc, rank
    pair_contest = (keys // n_sel).astype(np.int32)
    first = np.searchsorted(pair_contest, np.arange(n_contests + 1))
    return Pairs(contest=pair_contest, selection=(keys % n_sel).astype(np.int32), kind=np.zeros(0, np.int32),
                 of_row=of_row, local=of_row - gather(first.astype(np.int32), contest), first=first,
                 width=int(np.diff(first).max()) if n_contests else 0)


def _kinds(sv_selections: pa.Array, contests: pa.Array, pairs: Pairs, selections: pa.Table
           ) -> tuple[pa.Array, np.ndarray]:
    """Each (contest, selection) pair's kind: as the contest declares it, else as its id's prefix says
    (docs/contests.md, Identifiers), else null."""
    kinds, _ = sorted_dictionary(pa.chunked_array([pa.array(v.SELECTION_KINDS, pa.string()),
                                                   *selections["kind"].cast(pa.string()).chunks]))
    by_prefix = np.full(len(sv_selections), -1, dtype=np.int32)
    for prefix, kind in SELECTION_PREFIXES.items():
        hit = pc.starts_with(sv_selections, prefix).to_numpy(zero_copy_only=False)
        by_prefix[hit] = kinds.index(kind).as_py()
    out = by_prefix[pairs.selection] if len(pairs.selection) else np.zeros(0, np.int32)
    if selections.num_rows and len(out):
        width = np.int64(max(len(sv_selections), 1))
        dc = pc.index_in(selections["contest_id"], value_set=contests).fill_null(-1).to_numpy(zero_copy_only=False)
        ds = pc.index_in(selections["selection_id"], value_set=sv_selections).fill_null(-1).to_numpy(
            zero_copy_only=False)
        dk = pc.index_in(selections["kind"], value_set=kinds).fill_null(-1).to_numpy(zero_copy_only=False)
        ok = (dc >= 0) & (ds >= 0)
        keys = dc[ok].astype(np.int64) * width + ds[ok]
        order = np.argsort(keys, kind="stable")
        keys, dk = keys[order], dk[ok][order]
        pair_keys = pairs.contest.astype(np.int64) * width + pairs.selection
        pos = np.minimum(np.searchsorted(keys, pair_keys), max(len(keys) - 1, 0))
        hit = (keys[pos] == pair_keys) if len(keys) else np.zeros(len(pair_keys), dtype=bool)
        out = np.where(hit, dk[pos] if len(keys) else out, out).astype(np.int32)
    return kinds, out


# Selection id prefixes and the kind they name (docs/contests.md, Identifiers).
SELECTION_PREFIXES = {"candidate:": "CANDIDATE", "party:": "PARTY", "option:": "OPTION", "write-in:": "WRITE_IN"}


def in_tally_order(rank: np.ndarray, cand_idx: np.ndarray, votes: np.ndarray, n_tallies: int, width: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vote rows ordered by (tally rank, candidate), rows that tie in their order: a stable sort's order.

    Extraction lays each tally's votes out as one run, usually in candidate order; then only the runs are put in
    rank order (a sort of a million run ranks, and a gather) instead of sorting 12M keys.
    """
    if len(rank) < 2:
        return rank, cand_idx, votes
    boundary = rank[1:] != rank[:-1]
    if ((cand_idx[1:] >= cand_idx[:-1]) | boundary).all():
        starts = np.flatnonzero(np.append(True, boundary))
        del boundary
        by_rank = np.argsort(rank[starts])  # unstable: the ranks of distinct runs differ
        run_rank = rank[starts][by_rank]
        if not (run_rank[1:] == run_rank[:-1]).any():  # each tally one run
            if (by_rank[1:] > by_rank[:-1]).all():  # the runs in rank order already: the usual full fold
                return rank, cand_idx, votes
            lengths = np.diff(np.append(starts, len(rank)))[by_rank]
            index_type = np.int32 if len(rank) < np.iinfo(np.int32).max else np.int64
            at = np.repeat((starts[by_rank] - np.cumsum(lengths) + lengths).astype(index_type), lengths)
            at += np.arange(len(rank), dtype=index_type)
            return np.repeat(run_rank, lengths), gather(cand_idx, at), gather(votes, at)
    # A tally's votes out of candidate order, or in several runs: one stable sort of (rank, candidate) keys.
    key_type = np.int32 if n_tallies * max(width, 1) < np.iinfo(np.int32).max else np.int64
    order = np.argsort(rank.astype(key_type) * key_type(max(width, 1)) + cand_idx, kind="stable")
    return rank[order], cand_idx[order], votes[order]


def station_votes(ex: Extracted, cur: CurrentTallies, selections: pa.Table) -> StationVotes:
    """Order the current tallies' votes by (tally, selection) and encode their selection ids and kinds."""
    # ~12 entries per tally: keep every per-vote array int32 where it fits, and drop each one as soon as
    # it is used, so only a few 12M-entry temporaries are alive at once.
    tally_row, cand_code, votes = ex.votes.numpy()
    rank = gather(cur.rank_of_row, tally_row)
    del tally_row
    keep = rank >= 0
    if not keep.all():
        rank, cand_code, votes = rank[keep], cand_code[keep], votes[keep]
    del keep

    cand_ids = pa.array(ex.votes.candidate_ids(), type=pa.string())
    used = np.bincount(cand_code, minlength=len(cand_ids)) > 0
    cand_dict, _ = sorted_dictionary(cand_ids.filter(pa.array(used)))
    cand_index = pc.index_in(cand_ids, value_set=cand_dict).fill_null(-1).to_numpy(zero_copy_only=False)
    cand_idx = gather(cand_index.astype(np.int32, copy=False), cand_code)
    del cand_code
    rank, cand_idx, votes = in_tally_order(rank, cand_idx, votes, len(cur.rank_of_row), len(cand_dict))
    contests, contest_of_tally = sorted_dictionary(cur.table["contest_id"])
    contest = gather(contest_of_tally, rank)
    pairs = _pairs(contest, cand_idx, len(contests), len(cand_dict))
    # Kinds are a property of (contest, selection): decided per pair, then spread over the rows.
    kinds, pairs.kind = _kinds(cand_dict, contests, pairs, selections)
    kind = gather(pairs.kind, pairs.of_row)
    return StationVotes(rank=rank, selection=cand_idx, votes=votes, selections=cand_dict, contests=contests,
                        contest_of_tally=contest_of_tally, contest=contest, kind=kind, kinds=kinds, pairs=pairs)
