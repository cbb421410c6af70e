"""The one root of Ballotstream's Dagster code: ``dagster dev -m dagster_project.definitions``."""

from __future__ import annotations

import dagster as dg

from dagster_project.assets import folded_tables, release
from dagster_project.automation import clean_up_sensors, hourly_publish, offsets_moved, publish_job
from dagster_project.io import RunScopedIOManager
from dagster_project.logs import run_log_file
from dagster_project.reads import events_read
from dagster_project.resources import BallotstreamResource
from dagster_project.topics import event_topics

defs = dg.Definitions(
    assets=[event_topics, events_read, folded_tables, release],
    jobs=[publish_job],
    sensors=[offsets_moved, *clean_up_sensors],
    schedules=[hourly_publish],
    resources={"ballotstream": BallotstreamResource(), "io_manager": RunScopedIOManager()},
    loggers={"console": dg.colored_console_logger, "file": run_log_file},
)
