"""The data-quality gate: Great Expectations 1.x checks on the folded tables (no Dagster, no dagster-ge).

``run_gate`` checks every table; ``checks_for_table`` / ``run_table_checks`` do one table, so Dagster can run
them as one asset check per table. Great Expectations is imported only when checks actually run.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.fold.tables import TABLE_NAMES
from pipelines.gate.checks import ALL_CHECKS, CheckSpec, checks_for_table
from pipelines.gate.report import CheckResult, GateReport
from pipelines.settings import DEFAULT_GATE_TOLERANCE

__all__ = [
    "ALL_CHECKS", "CheckResult", "CheckSpec", "GateReport", "checks_for_table", "run_gate",
    "new_gx_context", "run_table_checks",
]


def run_table_checks(name: str, table: pa.Table, context_tables: dict[str, pa.Table],
                     tolerance: float = DEFAULT_GATE_TOLERANCE, gx_context: Any = None) -> list[CheckResult]:
    """Run every check of one table.

    Args:
        name: the table's name (one of ``pipelines.fold.tables.TABLE_NAMES``).
        table: the table itself.
        context_tables: the tables its references resolve against (e.g. divisions, candidates); passing
            all folded tables is always enough.
        tolerance: relative tolerance for reported vs computed figures (national_summary); callers with
            settings pass ``settings.gate_tolerance`` (the default is that setting's default).
        gx_context: a context from ``new_gx_context()`` to reuse across tables (default: a new one).

    Returns:
        One result per ``checks_for_table(name)``, in that order.

    Raises:
        ConfigError: the table is unknown or a table its checks need is missing from ``context_tables``.
    """
    from pipelines.gate.runner import new_context, run_table

    return run_table(gx_context or new_context(), name, table, context_tables, tolerance)


def new_gx_context() -> Any:
    """An ephemeral Great Expectations context, to share between ``run_table_checks`` calls."""
    from pipelines.gate.runner import new_context

    return new_context()


def run_gate(tables: dict[str, pa.Table], tolerance: float = DEFAULT_GATE_TOLERANCE) -> GateReport:
    """Run every check of every table present in ``tables``.

    Args:
        tables: folded tables by name (``pipelines.fold.fold`` output).
        tolerance: relative tolerance for reported vs computed figures (national_summary); callers with
            settings pass ``settings.gate_tolerance`` (the default is that setting's default).

    Returns:
        The report; ``report.passed`` is False when a blocking check failed (``raise_if_failed`` raises
        GateFailed).

    Raises:
        ConfigError: a table a check needs for its references is missing.
    """
    from pipelines.gate.runner import new_context, run_table

    context = new_context()
    results: list[CheckResult] = []
    for name in TABLE_NAMES:
        if name in tables:
            results.extend(run_table(context, name, tables[name], tables, tolerance))
    return GateReport(checks=results, tolerance=tolerance)
