"""Which divisions each station composes into: its ``parent_id`` chain and every ``member_of`` (and theirs).

A division's ``municipality_id`` counts as one more ``member_of``: it is how v1 declarations say which
municipality a polling station (whose parent is its constituency) belongs to.

DivisionDeclared v2 lets a division belong to several districts besides its parent (a precinct is in a county
and in a congressional district), so the roll-up follows a graph, not a tree. The closure is computed with
Arrow joins over integer codes, one join per level of depth, so a million stations cost a few joins rather
than a Python walk per station; a cycle in the declarations ends the walk instead of looping.
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

    def code_of(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Codes of ``values`` in ``ids`` (-1 where a value is null or unknown)."""
        return pc.index_in(values, value_set=self.ids).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _edges(divisions: pa.Table, ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(child, up) codes of every parent_id, municipality_id and member_of link."""
    child = divisions["division_id"].combine_chunks()
    members = divisions["member_of"].combine_chunks()
    kids, ups = [child.take(pc.list_parent_indices(members))], [pc.list_flatten(members).cast(pa.string())]
    for column in ("parent_id", "municipality_id"):
        up = divisions[column].combine_chunks()
        kids.append(child.filter(up.is_valid()))
        ups.append(up.drop_null())
    kids, ups = pa.concat_arrays(kids), pa.concat_arrays(ups)
    code = lambda a: pc.index_in(a, value_set=ids).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)  # noqa: E731
    c, u = code(kids), code(ups)
    ok = (c >= 0) & (u >= 0) & (c != u)
    return c[ok], u[ok]


def compose(divisions: pa.Table, starts: pa.Array | pa.ChunkedArray) -> Composition:
    """Every division each of ``starts`` composes into (transitively), from the current divisions table."""
    pool = pa.chunked_array([divisions["division_id"].combine_chunks(), divisions["parent_id"].combine_chunks(),
                             divisions["municipality_id"].combine_chunks(),
                             pc.list_flatten(divisions["member_of"].combine_chunks()).cast(pa.string()),
                             *(starts.chunks if isinstance(starts, pa.ChunkedArray) else [starts])],
                            type=pa.string())
    ids, _ = sorted_dictionary(pool)
    child, up = _edges(divisions, ids)
    edges = pa.table({"d": pa.array(child), "up": pa.array(up)})
    n = np.int64(max(len(ids), 1))
    start_codes = np.unique(pc.index_in(starts, value_set=ids).drop_null().to_numpy(zero_copy_only=False)
                            .astype(np.int64))
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
    order = np.lexsort((d, s))
    return Composition(ids=ids, start=s[order], division=d[order])
