"""JSON text built a column at a time with Arrow compute, for documents too large to build as Python objects.

Every function returns one JSON text per row (an Arrow string array), written exactly as
``json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)`` writes that row's value: keys in
code-point order, no whitespace, only ``"``, ``\\`` and control characters escaped. So a document assembled
from these pieces has one spelling, and the same tables always give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# What json.dumps escapes when it may write UTF-8 (ensure_ascii=False): the quote, the backslash and U+0000-U+001F.
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'

Field = tuple[str, "pa.Array | str | None"]
# Every text is a large_string (64-bit offsets): the pieces of a million-station document pass 2 GiB together.
TEXT = pa.large_string()


def _lit(text: str) -> pa.Scalar:
    return pa.scalar(text, TEXT)


def _concat(*parts: pa.Array | str, nulls: str = "emit_null") -> pa.Array:
    """Row-wise concatenation of arrays and constants; a null part makes the row null (``nulls="emit_null"``) or
    counts as empty (``nulls="replace"``; never "skip": Arrow 26's "skip" drops a row whose parts are all null)."""
    args = [_lit(p) if isinstance(p, str) else p.cast(TEXT) for p in parts]
    if nulls == "replace":
        return pc.binary_join_element_wise(*args, _lit(""), null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise(*args, _lit(""))


def plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array of plain (large) strings (a dictionary-encoded or chunked column decoded)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not pa.types.is_large_string(values.type):
        values = values.cast(TEXT)
    return values


def string(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON string literals of ``values`` (nulls stay null)."""
    values = plain(values)
    quoted = _concat('"', values, '"')
    special = pc.match_substring_regex(values, _NEEDS_ESCAPE)
    if not pc.any(special).as_py():
        return quoted
    # Rare (names with quotes or line breaks): those values alone are escaped by the json module.
    mask = special.fill_null(False)
    escaped = [json.dumps(v, ensure_ascii=False) for v in values.filter(mask).to_pylist()]
    return pc.replace_with_mask(quoted, mask, pa.array(escaped, TEXT))


def integer(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON numbers of integer ``values`` (nulls stay null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.int64()).cast(TEXT)


def constant(text: str, rows: int) -> pa.Array:
    """The same JSON text on every row."""
    return pa.array(np.full(rows, text, dtype=object), TEXT)


def obj(rows: int, fields: Sequence[Field], *, before: pa.Array | None = None, after: pa.Array | str = "}"
        ) -> pa.Array:
    """JSON objects: ``fields`` are (key, JSON text) in key order; a null text (or None) leaves its key out.

    The first field must be present on every row. ``before`` is written ahead of each object (a separator:
    ``separators``); ``after`` ends it (an array: an object whose last member the caller writes on).
    """
    keys = [k for k, _ in fields]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise ValueError(f"keys must be unique and sorted: {keys}")
    parts: list[pa.Array | str] = [] if before is None else [before]
    for i, (key, value) in enumerate(fields):
        if value is None:
            continue
        head = f'{"{" if i == 0 else ","}"{key}":'
        if isinstance(value, str):
            parts.append(head + value)
        elif value.null_count == 0:
            parts += [head, value]  # joined once, below
        elif i == 0:
            raise ValueError(f"the first field ({key}) must be present on every row")
        else:
            parts.append(_concat(head, value))  # null: no key either
    parts.append(after)
    if not any(isinstance(p, pa.Array) for p in parts):
        return constant("".join(p for p in parts if isinstance(p, str)), rows)
    return _concat(*parts, nulls="replace")


def separators(starts: np.ndarray) -> pa.Array:
    """``,`` ahead of each row but the first of its run (runs beginning at ``starts``, as from ``runs``)."""
    rows = int(starts[-1])
    first = np.zeros(rows, bool)
    first[starts[:-1]] = True
    return pc.if_else(pa.array(first), _lit(""), _lit(","))


def concatenated(values: pa.Array) -> pa.Buffer:
    """The texts of ``values`` one after another, without copying them (an array of texts keeps them so)."""
    values = values.cast(TEXT)
    if values.null_count:
        raise ValueError("a null text has no place in a document")
    if len(values) == 0:
        return pa.py_buffer(b"")
    offsets = np.frombuffer(values.buffers()[1], np.int64)[values.offset:values.offset + len(values) + 1]
    return values.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def text(values: pa.Array | pa.ChunkedArray, language: str) -> pa.Array:
    """NIST ``InternationalizedText`` of one string per row (nulls stay null)."""
    literal = string(values)
    return _concat('{"@type":"ElectionResults.InternationalizedText","Text":[{"@type":"ElectionResults.LanguageString",'
                   '"Content":', literal, f',"Language":{json.dumps(language)}}}]}}')


def runs(*keys: pa.Array) -> np.ndarray:
    """Where each run of equal keys starts in rows sorted by ``keys``, and the row count at the end."""
    n = len(keys[0]) if keys else 0
    if n == 0:
        return np.zeros(1, np.int64)
    change = np.zeros(n, bool)
    change[0] = True
    for key in keys:
        key = plain(key) if pa.types.is_dictionary(key.type) or isinstance(key, pa.ChunkedArray) else key
        differs = pc.not_equal(key.slice(1), key.slice(0, n - 1))
        # A null beside a value differs; two nulls do not.
        both_null = pc.and_(key.slice(1).is_null(), key.slice(0, n - 1).is_null())
        differs = pc.if_else(both_null, False, differs.fill_null(True))
        change[1:] |= differs.to_numpy(zero_copy_only=False)
    return np.append(np.flatnonzero(change), n).astype(np.int64)


def arrays(values: pa.Array, starts: np.ndarray) -> pa.Array:
    """JSON arrays of the runs of ``values`` that begin at ``starts`` (as from ``runs``): one per run."""
    lists = pa.LargeListArray.from_arrays(pa.array(starts, pa.int64()), values.cast(TEXT))
    return _concat("[", pc.binary_join(lists, _lit(",")), "]")


def ranked(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """(code of each row, the distinct values sorted): a row's code is its value's position among the sorted
    values, -1 for null, so sorting or grouping by codes is sorting or grouping by the strings.

    A dictionary-encoded column (the fold's ids, one dictionary per Parquet file) is never decoded: only the
    dictionary entries its rows use are compared (a filtered file still carries every entry of the file).
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    locals_, words = [], []
    for chunk in chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
        indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        used = np.unique(indices[indices >= 0])
        locals_.append(np.where(indices >= 0, np.searchsorted(used, indices), -1))
        words.append(plain(encoded.dictionary.take(pa.array(used, pa.int64()))))
    everything = pa.concat_arrays(words) if words else pa.array([], TEXT)
    values = pc.unique(everything)
    values = values.filter(values.is_valid())
    values = values.take(pc.sort_indices(values))
    position = pc.index_in(everything, value_set=values).fill_null(-1).to_numpy()
    codes, at = [], 0
    for local, word in zip(locals_, words, strict=True):
        remap = np.append(position[at:at + len(word)], -1)
        at += len(word)
        codes.append(remap[local])  # a null (-1) takes the appended -1
    return (np.concatenate(codes) if codes else np.zeros(0, np.int64)), values
