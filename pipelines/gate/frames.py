"""Check frames: what GX validates for each table — its columns plus derived ones, built with pyarrow.

station_results (≈12.5M rows for a million stations) is not handed to GX row by row: pandas would need
~3 GB for it and GX several passes over it. Its rules are all per station (each station's rows come from
one tally event), so it is aggregated here with one Arrow hash group-by over integer dictionary codes into
a per-station frame (~1M rows), which GX then validates. Failing counts for it are stations.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import ConfigError
from pipelines.fold import tables as t
from pipelines.gate import checks as c

# How far "almost X" / "about X" may lie from X: a source's approximation, not a rounding of X.
APPROXIMATE_BAND = 0.05


def _context_column(context: dict[str, pa.Table], ref: c.Reference) -> pa.ChunkedArray | pa.Array:
    if ref.target_table not in context:
        raise ConfigError(f"check needs table {ref.target_table!r} to resolve {ref.column}; pass it in context")
    col = context[ref.target_table][ref.target_column]
    return col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col


def _resolves(values: pa.ChunkedArray | pa.Array, targets: pa.ChunkedArray | pa.Array) -> pa.Array:
    """True where the value is among targets, null where the value is null (optional references pass)."""
    if len(values) == values.null_count:  # nothing to look up: skip hashing a million targets
        return pa.nulls(len(values), pa.bool_())
    # is_in builds its own hash set (duplicates and nulls in the set are harmless): no pc.unique pass first.
    found = pc.is_in(values, value_set=targets.drop_null())
    return pc.if_else(values.is_valid(), found, pa.scalar(None, pa.bool_()))


def _composite_key(table: pa.Table, columns: tuple[str, ...]) -> pa.ChunkedArray:
    parts = [table[k].cast(pa.string()) for k in columns]
    if len(parts) == 1:
        return parts[0]
    # binary_join emits null when any part is null, which is what key_present needs.
    return pc.binary_join_element_wise(*parts, "\x1f")


def _excess(table: pa.Table, tolerance: float) -> pa.Array:
    """How far each reported figure lies outside what its qualifier allows (0 = fine, null = not reported)."""
    out = []
    for computed, reported, qualifier in zip(table["computed"].to_pylist(), table["reported"].to_pylist(),
                                             table["qualifier"].to_pylist(), strict=True):
        if reported is None:
            out.append(None)
            continue
        got = 0.0 if computed is None else computed
        scale = max(abs(reported), 1e-9)
        slack = tolerance * scale
        if qualifier == "MORE_THAN":  # "more than X": the computed figure must not be clearly below X
            out.append(max(reported - got - slack, 0.0))
        elif qualifier == "ALMOST":  # "almost X": at most X, and within the approximate band below it
            out.append(max(got - reported - slack, reported - got - APPROXIMATE_BAND * scale, 0.0))
        elif qualifier == "ABOUT":  # "about X": within the approximate band either way
            out.append(max(abs(got - reported) - max(slack, APPROXIMATE_BAND * scale), 0.0))
        else:  # EXACT, UNKNOWN: within the stated tolerance either way
            out.append(max(abs(got - reported) - slack, 0.0))
    return pa.array(out, type=pa.float64())


def _dictionary(col: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)


def _codes(arr: pa.DictionaryArray) -> np.ndarray:
    return arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _sort_order(key: np.ndarray) -> np.ndarray | None:
    """None when ``key`` is already ascending, else its stable argsort.

    The fold writes station_results sorted by key, so the common case costs one comparison pass; anything
    else (hand-edited or concatenated tables) is sorted, and a stable sort keeps each group's first row its
    lowest row number.
    """
    return None if len(key) < 2 or bool(np.all(key[1:] >= key[:-1])) else np.argsort(key, kind="stable")


def station_frame(results: pa.Table, context: dict[str, pa.Table]) -> pa.Table:
    """Aggregate station_results to one row per (election_id, station_id) with the per-station measures.

    A hash group-by with count_distinct over 12.5M rows took ~10 s; ordering by one integer key
    (station, then candidate) turns every measure into a numpy segment reduction over adjacent rows.
    """
    e, s, cand = (_dictionary(results[k]) for k in ("election_id", "station_id", "candidate_id"))
    ei, si, ci = _codes(e), _codes(s), _codes(cand)
    stations, candidates = max(len(s.dictionary), 1) + 1, max(len(cand.dictionary), 1) + 1
    # +1 so a null code (-1) still groups; (station, candidate) in one int64 (1e6 x 1e5 x elections fits).
    key = ((ei + 1) * stations + (si + 1)) * candidates + (ci + 1)
    order = _sort_order(key)
    if order is not None:
        key, ci = key[order], ci[order]
    group = key // candidates
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.zeros(0, np.int64)
    first_row = order[starts] if order is not None else starts
    ref = c.Reference("candidate_id", t.CANDIDATES, "candidate_id")
    known = pc.is_in(cand.dictionary, value_set=_context_column(context, ref)).to_numpy(zero_copy_only=False)
    present = ci >= 0
    missing = (ei < 0) | (si < 0)
    missing = (missing if order is None else missing[order]) | ~present
    unresolved = present & ~known[np.where(present, ci, 0)] if len(known) else np.zeros(len(ci), dtype=bool)
    # A candidate counts once per station: only the first of a run of equal (station, candidate) keys.
    distinct = present & np.r_[True, key[1:] != key[:-1]] if len(key) else present
    del key, group
    votes = results["votes"]
    valid = votes.is_valid().to_numpy() if votes.null_count else np.ones(len(votes), dtype=bool)
    v = votes.fill_null(0).to_numpy() if votes.null_count else votes.to_numpy()
    if order is not None:
        v, valid = v[order], valid[order]
    n_valid = np.add.reduceat(valid.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
    no_votes = n_valid == 0  # Arrow's sum/min of only nulls is null; keep that
    v_sum = np.add.reduceat(np.where(valid, v, 0), starts) if len(starts) else np.zeros(0, np.int64)
    v_min = np.minimum.reduceat(np.where(valid, v, np.iinfo(np.int64).max), starts) if len(starts) \
        else np.zeros(0, np.int64)

    def per_station(flags: np.ndarray) -> np.ndarray:
        return np.add.reduceat(flags.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)

    rows = per_station(present)
    idx = pa.array(first_row, type=pa.int64())
    frame = {"election_id": e.take(idx), "station_id": s.take(idx)}
    frame.update({k: results[k].take(idx) for k in t.TRACE_COLUMNS})
    frame = {k: col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col for k, col in frame.items()}
    frame.update({
        "rows": rows, "votes_sum": pa.array(v_sum, mask=no_votes), c.VOTES_MIN: pa.array(v_min, mask=no_votes),
        c.KEY_MISSING_ROWS: per_station(missing),
        c.DUPLICATE_CANDIDATE_ROWS: rows - per_station(distinct),
        c.UNRESOLVED_CANDIDATE_ROWS: per_station(unresolved),
    })
    table = pa.table(frame)
    if t.STATION_TURNOUT not in context:
        raise ConfigError("station_results checks need station_turnout in context (valid ballots per station)")
    turnout = context[t.STATION_TURNOUT].select(["election_id", "station_id", "valid_ballots"])
    joined = table.append_column("_row", pa.array(np.arange(table.num_rows))).join(
        turnout, keys=["election_id", "station_id"], join_type="left outer").sort_by("_row")
    # A station without a turnout row has no valid ballots to match: its votes count as the difference.
    diff = pc.subtract(joined["votes_sum"], pc.coalesce(joined["valid_ballots"], 0))
    return joined.drop_columns(["_row"]).append_column(c.VOTES_MINUS_VALID, diff)


def check_frame(table_name: str, table: pa.Table, context: dict[str, pa.Table], tolerance: float) -> pa.Table:
    """The table's columns plus every derived column its checks read."""
    if table_name == t.STATION_RESULTS:
        frame = station_frame(table, context)
    else:
        frame = table
        if any(pa.types.is_dictionary(f.type) for f in frame.schema):
            frame = frame.cast(pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type)
                                                   else f.type) for f in frame.schema]))
        frame = frame.append_column(c.KEY_COLUMN, _composite_key(frame, t.KEYS[table_name]))
    derived: dict[str, pa.Array | pa.ChunkedArray] = {}
    if table_name == t.STATION_TURNOUT:
        counts = [frame[k] for k in ("registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots")]
        derived[c.COUNTS_MIN] = pc.min_element_wise(*counts)
        derived[c.CAST_MINUS_REGISTERED] = pc.subtract(frame["ballots_cast"], frame["registered_voters"])
        derived[c.VALID_PLUS_INVALID_MINUS_CAST] = pc.subtract(
            pc.add(frame["valid_ballots"], frame["invalid_ballots"]), frame["ballots_cast"])
    elif table_name == t.OBSERVATIONS_BY_DIVISION:
        derived[c.COUNTS_MIN] = pc.min_element_wise(frame["incidents"], frame["occurrences"])
    elif table_name == t.NATIONAL_SUMMARY:
        derived[c.TOLERANCE_EXCESS] = _excess(frame, tolerance)
    for ref in c.REFERENCES.get(table_name, {}).values():
        derived[ref.flag] = _resolves(frame[ref.column], _context_column(context, ref))
    for name, col in derived.items():
        frame = frame.append_column(name, col)
    return frame
