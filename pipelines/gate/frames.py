"""Check frames: what GX validates for each table — its columns plus derived ones, built with pyarrow.

station_results (≈12.5M rows for a million stations) is not handed to GX row by row: pandas would need
~3 GB for it and GX several passes over it. Its rules are all per station (each station's rows come from
one tally event), so it is aggregated here with one Arrow hash group-by over integer dictionary codes into
a per-station frame (~1M rows), which GX then validates. Failing counts for it are stations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import ConfigError
from pipelines.fold import tables as t
from pipelines.gate import checks as c
from pipelines.gate.keymatch import as_dictionary as _dictionary
from pipelines.gate.keymatch import matching_rows

# How far "almost X" / "about X" may lie from X: a source's approximation, not a rounding of X.
APPROXIMATE_BAND = 0.05


def _context_column(context: dict[str, pa.Table], ref: c.Reference) -> pa.ChunkedArray | pa.Array:
    if ref.target_table not in context:
        raise ConfigError(f"check needs table {ref.target_table!r} to resolve {ref.column}; pass it in context")
    col = context[ref.target_table][ref.target_column]
    return col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col


def on_values(col: pa.ChunkedArray | pa.Array, fn: Callable[[Any], Any]) -> pa.ChunkedArray | pa.Array:
    """``fn`` (element-wise) of each value of ``col``; for a dictionary-encoded column, of each distinct value once
    (spread to the rows by their indices, a null index giving null), never of a decoded copy of a 13-million-row
    column.

    The chunks' dictionaries (a table read from several files has one per file) go to ``fn`` together, in one call:
    ``is_in`` builds its hash set of the targets once, not once per file (fifty times a million division ids).
    """
    if not pa.types.is_dictionary(col.type):
        return fn(col)
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if not chunks:
        return fn(pa.array([], col.type.value_type))
    results = fn(pa.concat_arrays([chunk.dictionary for chunk in chunks]))
    results = results.combine_chunks() if isinstance(results, pa.ChunkedArray) else results
    out, start = [], 0
    for chunk in chunks:
        out.append(results.slice(start, len(chunk.dictionary)).take(chunk.indices))
        start += len(chunk.dictionary)
    return pa.chunked_array(out)


def _is_in(values: pa.Array, targets: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``pc.is_in(values, value_set=targets)``. Few values among many targets (the changed files of an
    incremental gate against a million division ids) are looked up the other way round: a hash set of the values,
    probed with every target, costs a third of a hash set of the targets."""
    if len(values) * 4 >= len(targets) or targets.type != values.type:
        return pc.is_in(values, value_set=targets)
    present = targets.filter(pc.is_in(targets, value_set=pc.unique(values)))
    return pc.is_in(values, value_set=present)


def _resolves(values: pa.ChunkedArray | pa.Array, targets: pa.ChunkedArray | pa.Array) -> pa.Array:
    """True where the value is among targets, null where the value is null (optional references pass)."""
    if len(values) == values.null_count:  # nothing to look up: skip hashing a million targets
        return pa.nulls(len(values), pa.bool_())
    # is_in builds its own hash set (duplicates and nulls in the set are harmless): no pc.unique pass first.
    found = on_values(values, lambda v: _is_in(v, targets.drop_null()))
    return pc.if_else(values.is_valid(), found, pa.scalar(None, pa.bool_()))


def composite_key(table: pa.Table, columns: tuple[str, ...]) -> pa.ChunkedArray | pa.Array:
    """One value per row that is unique exactly when the key is, and null when any key column is.

    Dictionary-encoded keys (the large result tables) become one int64 of their codes: joining the strings of
    a million-row table's ids would cost hundreds of megabytes.
    """
    if len(columns) > 1 and all(pa.types.is_dictionary(table.schema.field(k).type) for k in columns):
        arrays = [_dictionary(table[k]) for k in columns]
        sizes = [len(a.dictionary) + 1 for a in arrays]
        if float(np.prod(sizes, dtype=np.float64)) < 2.0 ** 62:
            packed = np.zeros(table.num_rows, dtype=np.int64)
            missing = np.zeros(table.num_rows, dtype=bool)
            for arr, size in zip(arrays, sizes, strict=True):
                codes = _codes(arr)
                missing |= codes < 0
                # In place: each temporary of a 13-million-row key is 100 MB of fresh pages to fault in and clear.
                packed *= size
                packed += codes
                packed += 1
            return pa.array(packed, mask=missing)
    parts = [table[k].cast(pa.string()) for k in columns]
    if len(parts) == 1:
        return parts[0]
    # binary_join emits null when any part is null, which is what key_present needs.
    return pc.binary_join_element_wise(*parts, "\x1f")


