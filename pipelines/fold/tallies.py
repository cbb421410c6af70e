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
from pipelines.fold.build import sorted_dictionary, trace
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
    # Sorted on the key columns alone, then every column taken once, from one array each (Arrow takes strings
    # from a chunked column ~25x slower).
    columns = {c: content[c].combine_chunks() for c in content.column_names}
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
    enc = pc.dictionary_encode(pa.array(contest.astype(np.int64) * n_sel + selection))
    keys = enc.dictionary.to_numpy()
    order = np.argsort(keys)
    rank = np.empty(len(keys), np.int32)
    rank[order] = np.arange(len(keys), dtype=np.int32)
    keys = keys[order]
    of_row = rank[enc.indices.to_numpy()]
    del enc, rank
    pair_contest = (keys // n_sel).astype(np.int32)
    first = np.searchsorted(pair_contest, np.arange(n_contests + 1))
    return Pairs(contest=pair_contest, selection=(keys % n_sel).astype(np.int32), kind=np.zeros(0, np.int32),
                 of_row=of_row, local=of_row - first[contest].astype(np.int32), first=first,
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


def station_votes(ex: Extracted, cur: CurrentTallies, selections: pa.Table) -> StationVotes:
    """Order the current tallies' votes by (tally, selection) and encode their selection ids and kinds."""
    # ~12 entries per tally: keep every per-vote array int32 where it fits, and drop each one as soon as
    # it is used, so only a few 12M-entry temporaries are alive at once.
    tally_row, cand_code, votes = ex.votes.numpy()
    rank = cur.rank_of_row[tally_row] if len(tally_row) else np.zeros(0, np.int32)
    del tally_row
    keep = rank >= 0
    if not keep.all():
        rank, cand_code, votes = rank[keep], cand_code[keep], votes[keep]
    del keep

    cand_ids = pa.array(ex.votes.candidate_ids(), type=pa.string())
    used = np.bincount(cand_code, minlength=len(cand_ids)) > 0
    cand_dict, _ = sorted_dictionary(cand_ids.filter(pa.array(used)))
    cand_index = pc.index_in(cand_ids, value_set=cand_dict).fill_null(-1).to_numpy(zero_copy_only=False)
    cand_idx = cand_index[cand_code].astype(np.int32, copy=False)
    del cand_code
    # One integer sort orders rows by (tally, candidate): tallies are already sorted, ranks follow.
    width = max(len(cand_dict), 1)
    key_type = np.int32 if len(cur.rank_of_row) * width < np.iinfo(np.int32).max else np.int64
    key = rank.astype(key_type) * key_type(width) + cand_idx
    if len(key) > 1 and not (key[1:] >= key[:-1]).all():  # rows usually arrive in key order already
        order = np.argsort(key, kind="stable")
        del key
        rank, cand_idx, votes = rank[order], cand_idx[order], votes[order]
        del order
    else:
        del key
    contests, contest_of_tally = sorted_dictionary(cur.table["contest_id"])
    contest = contest_of_tally[rank] if len(rank) else np.zeros(0, np.int32)
    pairs = _pairs(contest, cand_idx, len(contests), len(cand_dict))
    # Kinds are a property of (contest, selection): decided per pair, then spread over the rows.
    kinds, pairs.kind = _kinds(cand_dict, contests, pairs, selections)
    kind = pairs.kind[pairs.of_row] if len(pairs.of_row) else np.zeros(0, np.int32)
    return StationVotes(rank=rank, selection=cand_idx, votes=votes, selections=cand_dict, contests=contests,
                        contest_of_tally=contest_of_tally, contest=contest, kind=kind, kinds=kinds, pairs=pairs)
