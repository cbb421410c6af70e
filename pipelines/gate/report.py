"""The gate's outcome: one result per check, and the validation report document published beside a release."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from pipelines.errors import GateFailed

MAX_SAMPLE_ROWS = 10


@dataclass(frozen=True)
class CheckResult:
    """How one check went.

    Attributes:
        name: check name (a ``pipelines.gate.names`` constant), unique within its table.
        table: the table checked.
        rule: what the check requires, in words.
        blocking: whether a failure withholds the release.
        success: whether every row passed.
        failing_rows: how many rows failed (for station_results: how many stations).
        checked_rows: how many rows were checked.
        sample: up to ``MAX_SAMPLE_ROWS`` failing rows, each with its event id and trace columns.
        withheld: tallies withheld from the release because this rule failed on them
            (``BALLOTSTREAM_GATE_WITHHOLD``); a failure that withheld does not block.
    """

    name: str
    table: str
    rule: str
    blocking: bool
    success: bool
    failing_rows: int
    checked_rows: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    withheld: int = 0

    @property
    def qualified_name(self) -> str:
        """``table.name``."""
        return f"{self.table}.{self.name}"

    def json_sample(self) -> list[dict[str, Any]]:
        """The failing-row sample with JSON-ready values."""
        return json_rows(self.sample)


def json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sample rows with JSON-ready values (dates as ISO text, NaN as null, numpy scalars as Python's)."""
    return [{k: _json_value(v) for k, v in row.items()} for row in rows]


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


@dataclass(frozen=True)
class GateReport:
    """Every check's result; the release may be published only when ``passed``."""

    checks: list[CheckResult]
    tolerance: float
    report_url: str | None = None  # where the report of a blocked publish was stored

    @property
    def passed(self) -> bool:
        """True when no blocking check failed."""
        return not self.blocking_failures

    @property
    def blocking_failures(self) -> list[CheckResult]:
        """The blocking checks that failed."""
        return [c for c in self.checks if c.blocking and not c.success and not c.withheld]

    @property
    def withheld_rules(self) -> dict[str, int]:
        """Rules whose failures withheld tallies instead of blocking: ``table.rule`` -> tallies withheld."""
        return {c.qualified_name: c.withheld for c in self.checks if c.withheld}

    def result(self, table: str, name: str) -> CheckResult:
        """The result of check ``name`` on ``table`` (KeyError when it did not run)."""
        for c in self.checks:
            if c.table == table and c.name == name:
                return c
        raise KeyError(f"{table}.{name}")

    def to_dict(self) -> dict[str, Any]:
        """The validation report as plain data."""
        checks = []
        for c in self.checks:
            d = asdict(c)
            d["sample"] = c.json_sample()
            checks.append(d)
        return {
            "passed": self.passed, "tolerance": self.tolerance,
            "checks_run": len(self.checks), "checks_failed": sum(not c.success for c in self.checks),
            "blocking_failed": [c.qualified_name for c in self.blocking_failures],
            "withheld": self.withheld_rules,
            "checks": checks,
        }

    def to_json(self) -> str:
        """The validation report document (stable key order, so equal outcomes give equal bytes)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)

    def summary_lines(self) -> list[str]:
        """One line per check, failures first, then a verdict line."""
        ordered = sorted(self.checks, key=lambda c: (c.success, not c.blocking, c.table, c.name))
        lines = []
        for c in ordered:
            verdict = "ok  " if c.success else ("FAIL" if c.blocking and not c.withheld else "WARN")
            held = f" ({c.withheld:,} tallies withheld)" if c.withheld else ""
            lines.append(f"{verdict} {c.qualified_name:<52} {c.failing_rows:>9,}/{c.checked_rows:<10,} {c.rule}{held}")
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.blocking_failures)} blocking)"
        lines.append(f"gate {verdict}: {len(self.checks)} checks, tolerance {self.tolerance:g}")
        return lines

    def raise_if_failed(self) -> None:
        """Raise GateFailed naming the blocking checks that failed."""
        if not self.passed:
            raise GateFailed("blocking checks failed: " + ", ".join(
                f"{c.qualified_name} ({c.failing_rows} rows)" for c in self.blocking_failures))