def _excess(table: pa.Table, tolerance: float) -> pa.Array:
    """How far each reported figure lies outside what its qualifier allows (0 = fine, null = not reported or
    not computable from what the stations report)."""
    out = []
    for computed, reported, qualifier in zip(table["computed"].to_pylist(), table["reported"].to_pylist(),
                                             table["qualifier"].to_pylist(), strict=True):
        if reported is None or computed is None:  # nothing to compare: the rule does not apply (rule 1)
            out.append(None)
            continue
        got = computed
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
    """Aggregate station_results to one row per tally (election_id, contest_id, station_id) with its measures.

    A hash group-by with count_distinct over 12.5M rows took ~10 s; ordering by one integer key
    (tally, then selection) turns every measure into a numpy segment reduction over adjacent rows.
    """
    # Long: one sort, then every measure as a segment reduction over the same order (see docstring).
    e, co, s, cand = (_dictionary(results[k]) for k in ("election_id", "contest_id", "station_id", "candidate_id"))
    ei, coi, si, ci = _codes(e), _codes(co), _codes(s), _codes(cand)
    contests, stations = max(len(co.dictionary), 1) + 1, max(len(s.dictionary), 1) + 1
    candidates = max(len(cand.dictionary), 1) + 1
    # +1 so a null code (-1) still groups; (tally, selection) in one int64 (1e6 x 1e5 x contests fits).
    key = (((ei + 1) * contests + (coi + 1)) * stations + (si + 1)) * candidates + (ci + 1)
    order = _sort_order(key)
    if order is not None:
        key, ci = key[order], ci[order]
    group = key // candidates
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.zeros(0, np.int64)
    first_row = order[starts] if order is not None else starts
    ref = c.Reference("candidate_id", t.CANDIDATES, "candidate_id")
    known = pc.is_in(cand.dictionary, value_set=_context_column(context, ref)).to_numpy(zero_copy_only=False)
    present = ci >= 0
    missing = (ei < 0) | (coi < 0) | (si < 0)
    missing = (missing if order is None else missing[order]) | ~present
    # Only candidate selections must name a registered candidate (parties, options, write-ins need not).
    kind = results["selection_kind"].cast(pa.string())
    is_candidate = pc.fill_null(pc.equal(kind, "CANDIDATE"), False).to_numpy(zero_copy_only=False)
    if order is not None:
        is_candidate = is_candidate[order]
    unresolved = present & is_candidate & ~known[np.where(present, ci, 0)] if len(known) \
        else np.zeros(len(ci), dtype=bool)
    # A selection counts once per tally: only the first of a run of equal (tally, selection) keys.
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

    def per_tally(flags: np.ndarray) -> np.ndarray:
        return np.add.reduceat(flags.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)

    rows = per_tally(present)
    idx = pa.array(first_row, type=pa.int64())
    frame = {"election_id": e.take(idx), "contest_id": co.take(idx), "station_id": s.take(idx)}
    carried = [*t.TRACE_COLUMNS, *([c.PART_COLUMN] if c.PART_COLUMN in results.column_names else [])]
    frame.update({k: results[k].take(idx) for k in carried})
    frame = {k: col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col for k, col in frame.items()}
    frame.update({
        "rows": rows, "votes_sum": pa.array(v_sum, mask=no_votes), c.VOTES_MIN: pa.array(v_min, mask=no_votes),
        c.KEY_MISSING_ROWS: per_tally(missing),
        c.DUPLICATE_CANDIDATE_ROWS: rows - per_tally(distinct),
        c.UNRESOLVED_CANDIDATE_ROWS: per_tally(unresolved),
    })
    table = pa.table(frame)
    if t.STATION_TURNOUT not in context:
        raise ConfigError("station_results checks need station_turnout in context (valid ballots per tally)")
    keys = ["election_id", "contest_id", "station_id"]
    turnout = context[t.STATION_TURNOUT].select([*keys, "valid_ballots"])
    at = matching_rows([table[k] for k in keys], [turnout[k] for k in keys])
    if at is None:  # a tally in two turnout rows: the join repeats its row, as the rule has always seen it
        turnout = turnout.append_column("_has_turnout", pa.array(np.ones(turnout.num_rows, dtype=bool)))
        joined = table.append_column("_row", pa.array(np.arange(table.num_rows))).join(
            turnout, keys=keys, join_type="left outer").sort_by("_row")
        has_turnout = pc.fill_null(joined["_has_turnout"], False)
        joined = joined.drop_columns(["_row", "_has_turnout"])
    else:
        joined = table.append_column("valid_ballots", turnout["valid_ballots"].combine_chunks().take(
            pa.array(at, mask=at < 0)))
        has_turnout = pa.array(at >= 0)
    # A tally without a turnout row has no valid ballots to match: its votes count as the difference. One whose
    # valid ballots are unknown has nothing to match against: the rule does not apply (null).
    diff = pc.if_else(has_turnout, pc.subtract(joined["votes_sum"], joined["valid_ballots"]), joined["votes_sum"])
    return joined.append_column(c.VOTES_MINUS_VALID, diff)


