"""Withheld tallies: current StationTally versions the fold leaves out of every derived table.

The gate decides which tallies to withhold (``pipelines.release.withhold``, from rules configured in
``BALLOTSTREAM_GATE_WITHHOLD``); the fold only applies the decision. A withheld tally is treated as not current
for the result tables alone, so station_results, station_turnout, contest_results, contest_summary,
municipality_results and national_summary all exclude it consistently, while events and corrections still show
its real status. Nothing is lost silently: each withheld tally is a row of the public ``withheld`` table.

The decision is recomputed on every publish from the current data, so a correction superseding a withheld tally
brings its unit back without anything special here.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.build import finish, trace
from pipelines.fold.extract import Extracted
from pipelines.fold.versions import Resolution

# What the caller names per withheld tally; the fold adds the tally's trace.
UNIT_COLUMNS: tuple[str, ...] = ("election_id", "contest_id", "station_id")
REQUEST_SCHEMA = pa.schema([(c, pa.string()) for c in (*UNIT_COLUMNS, "rule", "reason")])


def _unit_key(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    parts = [table[c].cast(pa.string()) for c in UNIT_COLUMNS]
    return pc.binary_join_element_wise(*parts, "\x1f")


def exclude(ex: Extracted, res: Resolution, request: pa.Table | None) -> tuple[Resolution, pa.Table]:
    """(the resolution the result tables are built from, the ``withheld`` table).

    Args:
        ex: the extraction.
        res: the resolution of every event.
        request: one row per (tally, rule) to withhold (``REQUEST_SCHEMA``), or None for none.

    Returns:
        ``res`` with the withheld tallies no longer current (the very object when nothing is withheld), and the
        withheld table: each requested row with the trace of the current tally it names (null trace when no
        current tally has that key, so the request is still recorded, not dropped).
    """
    if request is None or request.num_rows == 0:
        return res, t.empty_table(t.WITHHELD)
    request = request.select(list(REQUEST_SCHEMA.names)).cast(REQUEST_SCHEMA)
    tallies = ex.content[v.STATION_TALLY]
    ords = tallies["ord"].to_numpy() if tallies.num_rows else np.zeros(0, np.int64)
    current = res.current[ords] if len(ords) else np.zeros(0, bool)
    wanted = _unit_key(request)
    hit = pc.fill_null(pc.is_in(_unit_key(tallies), value_set=wanted), False).to_numpy(zero_copy_only=False) \
        if tallies.num_rows else np.zeros(0, bool)
    hit &= current
    withheld_ords = ords[hit]
    narrowed = res.current.copy()
    narrowed[withheld_ords] = False
    # The trace of each request's tally: at most one current tally per key.
    found = tallies.filter(pa.array(hit)).select(list(UNIT_COLUMNS)).append_column(
        "_ord", pa.array(withheld_ords, pa.int64()))
    at = pc.index_in(wanted, value_set=_unit_key(found)) if found.num_rows else pa.nulls(len(wanted), pa.int32())
    ord_of_request = found["_ord"].take(at) if found.num_rows else pa.nulls(len(wanted), pa.int64())
    cols: dict[str, pa.Array | pa.ChunkedArray] = {c: request[c] for c in REQUEST_SCHEMA.names}
    cols.update(trace(ex, ord_of_request))
    return replace(res, current=narrowed), finish(t.WITHHELD, cols)


def with_withheld_counts(summary: pa.Table, withheld: pa.Table) -> pa.Table:
    """contest_summary with ``stations_withheld``: distinct stations withheld per contest (0 when none)."""
    counts: dict[str, int] = {}
    if withheld.num_rows:
        units = withheld.select(["contest_id", "station_id"]).group_by(["contest_id", "station_id"]).aggregate([])
        grouped = units.group_by("contest_id").aggregate([("station_id", "count")])
        counts = dict(zip(grouped["contest_id"].to_pylist(), grouped["station_id_count"].to_pylist(), strict=True))
    column = pa.array([counts.get(c, 0) for c in summary["contest_id"].to_pylist()], pa.int64())
    at = summary.schema.get_field_index("stations_withheld")
    return summary.set_column(at, "stations_withheld", column)
