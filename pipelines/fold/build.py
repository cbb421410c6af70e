"""Shared steps of the table builders, and the history and reference tables.

History (``events``, ``corrections``) keeps every version; the reference tables keep the current one.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.extract import CONTEST_SELECTION, Extracted
from pipelines.fold.ranks import dense_rank
from pipelines.fold.versions import Resolution


def finish(name: str, columns: dict[str, pa.Array | pa.ChunkedArray | list], *, presorted: bool = False,
           order: np.ndarray | None = None) -> pa.Table:
    """Assemble table ``name`` in its declared column order and types, rows in its declared order (``t.ORDER``).

    ``presorted``: the rows are in that order already; ``order``: the rows in that order, known to the caller
    (a sort of the order's columns would give the same order, at the cost of sorting strings again).
    """
    schema = t.SCHEMAS[name]
    arrays = []
    for f in schema:
        col = columns[f.name]
        if isinstance(col, list):
            col = pa.array(col, type=f.type)
        elif col.type != f.type:
            col = col.cast(f.type)
        arrays.append(col)
    table = pa.Table.from_arrays(arrays, schema=schema)
    if order is None and table.num_rows > 1 and not presorted:
        order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in t.ORDER[name]])  # what sort_by does
    if order is not None:
        # Column by column, straight from the chunks (one array out); a dictionary column is combined first, so
        # that its chunks' dictionaries are merged as before.
        at = order if isinstance(order, pa.Array) else pa.array(order, pa.int64())
        table = pa.Table.from_arrays([(c.combine_chunks() if pa.types.is_dictionary(c.type) else c).take(at)
                                      for c in table.columns], schema=schema)
    return table.combine_chunks()


def sorted_dictionary(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(sorted distinct values, index of each value in them, -1 for null) — a deterministic dictionary encoding.

    The indices are int32.
    """
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    # A dense rank is the index into the sorted distinct values: one pass (``ranks.dense_rank``), where
    # unique + sort + index_in hashed every value twice (a million station or event ids: most of the cost).
    idx = dense_rank(values).astype(np.int32)
    if values.null_count:
        valid = values.is_valid()
        valid = (valid.combine_chunks() if isinstance(valid, pa.ChunkedArray) else valid).to_numpy(
            zero_copy_only=False)
    else:
        valid = None
    if valid is not None:
        idx[~valid] = -1
    first = np.zeros(int(idx.max()) + 1 if len(idx) else 0, dtype=np.int64)
    rows = np.arange(len(idx), dtype=np.int64)
    if valid is None:
        first[idx] = rows
    else:
        first[idx[valid]] = rows[valid]
    uniq = values.take(pa.array(first))
    if isinstance(uniq, pa.ChunkedArray):
        uniq = uniq.combine_chunks() if uniq.num_chunks else pa.array([], values.type)
    return uniq, idx


# float64 sums of integers are exact while every partial sum stays below 2**53 (bincount sums in float64).
EXACT_FLOAT = 1 << 53


def exact_in_float(values: np.ndarray) -> bool:
    """Whether float64 sums of any subset of ``values`` (int64, each taken at most once) are exact."""
    return (int(np.abs(values).max()) if len(values) else 0) * len(values) < EXACT_FLOAT


def bin_sum(bins: np.ndarray, weights: np.ndarray | None, n_bins: int, exact: bool) -> np.ndarray:
    """Sum of ``weights`` per bin (int64; a bin without rows: 0), or the rows per bin when None.

    ``exact``: float64 sums are exact (``exact_in_float``); else Arrow's integer sum, which wraps as Arrow's
    group-by sums do.
    """
    if weights is None:
        return np.bincount(bins, minlength=n_bins).astype(np.int64, copy=False)
    if exact:
        return np.rint(np.bincount(bins, weights=weights, minlength=n_bins)).astype(np.int64)
    grouped = pa.table({"b": bins, "v": weights}).group_by("b").aggregate([("v", "sum")])
    out = np.zeros(n_bins, np.int64)
    out[grouped["b"].to_numpy()] = grouped["v_sum"].to_numpy()
    return out


def gather(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values[at]`` (numeric values, indices in range), read-only: by Arrow's take, which reads int32 indices
    as they are where numpy first copies them to int64, and takes its output from Arrow's pool, whose freed
    memory is reused where each large numpy array maps fresh pages (12M int32 indices: 19 -> 10 ms in
    isolation, and no page faults)."""
    return pa.array(values).take(pa.array(at)).to_numpy()


def take_chunked(values: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``values.take(rows)`` as one array, from a chunked column a chunk at a time. Arrow's take of a chunked
    string column builds the whole column as one buffer first; from the checkpoint's memory-mapped envelope at a
    million stations (68 chunks, 180 MB of keys) that took 0.6-0.9 s for the tallies' keys, a chunk at a time
    0.07-0.1 s (fresh memory's page faults dominate on these machines). Rows in any other than ascending order
    are taken in ascending order, then put in theirs (a take from one array)."""
    rows = np.asarray(rows, np.int64)
    if isinstance(values, pa.Array):
        return values.take(pa.array(rows, pa.int64()))
    order = np.argsort(rows, kind="stable") if len(rows) > 1 and (np.diff(rows) < 0).any() else None
    ascending = rows if order is None else rows[order]
    bounds = np.concatenate([[0], np.cumsum([len(c) for c in values.chunks], dtype=np.int64)])
    cut = np.searchsorted(ascending, bounds)
    parts = [chunk.take(pa.array(ascending[cut[i]:cut[i + 1]] - bounds[i], pa.int64()))
             for i, chunk in enumerate(values.chunks) if cut[i + 1] > cut[i]]
    taken = pa.concat_arrays(parts) if parts else pa.array([], values.type)
    if order is None:
        return taken
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return taken.take(pa.array(inverse, pa.int64()))


def dict_column(dictionary: pa.Array, indices: np.ndarray) -> pa.DictionaryArray:
    """A dictionary column from numpy indices (-1: null)."""
    idx = indices.astype(np.int32, copy=False)
    mask = idx < 0 if len(idx) and idx.min() < 0 else None  # a minimum, not a 12M-entry mask, when none is null
    arr = pa.array(idx, type=pa.int32(), mask=mask)
    return pa.DictionaryArray.from_arrays(arr, dictionary, safe=False)  # every index is in range: no check


def trace(ex: Extracted, ords: pa.Array | pa.ChunkedArray | np.ndarray) -> dict[str, pa.Array]:
    """The trace columns (event_id, topic, partition, offset) of the events at ``ords``."""
    idx = pa.array(np.asarray(ords, dtype=np.int64)) if isinstance(ords, np.ndarray) else ords
    return {c: ex.envelope[c].take(idx) for c in t.TRACE_COLUMNS}


def current_rows(ex: Extracted, res: Resolution, record_type: str) -> pa.Table:
    """The rows of ``record_type`` whose event is current, with the trace columns appended."""
    content = ex.content[record_type]
    if content.num_rows == 0:
        table = content
    else:
        keep = res.current[content["ord"].to_numpy()]
        table = content.filter(pa.array(keep))
    for name, col in trace(ex, table["ord"]).items():
        table = table.append_column(name, col)
    return table


def events_table(ex: Extracted, res: Resolution) -> pa.Table:
    """Every event, every version, once: one row per event_id, however often it was delivered. Its status is in
    ``noncurrent_events`` (:func:`noncurrent_events_table`), so that a correction adds rows and changes none.

    A re-delivered event (a producer retry, a file ingested twice: the same event_id at another log position) is
    counted, not repeated: the row is the canonical copy (the lowest topic/partition/offset, the one the other
    tables trace to) with its status, and ``deliveries`` says at how many positions the event was found. The
    same Kafka record read twice is one delivery.
    """
    env = ex.envelope
    canonical = res.kept & (res.status != DUPLICATE)
    rows = np.flatnonzero(canonical)
    every = bool(canonical.all())  # the usual case: nothing delivered twice, so no copy before the sort
    cols = {name: env[name] if every else env[name].take(pa.array(rows)) for name in env.column_names}
    order = log_order(cols)
    deliveries = np.ones(len(rows), dtype=np.int32)
    if not every and (res.kept & (res.status == DUPLICATE)).any():
        # Only the re-delivered ids are counted by hand: usually a handful among millions.
        copies = pc.value_counts(env["event_id"].filter(pa.array(res.kept & (res.status == DUPLICATE))))
        extra = dict(zip(copies.field("values").to_pylist(), copies.field("counts").to_pylist(), strict=True))
        ids = pa.array(list(extra), type=pa.string())
        hits = np.flatnonzero(pc.is_in(cols["event_id"], value_set=ids).to_numpy(zero_copy_only=False))
        for i, event_id in zip(hits.tolist(), pc.take(cols["event_id"], pa.array(hits)).to_pylist(), strict=True):
            deliveries[i] += extra[event_id]
    cols["deliveries"] = pa.array(deliveries, type=pa.int32())
    return finish(t.EVENTS, cols, order=order)


DUPLICATE = v.EVENT_STATUSES.index(v.STATUS_DUPLICATE)
CURRENT = v.EVENT_STATUSES.index(v.STATUS_CURRENT)


def noncurrent_events_table(ex: Extracted, res: Resolution) -> pa.Table:
    """Each event of ``events`` that is no longer current (outdated, superseded or retracted), with its status and
    its log position: an event not listed is current."""
    rows = np.flatnonzero(res.kept & (res.status != DUPLICATE) & (res.status != CURRENT))
    at = pa.array(rows, pa.int64())
    cols = {name: ex.envelope[name].take(at) for name in ("event_id", *t.LOG_ORDER)}
    cols["status"] = res.status_of(rows)
    return finish(t.NONCURRENT_EVENTS, cols, order=log_order(cols))


def log_order(columns: dict[str, pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """The rows of ``columns`` in ``t.LOG_ORDER``, ties by event id: the order a sort by the history tables'
    ``t.ORDER`` gives, found by sorting integers.

    The log position usually packs into one int64 (the topic's rank among the topics, then the offset, then the
    partition), and one numpy sort of it takes a third of a lexicographic sort of the three.
    """
    codes = []
    for name in t.LOG_ORDER:
        col = columns[name]
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if pa.types.is_integer(col.type):
            codes.append(col.to_numpy(zero_copy_only=False).astype(np.int64))
        else:  # a handful of topics: rank the distinct ones
            encoded = col.dictionary_encode()
            rank = pc.rank(encoded.dictionary, tiebreaker="dense").to_numpy(zero_copy_only=False) - 1
            codes.append(rank[encoded.indices.to_numpy(zero_copy_only=False)].astype(np.int64))
    sizes = [int(c.max()) + 1 if len(c) else 1 for c in codes]
    rows = len(codes[0]) if codes else 0
    if rows and min(int(c.min()) for c in codes) >= 0 and float(np.prod(sizes, dtype=np.float64)) < 2.0**62:
        packed = codes[0]
        for c, size in zip(codes[1:], sizes[1:], strict=True):
            packed = packed * size + c
        order = np.argsort(packed, kind="stable")
        ordered = packed[order]
        if not np.any(ordered[1:] == ordered[:-1]):
            return order
    # Rows at one log position (records made by tests; never two Kafka records), or positions too wide to pack:
    # only then are the event ids sorted.
    return np.lexsort((dense_rank(columns["event_id"]), *reversed(codes)))


def corrections_table(ex: Extracted, res: Resolution) -> pa.Table:
    """Each correction (supersede) and retraction, whatever became of it."""
    env = ex.envelope
    sup_rows = np.flatnonzero(res.kept & env["supersedes_event_id"].is_valid().to_numpy(zero_copy_only=False)
                              & (res.status != DUPLICATE))
    ret_rows = np.array([r.ordinal for r in res.retractions if res.status[r.ordinal] != DUPLICATE],
                        dtype=np.int64)
    sup = env.take(pa.array(sup_rows))
    type_of: dict[str, str] = {}
    if len(sup_rows):  # the events that corrections name (a hash of the few targets, not of every event id)
        target_types = env.select(["event_id", "record_type"]).filter(
            pc.is_in(env["event_id"], value_set=sup["supersedes_event_id"]))
        type_of = dict(zip(target_types["event_id"].to_pylist(), target_types["record_type"].to_pylist(),
                           strict=True))
    targets = [e in type_of for e in sup["supersedes_event_id"].to_pylist()]
    by_ord = {r.ordinal: r for r in res.retractions}
    rets = [by_ord[int(o)] for o in ret_rows]
    ret_env = env.take(pa.array(ret_rows))
    rows = np.concatenate([sup_rows, ret_rows])
    cols = {
        "correction_event_id": pa.concat_arrays([sup["event_id"].combine_chunks(),
                                                 ret_env["event_id"].combine_chunks()]),
        "target_event_id": sup["supersedes_event_id"].to_pylist() + [r.target_event_id for r in rets],
        "kind": [v.CORRECTION_SUPERSEDE] * len(sup_rows) + [v.CORRECTION_RETRACT] * len(rets),
        "reason": sup["supersedes_reason"].to_pylist() + [r.reason for r in rets],
        # A correction carries its target's key (the same message key, unless it moves the thing).
        "key": sup["key"].to_pylist() + [r.target_key for r in rets],
        "target_record_type": [type_of.get(e) for e in sup["supersedes_event_id"].to_pylist()]
        + [r.target_record_type for r in rets],
        "target_found": targets + [r.target_record_type is not None for r in rets],
        "status": res.status_of(rows),
        "recorded_at": env["recorded_at"].take(pa.array(rows, type=pa.int64())),
    }
    for c in ("topic", "partition", "offset"):
        cols[c] = env[c].take(pa.array(rows, type=pa.int64()))
    return finish(t.CORRECTIONS, cols)


def reference_tables(ex: Extracted, res: Resolution) -> dict[str, pa.Table]:
    """elections, divisions, parties, candidates, contests and their selections: the current declaration of
    each entity (``contests`` gains each election's default contest once the tallies are known)."""
    out = {}
    for name, rtype in ((t.ELECTIONS, v.ELECTION_DECLARED), (t.DIVISIONS, v.DIVISION_DECLARED),
                        (t.PARTIES, v.PARTY_DECLARED), (t.CANDIDATES, v.CANDIDATE_REGISTERED),
                        (t.CONTESTS, v.CONTEST_DECLARED), (t.CONTEST_SELECTIONS, CONTEST_SELECTION)):
        out[name] = finish(name, current_in_key_order(ex, res, rtype, t.KEYS[name]), presorted=True)
        ex.let_go()  # a mapped extraction's pages of this record type (divisions: 0.6 GB at a million stations)
    return out


def current_in_key_order(ex: Extracted, res: Resolution, record_type: str, keys: tuple[str, ...]
                         ) -> dict[str, pa.ChunkedArray]:
    """``current_rows`` sorted by ``keys``, as columns: the key columns are sorted alone and every column is
    taken once, straight from its chunks (a million divisions: no filtered copy to sort and copy again)."""
    content = ex.content[record_type]
    ords = content["ord"].to_numpy() if content.num_rows else np.zeros(0, np.int64)
    rows = np.flatnonzero(res.current[ords]) if content.num_rows else np.zeros(0, np.int64)
    columns = {c: content[c] for c in content.column_names}
    at = pa.array(rows, pa.int64())
    if len(rows) > 1:
        key_table = pa.table({k: columns[k].take(at) for k in keys})
        order = pc.sort_indices(key_table, sort_keys=[(k, "ascending") for k in keys]).to_numpy()
        at = pa.array(rows[order], pa.int64())
    out = {c: col.take(at) for c, col in columns.items()}
    out.update(trace(ex, out["ord"]))
    return out
