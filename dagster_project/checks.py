"""The gate's rules as Dagster asset checks: one per rule, on the rule's table; ERROR blocks, WARN does not (a
blocking rule whose failing tallies were withheld instead reports WARN, with ``withheld_units``)."""

import dagster as dg

from dagster_project import keys
from pipelines.gate import ALL_CHECKS, CheckResult

CHECK_SPECS = [
    dg.AssetCheckSpec(spec.name, asset=keys.TABLES[spec.table], description=spec.description,
                      blocking=spec.blocking)
    for spec in ALL_CHECKS
]


def check_result(result: CheckResult) -> dg.AssetCheckResult:
    """One rule's outcome, with its failing-row count and a sample of failing rows as metadata."""
    sample = result.json_sample()
    return dg.AssetCheckResult(
        asset_key=keys.TABLES[result.table], check_name=result.name, passed=result.success,
        severity=dg.AssetCheckSeverity.ERROR if result.blocking and not result.withheld
        else dg.AssetCheckSeverity.WARN,
        metadata={"failing_rows": result.failing_rows, "checked_rows": result.checked_rows,
                  "rule": result.rule, **({"sample": dg.MetadataValue.json(sample)} if sample else {}),
                  **({"withheld_units": result.withheld} if result.withheld else {})},
    )
