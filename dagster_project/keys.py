"""Asset keys, check names, the job and the run-config keys, declared once."""

from __future__ import annotations

import dagster as dg

from pipelines.contract.topics import EVENT_TOPICS
from pipelines.fold.tables import TABLE_NAMES

GROUP = "ballotstream"
# The event topics, as observable source assets: Dagster shows lineage from them to the tables.
TOPICS: dict[str, dg.AssetKey] = {t.name: dg.AssetKey([GROUP, "topics", t.name]) for t in EVENT_TOPICS}
# What the run read from Kafka: one checkpoint segment per partition range (a graph of steps, see assets.py).
READ = dg.AssetKey([GROUP, "events_read"])
STAGED = dg.AssetKey([GROUP, "staged_snapshot"])
RELEASE = dg.AssetKey([GROUP, "release"])
TABLES: dict[str, dg.AssetKey] = {name: dg.AssetKey([GROUP, name]) for name in TABLE_NAMES}
PUBLISH_JOB = "publish"
# Sensors that remove a finished publish run's staging folder and step outputs, one per way a run ends.
CLEAN_UP_SENSORS = {status: f"clean_up_publish_run_{status.value.lower()}"
                    for status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                                   dg.DagsterRunStatus.CANCELED)}
FOLD_OP = "folded_tables"
# The steps of the READ asset: plan the ranges, read each (one step per range), gather their segments.
READ_NODE = "__".join(READ.path)
PLAN_OP = "plan_read"
READ_RANGE_OP = "read_range"
GATHER_OP = "gather_ranges"
OBSERVE_TOPICS_OP = "event_topics"
# Gate check names are the rule names of pipelines.gate (one asset check per rule, on the rule's table).
