"""Which divisions each station composes into: its ``parent_id`` chain and every ``member_of`` (and theirs).

A division's ``municipality_id`` counts as one more ``member_of``: it is how v1 declarations say which
municipality a polling station (whose parent is its constituency) belongs to.

DivisionDeclared v2 lets a division belong to several districts besides its parent (a precinct is in a county
and in a congressional district), so the roll-up follows a graph, not a tree. Only the divisions something
belongs to (municipalities, constituencies, regions: tens of thousands) are walked, with Arrow joins over integer
codes, one join per level of depth; a cycle in the declarations ends the walk instead of looping. A division
nothing belongs to (a polling station: a million of them) then composes into its own links and everything those
reach, which is a repeat and a gather in numpy rather than a walk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.fold.build import sorted_dictionary


@dataclass(frozen=True)
class Composition:
    """Distinct (start, division) pairs, a division never paired with itself, sorted by (start, division).

    Codes index ``ids`` (sorted): every declared division, every division named as a parent or member_of,
    and every start.
    """

    ids: pa.Array
    start: np.ndarray  # int64 codes
    division: np.ndarray  # int64 codes
    starts: np.ndarray  # int64 code of each start given to ``compose`` (-1 where null)
    division_codes: np.ndarray  # int64 code of each row of the divisions table

    def start_dictionary(self) -> tuple[pa.Array, np.ndarray]:
        """``build.sorted_dictionary`` of the starts given to ``compose``: (the distinct ones, sorted; each start's
        index in them, -1 where null, int32), read off their codes in the sorted ``ids`` instead of sorting them."""
        given = self.starts >= 0
        present = np.zeros(len(self.ids), bool)
        present[self.starts[given]] = True
        index = np.cumsum(present, dtype=np.int64) - 1
        return self.ids.filter(pa.array(present)), np.where(given, index[np.maximum(self.starts, 0)], -1).astype(
            np.int32)

    def code_of(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Codes of ``values`` in ``ids`` (-1 where a value is null or unknown)."""
        if len(values) * _FEW >= len(self.ids):
            return pc.index_in(values, value_set=self.ids).fill_null(-1).to_numpy(zero_copy_only=False).astype(
                np.int64)
        # A few values (contest districts) among a million ids: look every id up among the values, rather than
        # build a hash table of every id for a few lookups.
        distinct = pc.unique(values)
        found = pc.index_in(self.ids, value_set=distinct)
        code_of_distinct = np.full(len(distinct) + 1, -1, np.int64)  # the last entry: for values not found
        code_of_distinct[found.drop_null().to_numpy()] = np.flatnonzero(found.is_valid().to_numpy(
            zero_copy_only=False))  # ids are distinct: one id per value at most
        at = pc.index_in(values, value_set=distinct).fill_null(len(distinct))
        return code_of_distinct[at.to_numpy(zero_copy_only=False)]


# ``code_of`` hashes the values instead of the ids when they are fewer than one in this many ids.
_FEW = 8


