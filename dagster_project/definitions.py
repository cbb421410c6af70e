"""The one root of Ballotstream's Dagster code: ``dagster dev -m dagster_project.definitions``."""

from __future__ import annotations

import dagster as dg

from dagster_project.assets import folded_tables, release
from dagster_project.automation import hourly_publish, offsets_moved, publish_job
from dagster_project.checks import GATE_CHECKS
from dagster_project.resources import BallotstreamResource

defs = dg.Definitions(
    assets=[folded_tables, release],
    asset_checks=GATE_CHECKS,
    jobs=[publish_job],
    sensors=[offsets_moved],
    schedules=[hourly_publish],
    resources={"ballotstream": BallotstreamResource()},
)