def decoded(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary-encoded columns decoded (for joins and kernels without dictionary support)."""
    if not any(pa.types.is_dictionary(f.type) for f in table.schema):
        return table
    return table.cast(pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                                 for f in table.schema]))


def _pairs_in(first: pa.ChunkedArray, second: pa.ChunkedArray, declared: pa.Table) -> pa.Array:
    """Whether each row's (first, second) pair is one of ``declared``'s (contest_id, selection_id) rows, as
    ``is_in`` over the joined pairs decides it (a pair with a null is found only if a declared pair has one),
    computed on dictionary codes rather than on 13 million joined strings."""
    a, b = _dictionary(first), _dictionary(second)
    size = len(b.dictionary) + 1
    row_pairs = (_codes(a) + 1) * size + (_codes(b) + 1)
    has_null = (_codes(a) < 0) | (_codes(b) < 0)
    da = pc.index_in(declared["contest_id"], value_set=a.dictionary).fill_null(-1).to_numpy(zero_copy_only=False)
    db = pc.index_in(declared["selection_id"], value_set=b.dictionary).fill_null(-1).to_numpy(zero_copy_only=False)
    null_declared = declared.num_rows > 0 and bool(np.any(pc.or_(
        declared["contest_id"].is_null(), declared["selection_id"].is_null()).to_numpy(zero_copy_only=False)))
    known = (da >= 0) & (db >= 0)  # a declared value no row holds matches no row
    return pa.array(np.where(has_null, null_declared, _among(row_pairs, (da[known] + 1) * size + (db[known] + 1))))


def _among(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``np.isin(values, targets)`` for integers, by a binary search in the sorted targets: numpy's isin sorts
    the values too (13 million pairs of contest_results at a million stations: 2.1 s, this 0.6 s)."""
    targets = np.unique(targets)
    if not len(targets):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(targets, values), len(targets) - 1)
    return targets[at] == values


