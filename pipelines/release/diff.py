"""What changed in a table between two releases: rows added, changed and removed, matched by the table's key.

Built for the largest table (``station_results``, ~12.5M rows for a million-station election) without a Python
loop over rows: every key and value column of both releases is turned into integer codes with one shared
dictionary (so equal values get equal codes across releases), keys are matched on their codes (packed into one
int64 and binary-searched with numpy, or with Arrow's hash join when they do not pack), and value columns are
compared code by code on the matched rows. Matching codes instead of the columns themselves keeps memory low
and works for column types a hash join cannot carry (lists) or key on (dictionaries).

Either side may be a ``pyarrow.parquet.ParquetFile`` or ``parquet.ParquetParts`` (a table in several files):
columns are then read one at a time as the diff needs
them, so trace columns (36-character event ids on every row) are never loaded and at most the keys and one
column pair are held at once.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.fold.tables import TRACE_COLUMNS
from pipelines.release.parquet import ParquetParts

ADDED = "added"
CHANGED = "changed"
REMOVED = "removed"
# Row-number columns inside the fallback join (the other join columns are named k0, k1, ...).
_OLD_ROW, _NEW_ROW = "__old_row", "__new_row"
# Joins list items into one string so a list column can be dictionary-encoded; a unit separator never
# appears in the election data's text.
_LIST_SEPARATOR = "\x1f"
# Key codes are packed into one int64 below this product of their ranges (headroom left for the arithmetic).
_PACKED_LIMIT = 2**62


Source = pa.Table | pq.ParquetFile | ParquetParts


def _names(src: Source) -> list[str]:
    return src.column_names if isinstance(src, pa.Table) else src.schema_arrow.names


def _rows(src: Source) -> int:
    return src.metadata.num_rows if isinstance(src, pq.ParquetFile) else src.num_rows


def _column(src: Source, name: str) -> pa.ChunkedArray:
    return src.column(name) if isinstance(src, pa.Table) else src.read(columns=[name]).column(0)


def _codes(old: pa.ChunkedArray, new: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Integer codes for two columns, equal exactly when the values are equal (null stays null)."""
    both = pa.chunked_array(old.chunks + new.chunks, type=old.type) if old.type == new.type else None
    if both is None:
        # Differently typed columns (a schema change): compare on their text form.
        both = pa.chunked_array(pc.cast(old, pa.string()).chunks + pc.cast(new, pa.string()).chunks)
    if pa.types.is_list(both.type) or pa.types.is_large_list(both.type):
        text = pc.binary_join(pc.cast(both, pa.list_(pa.string())), _LIST_SEPARATOR)
        # The length tells [] apart from [""], which join to the same text.
        lengths = pc.cast(pc.list_value_length(both), pa.string())
        both = pc.binary_join_element_wise(lengths, text, ":")
    if pa.types.is_dictionary(both.type):
        encoded = both.unify_dictionaries()
    else:
        # Over a chunked array the dictionary grows chunk by chunk, so indices agree across chunks.
        encoded = pc.dictionary_encode(both)
    indices = pa.chunked_array([c.indices for c in encoded.chunks], type=encoded.type.index_type)
    return indices.slice(0, len(old)), indices.slice(len(old))


def _packed(pairs: list[tuple[pa.ChunkedArray, pa.ChunkedArray]]) -> tuple[np.ndarray, np.ndarray] | None:
    """Both sides' key codes packed into one int64 per row, or None when their ranges are too wide."""
    if any(a.null_count or b.null_count for a, b in pairs):
        return None
    sizes = [max(int(pc.max(a).as_py() or 0), int(pc.max(b).as_py() or 0)) + 1 for a, b in pairs]
    if math.prod(sizes) >= _PACKED_LIMIT:
        return None
    sides = []
    for side in (0, 1):
        total = np.zeros(len(pairs[0][side]), dtype=np.int64)
        for codes, size in zip((p[side] for p in pairs), sizes):
            total = total * size + codes.to_numpy().astype(np.int64)
        sides.append(total)
    return sides[0], sides[1]


