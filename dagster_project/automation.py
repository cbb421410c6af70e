"""When to publish: a sensor when the event topics' end offsets moved, and an hourly schedule (both off by
default). Either way the run's first step skips a snapshot the latest release already holds."""

import dagster as dg

from dagster_project import keys
from dagster_project.io import remove_run_outputs
from dagster_project.resources import BallotstreamResource
from pipelines.errors import NothingToPublish
from pipelines.release import pipeline

publish_job = dg.define_asset_job(
    keys.PUBLISH_JOB,
    selection=dg.AssetSelection.assets(*keys.TOPICS.values(), keys.READ, keys.STAGED, keys.RELEASE,
                                       *keys.TABLES.values()),
    # In one process unless a run's config picks `multiprocess` (docs/deployment.md): steps hand each other
    # small values (offsets, segment ids, the staged files' paths on this machine) through the run's storage.
    executor_def=dg.multi_or_in_process_executor,
    config={"execution": {"config": {"in_process": {}}}},
    description="Observe the event topics, read the new events (one step per partition range), fold the event "
                "log, gate every table, publish a release.",
)


@dg.sensor(job=publish_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def offsets_moved(context: dg.SensorEvaluationContext, ballotstream: BallotstreamResource
                  ) -> dg.SensorResult | dg.SkipReason:
    """Request a publish when the event topics hold events the latest release does not."""
    try:
        plan = pipeline.plan(ballotstream.settings())
    except NothingToPublish as exc:
        return dg.SkipReason(str(exc))
    if plan.unchanged:
        return dg.SkipReason(plan.skip_message())
    fingerprint = plan.snapshot.fingerprint()
    if context.cursor == fingerprint:
        return dg.SkipReason(f"a publish of snapshot {fingerprint} was already requested")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=fingerprint)], cursor=fingerprint)


hourly_publish = dg.ScheduleDefinition(
    name="hourly_publish", job=publish_job, cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Publish every hour, whether or not the sensor is on (an unchanged snapshot publishes nothing).",
)


def _clean_up_sensor(status: dg.DagsterRunStatus) -> dg.SensorDefinition:
    @dg.run_status_sensor(name=keys.CLEAN_UP_SENSORS[status], run_status=status, monitored_jobs=[publish_job],
                          default_status=dg.DefaultSensorStatus.RUNNING,
                          description="Remove a publish run's staging folder and step outputs once it has ended "
                                      "(ballotstream publish does so itself; runs the UI or a sensor launched do not).")
    def clean_up(context: dg.RunStatusSensorContext, ballotstream: BallotstreamResource) -> None:
        run_id = context.dagster_run.run_id
        pipeline.remove_run_staging(ballotstream.settings(), run_id)
        remove_run_outputs(run_id)

    return clean_up


clean_up_sensors = [_clean_up_sensor(status) for status in keys.CLEAN_UP_SENSORS]