def _tally_votes(results: pa.Table) -> pa.Table:
    """Sum of votes per tally (election_id, contest_id, station_id) of station_results, null when none known.

    As in ``station_frame``, the tallies become one integer key and the sums a segment reduction: a hash
    group-by over the three string columns (cast from the files' dictionaries first) took seconds for the few
    million rows a turnout file's tallies have.
    """
    cols = [_dictionary(results[k]) for k in ("election_id", "contest_id", "station_id")]
    codes = [_codes(col) for col in cols]
    key = np.zeros(results.num_rows, dtype=np.int64)
    for col, code in zip(cols, codes, strict=True):  # +1: a null key (-1) is a group of its own, as Arrow's
        key = key * (len(col.dictionary) + 1) + (code + 1)
    order = _sort_order(key)
    if order is not None:
        key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    votes = results["votes"]
    valid = votes.is_valid().to_numpy(zero_copy_only=False) if votes.null_count else np.ones(len(votes), bool)
    v = (votes.fill_null(0) if votes.null_count else votes).to_numpy().astype(np.int64, copy=False)
    if order is not None:
        v, valid = v[order], valid[order]
    n_valid = np.add.reduceat(valid.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
    sums = np.add.reduceat(np.where(valid, v, 0), starts) if len(starts) else np.zeros(0, np.int64)
    first = pa.array(order[starts] if order is not None else starts, type=pa.int64())
    grouped = {name: col.take(first).cast(col.type.value_type)
               for name, col in zip(("election_id", "contest_id", "station_id"), cols, strict=True)}
    return pa.table({**grouped, "votes_sum": pa.array(sums, mask=n_valid == 0)})


def _votes_excess(turnout: pa.Table, context: dict[str, pa.Table]) -> pa.ChunkedArray | pa.Array:
    """sum(votes) + over + under + blank - cast x votes_allowed; null where any input is unknown.

    Over, under and blank count as 0 only when the tally reports none of them (then sum(votes) is compared
    alone); one reported and another not leaves the sum unknown.
    """
    for needed in (t.STATION_RESULTS, t.CONTESTS):
        if needed not in context:
            raise ConfigError(f"station_turnout checks need {needed} in context")
    keys = ["election_id", "contest_id", "station_id"]
    sums = _tally_votes(context[t.STATION_RESULTS])
    at = matching_rows([turnout[k] for k in keys], [sums[k] for k in keys])
    if at is None:  # keys too wide to pack into integers
        frame = decoded(turnout.select(keys)).append_column("_row", pa.array(np.arange(turnout.num_rows)))
        frame = frame.join(sums, keys=keys, join_type="left outer").sort_by("_row")
    else:
        frame = pa.table({"contest_id": decoded(turnout.select(["contest_id"]))["contest_id"],
                          "votes_sum": sums["votes_sum"].take(pa.array(at, mask=at < 0))})
    extras = [turnout[k] for k in ("overvotes", "undervotes", "blank_votes")]
    none_reported = pc.and_(pc.and_(extras[0].is_null(), extras[1].is_null()), extras[2].is_null())
    extra = pc.if_else(none_reported, 0, pc.add(pc.add(extras[0], extras[1]), extras[2]))
    contests = context[t.CONTESTS]
    at = pc.index_in(frame["contest_id"], value_set=contests["contest_id"])
    allowed = contests["votes_allowed"].combine_chunks().take(at).cast(pa.int64())
    used = pc.add(pc.coalesce(frame["votes_sum"], 0), extra)
    return pc.subtract(used, pc.multiply(turnout["ballots_cast"], allowed))


def _contest_results_derived(frame: pa.Table, context: dict[str, pa.Table]) -> dict[str, pa.Array]:
    """counts min, selection-declared flag and methods-minus-votes for contest_results (station level only)."""
    methods = [frame[m] for m in t.METHOD_COLUMNS]
    out: dict[str, pa.Array] = {c.COUNTS_MIN: pc.min_element_wise(frame["votes"], *methods)}
    station = on_values(frame["level"], lambda v: pc.equal(v, t.LEVEL_STATION))
    if t.CONTEST_SELECTIONS not in context:
        raise ConfigError("contest_results checks need contest_selections in context")
    declared = decoded(context[t.CONTEST_SELECTIONS].select(["contest_id", "selection_id"]))
    declares_any = on_values(frame["contest_id"], lambda v: pc.is_in(v, value_set=declared["contest_id"]))
    applies = pc.and_(station, declares_any)
    out[c.SELECTION_DECLARED_FLAG] = pc.if_else(applies, _pairs_in(frame["contest_id"], frame["selection_id"],
                                                                   declared), pa.scalar(None, pa.bool_()))
    # Where any reported figure is unknown (methods_unknown > 0) or none was reported (null), no rule applies.
    total = pc.add(*[pc.coalesce(m, 0) for m in methods[:2]])
    for m in methods[2:]:
        total = pc.add(total, pc.coalesce(m, 0))
    complete = pc.and_(station, pc.equal(frame["methods_unknown"], 0))
    out[c.METHODS_MINUS_VOTES] = pc.if_else(complete, pc.subtract(total, frame["votes"]),
                                            pa.scalar(None, pa.int64()))
    return out


def check_frame(table_name: str, table: pa.Table, context: dict[str, pa.Table], tolerance: float) -> pa.Table:
    """The table's columns plus every derived column its checks read."""
    if table_name == t.STATION_RESULTS:
        frame = station_frame(table, context)
    else:  # dictionary-encoded columns stay encoded: the rules read their distinct values (``on_values``)
        frame = table.append_column(c.KEY_COLUMN, composite_key(table, t.KEYS[table_name]))
    derived: dict[str, pa.Array | pa.ChunkedArray] = {}
    if table_name == t.STATION_TURNOUT:
        counts = [frame[k] for k in ("registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots",
                                     "overvotes", "undervotes", "blank_votes", "write_ins")]
        derived[c.COUNTS_MIN] = pc.min_element_wise(*counts)  # over the known ones; null when none is
        derived[c.VOTES_EXCESS] = _votes_excess(frame, context)
        derived[c.CAST_MINUS_REGISTERED] = pc.subtract(frame["ballots_cast"], frame["registered_voters"])
        derived[c.VALID_PLUS_INVALID_MINUS_CAST] = pc.subtract(
            pc.add(frame["valid_ballots"], frame["invalid_ballots"]), frame["ballots_cast"])
    elif table_name == t.OBSERVATIONS_BY_DIVISION:
        derived[c.COUNTS_MIN] = pc.min_element_wise(frame["incidents"], frame["occurrences"])
    elif table_name == t.CONTEST_RESULTS:
        derived.update(_contest_results_derived(frame, context))
    elif table_name == t.CONTEST_SUMMARY:
        derived[c.REPORTING_MINUS_EXPECTED] = pc.subtract(frame["stations_reporting"], frame["stations_expected"])
    elif table_name == t.NATIONAL_SUMMARY:
        derived[c.TOLERANCE_EXCESS] = _excess(frame, tolerance)
    for ref in c.REFERENCES.get(table_name, {}).values():
        derived[ref.flag] = _resolves(frame[ref.column], _context_column(context, ref))
    for name, col in derived.items():
        frame = frame.append_column(name, col)
    return frame