def _match(old: Source, new: Source, key: list[str]) -> tuple[pa.Array, pa.Array]:
    """Row numbers ``(in old, in new)`` of the keys present in both tables.

    Usually the key codes pack into one int64 and are matched by sorting and binary search (numpy; codes number
    values in the order they first appear, so the old side's unique keys come mostly in order, whatever the
    table's row order, and the sort is quick). Otherwise Arrow's hash join on the codes.
    """
    pairs = [_codes(_column(old, name), _column(new, name)) for name in key]
    packed = _packed(pairs)
    if packed is not None:
        old_keys, new_keys = packed
        order = np.argsort(old_keys, kind="stable")
        ordered = old_keys[order]
        pos = np.searchsorted(ordered, new_keys)
        inside = pos < len(ordered)
        found = np.zeros(len(new_keys), dtype=bool)
        found[inside] = ordered[pos[inside]] == new_keys[inside]
        return pa.array(order[pos[found]]), pa.array(np.flatnonzero(found))
    names = [f"k{i}" for i in range(len(key))]
    left = pa.table({**dict(zip(names, (a for a, _ in pairs))), _OLD_ROW: np.arange(_rows(old))})
    right = pa.table({**dict(zip(names, (b for _, b in pairs))), _NEW_ROW: np.arange(_rows(new))})
    joined = left.join(right, keys=names, join_type="inner")
    return joined.column(_OLD_ROW).combine_chunks(), joined.column(_NEW_ROW).combine_chunks()


def compared_columns(old: Source, new: Source, key: list[str]) -> list[str]:
    """The columns whose difference makes a row "changed": in both tables, neither key nor trace."""
    ignored = set(key) | set(TRACE_COLUMNS)
    in_old = set(_names(old))
    return [c for c in _names(new) if c not in ignored and c in in_old]


def diff_tables(old: Source | None, new: Source, key: list[str]) -> dict[str, int]:
    """Count rows added, changed and removed from ``old`` to ``new``, matching rows by ``key``.

    A row is changed when its key is in both tables and any compared column differs (null equals null).
    Trace columns (``event_id``, ``topic``, ``partition``, ``offset``) are ignored: re-folding the same fact
    from a re-ingested event is not a change. A column present in only one of the tables is ignored too.

    Args:
        old: the table in the previous release (a table or an open Parquet file), or None for the first
            release (every row is added).
        new: the table in this release (a table or an open Parquet file).
        key: the table's key columns (unique in each table).

    Returns:
        ``{"added": n, "changed": n, "removed": n}``.
    """
    if old is None:
        return {ADDED: _rows(new), CHANGED: 0, REMOVED: 0}
    if not set(key) <= set(_names(old)):
        # The table's key changed between releases (a schema change, e.g. a contest column joined the key):
        # rows cannot be matched, so every old row counts as removed and every new one as added.
        return {ADDED: _rows(new), CHANGED: 0, REMOVED: _rows(old)}
    old_idx, new_idx = _match(old, new, key)
    # Keys are unique in each table, so every key not matched was added or removed.
    matched = len(new_idx)
    added, removed = _rows(new) - matched, _rows(old) - matched
    changed = 0
    if matched:
        any_differs: pa.ChunkedArray | None = None
        for name in compared_columns(old, new, key):
            old_codes, new_codes = _codes(_column(old, name), _column(new, name))
            a, b = old_codes.take(old_idx), new_codes.take(new_idx)
            # not_equal is null when either side is null; then the row differs only if exactly one is null.
            column_differs = pc.fill_null(pc.not_equal(a, b), pc.xor(pc.is_null(a), pc.is_null(b)))
            any_differs = column_differs if any_differs is None else pc.or_(any_differs, column_differs)
        if any_differs is not None:
            changed = int(pc.sum(any_differs).as_py() or 0)
    return {ADDED: added, CHANGED: changed, REMOVED: removed}


def diff_releases(old: dict[str, pa.Table] | None, new: dict[str, pa.Table],
                  keys: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """:func:`diff_tables` for every table of a release (a table new in this release counts as all added).

    Args:
        old: the previous release's tables by name, or None for the first release.
        new: this release's tables by name.
        keys: each table's key columns.

    Returns:
        Per table name, ``{"added", "changed", "removed"}`` counts, as in ``manifest.json`` ``changes.tables``.
    """
    return {name: diff_tables((old or {}).get(name), table, list(keys[name])) for name, table in new.items()}