def _distinct(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(distinct values, index of each value in them, -1 for null): a parent or municipality is named by
    thousands of divisions, so only the distinct names go into the sorted dictionary."""
    encoded = pc.dictionary_encode(values)
    return encoded.dictionary, encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _edges(divisions: pa.Table, codes: dict[str, np.ndarray], members: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """(child, up) codes of every parent_id, municipality_id and member_of link."""
    child = codes["division_id"]
    kids = [child[pc.list_parent_indices(members).to_numpy(zero_copy_only=False)]]
    ups = [codes["member_of"]]
    for column in ("parent_id", "municipality_id"):
        kids.append(child)
        ups.append(codes[column])
    c, u = np.concatenate(kids), np.concatenate(ups)
    ok = (c >= 0) & (u >= 0) & (c != u)
    return c[ok], u[ok]


def _walk(child: np.ndarray, up: np.ndarray, start_codes: np.ndarray, n: np.int64) -> tuple[np.ndarray, np.ndarray]:
    """(start, division) pairs of everything each of ``start_codes`` reaches, unordered."""
    edges = pa.table({"d": pa.array(child), "up": pa.array(up)})
    frontier = pa.table({"s": pa.array(start_codes), "d": pa.array(start_codes)})
    seen = start_codes * n + start_codes  # the starts themselves: never their own ancestors
    found_s, found_d = [], []
    while frontier.num_rows:
        step = frontier.join(edges, keys="d", join_type="inner")
        s = step["s"].to_numpy().astype(np.int64) if step.num_rows else np.zeros(0, np.int64)
        d = step["up"].to_numpy().astype(np.int64) if step.num_rows else np.zeros(0, np.int64)
        keys, first = np.unique(s * n + d, return_index=True)
        new = ~np.isin(keys, seen)
        s, d, keys = s[first][new], d[first][new], keys[new]
        seen = np.union1d(seen, keys)
        found_s.append(s)
        found_d.append(d)
        frontier = pa.table({"s": pa.array(s), "d": pa.array(d)})
    s = np.concatenate(found_s) if found_s else np.zeros(0, np.int64)
    d = np.concatenate(found_d) if found_d else np.zeros(0, np.int64)
    return s, d


def _through(child: np.ndarray, up: np.ndarray, is_leaf: np.ndarray, inner_s: np.ndarray, inner_d: np.ndarray,
             n_ids: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, division) pairs of the leaves: each link, and everything the linked division reaches.

    ``inner_s`` / ``inner_d``: what every linked-to division reaches, sorted by start. A leaf is linked to by
    nothing, so it is never among what it reaches.
    """
    own = is_leaf[child]
    s, u = child[own], up[own]
    ptr = np.searchsorted(inner_s, np.arange(n_ids + 1, dtype=np.int64))
    counts = ptr[u + 1] - ptr[u]
    total = int(counts.sum())
    # Row i of the expansion is the (i - first row of its link)-th division its link's division reaches.
    ends = np.cumsum(counts)
    at = np.arange(total, dtype=np.int64) + np.repeat(ptr[u] - (ends - counts), counts)
    return np.concatenate([s, np.repeat(s, counts)]), np.concatenate([u, inner_d[at]])


def compose(divisions: pa.Table, starts: pa.Array | pa.ChunkedArray, division_starts: np.ndarray | None = None
            ) -> Composition:
    """Every division each of ``starts`` composes into (transitively), from the current divisions table.

    ``division_starts`` marks rows of ``divisions`` whose division is a start too (without a copy of their ids).
    """
    # Long: one encoding of every id in play feeds the edges, the walk and the leaves, which share its codes.
    members = divisions["member_of"].combine_chunks()
    if isinstance(members, pa.ChunkedArray):  # a table without rows
        members = pa.array([], members.type)
    named = {"parent_id": _distinct(divisions["parent_id"].combine_chunks()),
             "municipality_id": _distinct(divisions["municipality_id"].combine_chunks()),
             "member_of": _distinct(pc.list_flatten(members).cast(pa.string()))}
    parts = [divisions["division_id"].combine_chunks(), *(d for d, _ in named.values())]
    start_chunks = starts.chunks if isinstance(starts, pa.ChunkedArray) else [starts]
    # One dictionary for every id in play: its codes are the edges' and the starts' codes (no lookups).
    ids, pool_codes = sorted_dictionary(pa.chunked_array([*parts, *start_chunks], type=pa.string()))
    pool_codes = pool_codes.astype(np.int64)
    bounds = np.cumsum([0, *(len(p) for p in parts)])
    codes = {"division_id": pool_codes[:bounds[1]]}
    for (name, (_, at)), a, b in zip(named.items(), bounds[1:-1], bounds[2:], strict=True):
        codes[name] = np.where(at >= 0, pool_codes[a:b][np.maximum(at, 0)], -1) if b > a else at
    start_of_input = pool_codes[bounds[-1]:]
    child, up = _edges(divisions, codes, members)
    n_ids = len(ids)
    n = np.int64(max(n_ids, 1))
    given = [start_of_input[start_of_input >= 0]]
    if division_starts is not None:
        given.append(codes["division_id"][division_starts])
    start_codes = np.concatenate(given)
    # Divisions something belongs to are walked; the rest (the leaves) reach what their links reach.
    linked = np.zeros(n_ids, dtype=bool)
    linked[up] = True
    among = linked[child]  # the walk never leaves the linked divisions: their links are all it needs
    inner_s, inner_d = _walk(child[among], up[among], np.flatnonzero(linked).astype(np.int64), n)
    order = np.lexsort((inner_d, inner_s))
    inner_s, inner_d = inner_s[order], inner_d[order]
    is_leaf = np.zeros(n_ids, dtype=bool)
    is_leaf[start_codes] = True
    wanted_inner = is_leaf & linked  # starts something belongs to: taken from the walk as they are
    is_leaf &= ~linked
    leaf_s, leaf_d = _through(child, up, is_leaf, inner_s, inner_d, n_ids)
    keep = wanted_inner[inner_s]
    keys = np.concatenate([inner_s[keep] * n + inner_d[keep], leaf_s * n + leaf_d])
    keys.sort()
    if len(keys) > 1:  # a leaf reaches a division through two links (its constituency's and municipality's country)
        keys = keys[np.append(True, keys[1:] != keys[:-1])]
    return Composition(ids=ids, start=keys // n, division=keys % n, starts=start_of_input,
                       division_codes=codes["division_id"])
