"""When to publish: a sensor when the event topics' end offsets moved, and an hourly schedule (off by default)."""


import json

import dagster as dg

from dagster_project import keys
from pipelines.kafka import snapshot
from pipelines.release.pipeline import event_topic_names
from pipelines.settings import Settings

publish_job = dg.define_asset_job(
    keys.PUBLISH_JOB,
    selection=dg.AssetSelection.assets(keys.STAGED, keys.RELEASE, *keys.TABLES.values()),
    # One process: the staged tables are large, and the checks share the staging folder.
    executor_def=dg.in_process_executor,
    description="Fold the event log, gate every table, publish a release.",
)


@dg.sensor(job=publish_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def offsets_moved(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Request a publish when any event topic's end offset moved since the last request."""
    settings = Settings.from_env()
    snap = snapshot.capture(settings, event_topic_names(settings))
    ends = {f"{t}[{p}]": end for (t, p), end in sorted(snap.end.items())}
    cursor = json.dumps(ends, sort_keys=True)
    if context.cursor == cursor:
        return dg.SkipReason("end offsets unchanged since the last publish request")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=snap.fingerprint())], cursor=cursor)


hourly_publish = dg.ScheduleDefinition(
    name="hourly_publish", job=publish_job, cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Publish every hour, whether or not the sensor is on.",
)
