"""Run the publish job in-process (what ``ballotstream publish`` does) and say what happened."""

import os
from dataclasses import dataclass
from typing import Any

import dagster as dg

from dagster_project import keys
from dagster_project.definitions import defs
from pipelines.errors import BallotstreamError, GateFailed
from pipelines.gate import GateReport
from pipelines.release import pipeline as core
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings


@dataclass(frozen=True)
class PublishOutcome:
    run_id: str
    manifest: dict[str, Any]
    report: GateReport


def _instance() -> dg.DagsterInstance:
    # A persistent instance when DAGSTER_HOME is set (make sets it), so runs show up in `make ui`.
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def run_publish(settings: Settings) -> PublishOutcome:
    """Execute the publish job for ``settings.dataset``.

    Raises:
        GateFailed: a blocking check failed (the message names the checks and the stored report's URL).
        BallotstreamError: a step failed for another reason (the step's error message).
    """
    job = defs.resolve_job_def(keys.PUBLISH_JOB)
    with _instance() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            run_config={
                "resources": {"ballotstream": {"config": {"dataset": settings.dataset}}},
                # The CLI prints its own summary; step-by-step logs stay in the instance (make ui).
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
        )
        materialized = [
            m for m in result.get_asset_materialization_events() if m.asset_key == keys.RELEASE
        ]
        staged: core.Staged | None = None
        try:
            staged = result.output_for_node("folded_tables", "staged_snapshot")
        except dg.DagsterError:  # the fold step failed: no staged snapshot to report on
            staged = None
        if materialized:
            release_id = materialized[0].materialization.metadata["release_id"].value
            manifest = ReleaseStore(settings).manifest(str(release_id))
            assert manifest is not None
            return PublishOutcome(result.run_id, manifest, core.load_gate_report(settings, staged))
        if staged is not None:
            report = core.load_gate_report(settings, staged)
            if not report.passed:
                url = settings.public_url(f"{settings.dataset}/reports/{result.run_id}/validation.json")
                failed = ", ".join(f"{c.qualified_name} ({c.failing_rows} rows)" for c in report.blocking_failures)
                raise GateFailed(f"release blocked by the gate: {failed}; latest is unchanged; report: {url}",
                                 report=report)
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data.error is not None:
                error = event.step_failure_data.error
                while error.cause is not None:  # Dagster wraps the user error: report the original
                    error = error.cause
                message = error.message.strip().splitlines()[-1]
                raise BallotstreamError(f"step {event.step_key} failed: {message}")
        raise BallotstreamError(f"publish run {result.run_id} did not produce a release")
