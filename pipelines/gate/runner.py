"""Run a table's checks with Great Expectations 1.x: one ephemeral context (one pandas data source and
dataframe asset in it, reused for every table), one suite per table, all of its expectations evaluated in
one validation of the table's check frame.

GX sees only the frame's *suspect* rows (``pipelines.gate.suspects``), indexed by their row numbers in the
full frame, so failing samples point at the real rows and ``checked_rows`` is the full frame's length.

GX takes seconds to import, so it is imported on first use, not when ``pipelines.gate`` is.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from pipelines.errors import CheckError
from pipelines.fold import tables as t
from pipelines.gate.checks import KEY_COLUMN, CheckSpec, checks_for_table
from pipelines.gate.frames import check_frame, decoded
from pipelines.gate.report import MAX_SAMPLE_ROWS, CheckResult
from pipelines.gate.suspects import suspect_rows

_BOOLEAN_FORMAT = {"result_format": "BOOLEAN_ONLY"}
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_SAMPLE_ROWS}
_COMPLETE_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": MAX_SAMPLE_ROWS}
_SOURCE, _ASSET, _BATCH = "ballotstream_gate", "check_frame", "whole_frame"


def _gx() -> Any:
    # Nothing leaves the machine: GX's usage analytics are off unless someone turned them on on purpose.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    return gx


def new_context() -> Any:
    """An ephemeral GX context with progress bars off (they would flood Dagster's logs) and no docs site.

    GX's default ephemeral config reserves a temporary directory for a Data Docs site; the gate never builds
    docs (it writes its own report), so the site is left out and nothing is created under /tmp.
    """
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _batch_definition(context: Any) -> Any:
    """The context's one whole-dataframe batch definition, created on first use.

    Each ``add`` to an ephemeral context re-serialises the project config; one source for all tables
    (instead of a source, suite and validation definition per table) avoids most of that fixed cost.
    """
    try:
        return context.data_sources.get(_SOURCE).get_asset(_ASSET).get_batch_definition(_BATCH)
    except (KeyError, LookupError, ValueError):
        pass
    source = context.data_sources.add_pandas(_SOURCE)
    return source.add_dataframe_asset(_ASSET).add_batch_definition_whole_dataframe(_BATCH)


def _sample_columns(table: str, spec: CheckSpec, frame_columns: list[str]) -> list[str]:
    wanted = [t.EVENT_ID_COLUMNS.get(table) or "", *t.TRACE_COLUMNS[1:], *t.KEYS.get(table, ()), spec.column]
    if table == t.STATION_RESULTS:
        wanted += ["rows", "votes_sum", "valid_ballots"]
    if table == t.NATIONAL_SUMMARY:
        wanted += ["computed", "reported", "qualifier", "difference"]
    out: list[str] = []
    for col in wanted:
        if col and col in frame_columns and col not in out and col != KEY_COLUMN:
            out.append(col)
    return out


def _plain(value: Any) -> Any:
    """pandas/numpy scalars -> JSON-friendly Python values (NaN/NA -> None)."""
    try:
        import pandas as pd

        if value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def _validate(context: Any, table: str, specs: tuple[CheckSpec, ...], frame: pa.Table, result_format: dict[str, Any]
              ) -> tuple[Any, dict[str, Any]]:
    """GX's validation of ``frame``'s suspect rows against ``specs``: (the rows GX saw, result by check name)."""
    gx = _gx()
    import great_expectations.expectations as gxe

    needed = sorted({s.column for s in specs} | {c for s in specs for c in _sample_columns(table, s, frame.column_names)})
    rows = suspect_rows(frame, specs)
    df = decoded(frame.select(needed).take(pa.array(rows, type=pa.int64()))).to_pandas()
    df.index = rows  # GX's unexpected index list then names rows of the full frame
    suite = gx.ExpectationSuite(name=f"{table}_suite")
    for spec in specs:
        cls = getattr(gxe, spec.expectation)
        suite.add_expectation(cls(column=spec.column, meta={"check": spec.name}, **spec.kwargs))
    batch = _batch_definition(context).get_batch(batch_parameters={"dataframe": df})
    outcome = batch.validate(suite, result_format=result_format)
    by_check = {r.expectation_config.meta["check"]: r for r in outcome.results}
    for spec in specs:
        info = by_check[spec.name].exception_info
        if info and info.get("raised_exception"):
            raise CheckError(f"GX could not evaluate {table}.{spec.name}: {info['exception_message']}")
    return df, by_check


def _failures(context: Any, table: str, specs: tuple[CheckSpec, ...], frame: pa.Table, result_format: dict[str, Any]
              ) -> tuple[Any, dict[str, Any]]:
    """``_validate`` of the specs GX fails, in ``result_format``; of the others, nothing (they passed).

    GX judges every spec first with BOOLEAN_ONLY, then only the failed ones again for their counts and rows: a
    clean table (every table, most nights) costs GX no metric of unexpected values, about half its time per
    expectation (at a million stations, 10,000 new tallies: seven validations of a publish's gate)."""
    _, verdicts = _validate(context, table, specs, frame, _BOOLEAN_FORMAT)
    failed = tuple(spec for spec in specs if not verdicts[spec.name].success)
    return _validate(context, table, failed, frame, result_format) if failed else (None, {})


def _row_number(idx: Any) -> int:
    return int(idx.get("index", idx) if isinstance(idx, dict) else idx)


def sample_rows(df: Any, table: str, spec: CheckSpec, frame_columns: list[str], rows: Any) -> list[dict[str, Any]]:
    """The sample of ``spec``'s failing ``rows`` (frame row numbers, at most ``MAX_SAMPLE_ROWS``) from ``df``."""
    cols = _sample_columns(table, spec, frame_columns)
    return [{c: _plain(v) for c, v in zip(cols, df.loc[_row_number(idx), cols], strict=True)}
            for idx in list(rows)[:MAX_SAMPLE_ROWS]]


def run_specs(context: Any, table: str, specs: tuple[CheckSpec, ...], frame: pa.Table) -> list[CheckResult]:
    """Validate ``frame`` against ``specs`` with one GX validation definition.

    Args:
        context: a GX context from ``new_context``.
        table: the table the frame was built from.
        specs: the checks to run (all of ``table``).
        frame: the check frame (see ``pipelines.gate.frames``).

    Returns:
        One CheckResult per spec, in spec order.
    """
    df, failed = _failures(context, table, specs, frame, _RESULT_FORMAT)
    results = []
    for spec in specs:
        r = failed.get(spec.name)
        sample = [] if r is None or r.success else sample_rows(df, table, spec, frame.column_names,
                                                               r.result.get("partial_unexpected_index_list") or [])
        results.append(CheckResult(name=spec.name, table=table, rule=spec.description, blocking=spec.blocking,
                                   success=r is None or bool(r.success),
                                   failing_rows=0 if r is None else int(r.result.get("unexpected_count") or 0),
                                   checked_rows=frame.num_rows, sample=sample))
    return results


def failing_rows(context: Any, table: str, specs: tuple[CheckSpec, ...], frame: pa.Table
                 ) -> tuple[Any, dict[str, list[int]]]:
    """Every row of ``frame`` that GX rejects, per check (ascending frame row numbers), and the rows GX saw
    (for ``sample_rows``): what the incremental gate needs to count failures per file."""
    df, failed = _failures(context, table, specs, frame, _COMPLETE_FORMAT)
    return df, {spec.name: sorted(_row_number(i) for i in failed[spec.name].result.get("unexpected_index_list") or [])
                if spec.name in failed else [] for spec in specs}


def run_table(context: Any, table_name: str, table: pa.Table, tables: dict[str, pa.Table],
              tolerance: float) -> list[CheckResult]:
    """Build the check frame of ``table_name`` and run all of its checks."""
    specs = checks_for_table(table_name)
    frame = check_frame(table_name, table, {**tables, table_name: table}, tolerance)
    return run_specs(context, table_name, specs, frame)
