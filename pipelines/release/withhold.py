"""Withhold, don't freeze: when the only blocking failures are rules configured to withhold
(``BALLOTSTREAM_GATE_WITHHOLD``), the publish folds again without the failing tallies and gates the result
(``pipelines.release.pipeline.gate``); this module finds those tallies and merges the two gates' reports.

The unit withheld is a tally (election_id, contest_id, station_id). Its keys come from the failing rows of the
rule's check frame (all of them, not the report's sample). Nothing is remembered between publishes: every publish
decides again from the current data, so a correction superseding a withheld tally brings it back.
"""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import CheckError
from pipelines.fold import tables as t
from pipelines.fold.withheld import REQUEST_SCHEMA, UNIT_COLUMNS
from pipelines.gate import CheckResult, GateReport
from pipelines.gate.checks import CheckSpec, checks_for_table
from pipelines.gate.frames import check_frame
from pipelines.gate.suspects import failing
from pipelines.settings import Settings


def applies(settings: Settings, report: GateReport) -> bool:
    """True when the gate blocked and every blocking failure is a rule configured to withhold."""
    failures = report.blocking_failures
    return bool(failures) and all(c.qualified_name in settings.withheld_rules for c in failures)


def _spec(result: CheckResult) -> CheckSpec:
    return next(s for s in checks_for_table(result.table) if s.name == result.name)


def failing_units(settings: Settings, result: CheckResult, table: pa.Table, context: dict[str, pa.Table]
                  ) -> pa.Table:
    """Every tally ``result``'s rule failed on (``REQUEST_SCHEMA``: unit, rule, reason), one row per tally.

    Args:
        settings: for the gate tolerance.
        result: the failed rule.
        table: the rule's table as the gate read it; context: the other tables its checks read.

    Raises:
        CheckError: the rows flagged here are not exactly the ones the gate counted (then nothing is withheld
            on a guess: the caller blocks).
    """
    spec = _spec(result)
    frame = check_frame(result.table, table, {**context, result.table: table}, settings.gate_tolerance)
    mask = failing(spec, frame[spec.column])
    flagged = pc.sum(mask).as_py() or 0
    # The pre-pass flags a superset of GX's failures; equal counts mean equal sets.
    if flagged != result.failing_rows:
        raise CheckError(f"{result.qualified_name}: {flagged} rows flagged, the gate counted {result.failing_rows}")
    rows = frame.filter(mask)
    if result.table == t.CONTEST_RESULTS:
        # Roll-ups fail with their stations; withholding the stations fixes them, the second gate checks that.
        rows = rows.filter(pc.equal(rows["level"], t.LEVEL_STATION))
        rows = rows.append_column("station_id", rows["unit_id"])
    units = rows.select(list(UNIT_COLUMNS)).cast(pa.schema([(c, pa.string()) for c in UNIT_COLUMNS]))
    units = units.group_by(list(UNIT_COLUMNS)).aggregate([])
    n = units.num_rows
    return pa.table({**{c: units[c] for c in UNIT_COLUMNS}, "rule": pa.array([result.qualified_name] * n),
                     "reason": pa.array([spec.description] * n)}, schema=REQUEST_SCHEMA)


def merge(first: GateReport, second: GateReport, withheld: dict[str, int]) -> GateReport:
    """The second gate's report, where a withheld rule that now passes shows its first failure and what it
    withheld (a withheld rule still failing stays a blocking failure)."""
    before = {c.qualified_name: c for c in first.checks}
    checks = [replace(before[c.qualified_name], withheld=withheld[c.qualified_name])
              if c.qualified_name in withheld and c.success else c for c in second.checks]
    return replace(second, checks=checks)
