"""One blocking Great Expectations check per table. A failure stops the release asset downstream, stores the
validation report in the bucket, and leaves ``latest`` untouched."""


import dagster as dg

from dagster_project import keys
from dagster_project.resources import BallotstreamResource
from pipelines.fold.tables import TABLE_NAMES
from pipelines.gate import checks_for_table
from pipelines.release import pipeline as core
from pipelines.release.store import ReleaseStore


def _gate_check(table: str) -> dg.AssetChecksDefinition:
    rules = "; ".join(spec.description for spec in checks_for_table(table))

    @dg.asset_check(
        asset=keys.TABLES[table],
        name=keys.gate_check_name(table),
        blocking=True,
        additional_ins={"staged": dg.AssetIn(key=keys.STAGED)},
        description=f"Great Expectations gate on {table}: {rules}",
    )
    def gate(context: dg.AssetCheckExecutionContext, ballotstream: BallotstreamResource, staged: core.Staged
             ) -> dg.AssetCheckResult:
        settings = ballotstream.settings()
        results = core.check_table(settings, staged, table)
        core.save_check_results(staged, table, results)
        failed = [r for r in results if r.blocking and not r.success]
        metadata: dict[str, object] = {
            "checks": len(results),
            "failed": dg.MetadataValue.json({r.name: r.failing_rows for r in results if not r.success}),
        }
        if failed:
            # Store what is known so far (this and earlier tables) so the failure is visible outside Dagster.
            report = core.load_gate_report(settings, staged)
            url = ReleaseStore(settings).store_blocked_report(context.run.run_id, report.to_dict())
            metadata["report_url"] = dg.MetadataValue.url(url)
            metadata["sample"] = dg.MetadataValue.json(failed[0].sample[:5])
        return dg.AssetCheckResult(passed=not failed, metadata=metadata)

    return gate


GATE_CHECKS = [_gate_check(table) for table in TABLE_NAMES]

__all__ = ["GATE_CHECKS"]
