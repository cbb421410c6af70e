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

DEFAULT_TOLERANCE = 0.01  # relative: reported figures are often rounded ("about 5.2 million", "52%")
# How far "almost X" / "about X" may lie from X: a source's approximation, not a rounding of X.
APPROXIMATE_BAND = 0.05


def _context_column(context: dict[str, pa.Table], ref: c.Reference) -> pa.ChunkedArray | pa.Array:
    if ref.target_table not in context:
        raise ConfigError(f"check needs table {ref.target_table!r} to resolve {ref.column}; pass it in context")
    col = context[ref.target_table][ref.target_column]
    return col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col


def _resolves(values: pa.ChunkedArray | pa.Array, targets: pa.ChunkedArray | pa.Array) -> pa.Array:
    """True where the value is among targets, null where the value is null (optional references pass)."""
    found = pc.is_in(values, value_set=pc.unique(targets).drop_null())
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


def station_frame(results: pa.Table, context: dict[str, pa.Table]) -> pa.Table:
    """Aggregate station_results to one row per (election_id, station_id) with the per-station measures."""
    e, s, cand = (_dictionary(results[k]) for k in ("election_id", "station_id", "candidate_id"))
    ei, si, ci = _codes(e), _codes(s), _codes(cand)
    stations = max(len(s.dictionary), 1) + 1
    group = (ei + 1) * stations + (si + 1)  # +1 so a null code (-1) still groups
    missing = (ei < 0) | (si < 0) | (ci < 0)
    ref = c.Reference("candidate_id", t.CANDIDATES, "candidate_id")
    known = pc.is_in(cand.dictionary, value_set=_context_column(context, ref)).to_numpy(zero_copy_only=False)
    unresolved = np.zeros(len(ci), dtype=np.int64) if len(known) == 0 else \
        ((ci >= 0) & ~known[np.where(ci < 0, 0, ci)]).astype(np.int64)
    work = pa.table({
        "g": group, "row": np.arange(len(group), dtype=np.int64), "c": pa.array(ci, mask=ci < 0),
        "v": results["votes"], "missing": missing.astype(np.int64), "unresolved": unresolved,
    })
    agg = work.group_by("g", use_threads=True).aggregate([
        ("row", "min"), ("c", "count"), ("c", "count_distinct"), ("v", "sum"), ("v", "min"),
        ("missing", "sum"), ("unresolved", "sum"),
    ])
    first = agg["row_min"]
    frame = {k: results[k].take(first) for k in ("election_id", "station_id", *t.TRACE_COLUMNS)}
    frame = {k: col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col for k, col in frame.items()}
    frame.update({
        "rows": agg["c_count"], "votes_sum": agg["v_sum"], c.VOTES_MIN: agg["v_min"],
        c.KEY_MISSING_ROWS: agg["missing_sum"],
        c.DUPLICATE_CANDIDATE_ROWS: pc.subtract(agg["c_count"], agg["c_count_distinct"]),
        c.UNRESOLVED_CANDIDATE_ROWS: agg["unresolved_sum"],
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
