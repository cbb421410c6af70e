"""The read as Dagster steps: plan the partition ranges, read each range in its own step, gather what they saved.

Each range step saves its events as a checkpoint segment and uploads it to the bucket's private checkpoints
prefix, so the step that folds (``folded_tables``) can fetch it from any machine; between steps only offsets,
segment ids and checksums pass. With a multi-process or Kubernetes executor the range steps run side by side.
"""
# No `from __future__ import annotations`: Dagster reads the context annotation at definition time.

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.definitions.executor_definition import execute_in_process_executor

from dagster_project import keys
from dagster_project.resources import BallotstreamResource
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import cdf_ahead, checkpoint, pipeline
from pipelines.release.store import ReleaseStore


class PublishConfig(dg.Config):
    """Run configuration of the publish job (on its first step, ``plan_read``)."""

    force: bool = False  # publish even when the snapshot equals the latest release's
    full: bool = False  # read every event from offset 0, not from the latest release's checkpoint


@dataclass(frozen=True)
class EventsRead:
    """The value of the events-read asset: the run's plan and, per range, the segment its step saved."""

    plan: pipeline.Plan
    ranges: list[checkpoint.RangeRead]


def _offsets(snap: Snapshot) -> dict[str, str]:
    return {f"{t}[{p}]": f"{snap.start[(t, p)]}..{end}" for (t, p), end in sorted(snap.end.items())}


# Executors that run every step of a run in the run's own process (``execute_in_process`` uses the last).
IN_PROCESS_EXECUTORS = (dg.in_process_executor.name, execute_in_process_executor.name)


def steps_in_this_process(context: dg.OpExecutionContext) -> bool:
    """Whether the run's next steps run in this process: an in-process executor, or the default executor told
    to be one."""
    name = context.job_def.executor_def.name
    chosen = (context.run_config.get("execution") or {}).get("config") or {}
    return name in IN_PROCESS_EXECUTORS or (name == dg.multi_or_in_process_executor.name and "in_process" in chosen)


@dg.op(
    name=keys.PLAN_OP,
    ins={name.rsplit(".", 1)[-1]: dg.In(dg.Nothing) for name in keys.TOPICS},
    out={"plan": dg.Out(is_required=False, description="The snapshot and where its read starts."),
         "ranges": dg.DynamicOut(description="One range of partitions' offsets per read step.")},
)
def plan_read(context: dg.OpExecutionContext, config: PublishConfig, ballotstream: BallotstreamResource
              ) -> Iterator[Any]:
    """Capture the topics' end offsets and split what the latest release's checkpoint lacks (or everything) into
    partition ranges. Yields nothing when the snapshot equals the latest release's, unless ``force``."""
    settings = ballotstream.settings()
    plan = pipeline.plan(settings, force=config.force, full=config.full)
    if plan.unchanged:
        context.log.info(plan.skip_message())
        return
    context.log.info(f"read: {plan.base.reason}")
    ranges = checkpoint.plan_ranges(settings, plan.snapshot, plan.base)
    if plan.base.checkpoint is not None and steps_in_this_process(context):
        # The step that folds runs in this process after the read steps: its checkpoint's copies are checked
        # and mapped meanwhile (``checkpoint.load_ahead``), and for a small read the NIST documents' build gets
        # its interpreter ready (``cdf_ahead.prepare``).
        checkpoint.load_ahead(plan.base.checkpoint.segments, checkpoint.cache_folder(settings))
        cdf_ahead.prepare(sum(r.total() for r in ranges))
    yield dg.Output(plan, "plan", metadata={"read_from": plan.base.reason, "ranges": len(ranges),
                                            "events_to_read": sum(r.total() for r in ranges)})
    for i, offsets in enumerate(ranges):
        yield dg.DynamicOutput(offsets, output_name="ranges", mapping_key=f"range_{i}")


@dg.op(name=keys.READ_RANGE_OP)
def read_range(context: dg.OpExecutionContext, ballotstream: BallotstreamResource, offsets: Snapshot
               ) -> dg.Output[checkpoint.RangeRead]:
    """Read one range of offsets, save it as a checkpoint segment and upload that to the bucket (in a thread the
    release step waits for, when the run's steps share this process)."""
    settings = ballotstream.settings()
    started = time.perf_counter()
    # The release step waits for a segment uploaded in the background when it runs in this process.
    done = checkpoint.read_range(settings, offsets, checkpoint.cache_folder(settings), store=ReleaseStore(settings),
                                 upload_later=steps_in_this_process(context))
    return dg.Output(done, metadata={
        "offsets": dg.MetadataValue.json(_offsets(offsets)),
        "events": done.events,
        "seconds": round(time.perf_counter() - started, 3),
        "segments": dg.MetadataValue.json([segment.segment_id for segment in done.segments]),
        "workers": done.workers,
        **{k: round(v, 3) for k, v in done.timings.items()},
    })


@dg.op(name=keys.GATHER_OP)
def gather_ranges(plan: pipeline.Plan, ranges: list[checkpoint.RangeRead]) -> dg.Output[EventsRead]:
    """The plan and the ranges' segments (in one order whatever order the steps ended in), for the step that
    folds."""
    ranges = sorted(ranges, key=lambda r: sorted(r.offsets.end))
    return dg.Output(EventsRead(plan, ranges), metadata={
        "read_from": plan.base.reason,
        "events_read": sum(r.events for r in ranges),
        "ranges": len(ranges),
        "segments": dg.MetadataValue.json([segment.segment_id for r in ranges for segment in r.segments]),
        **{k: round(v, 3) for k, v in checkpoint.read_timings(ranges).items()},
    })


def _read_graph(**topics: Any) -> Any:
    plan, ranges = plan_read(**topics)
    return gather_ranges(plan, ranges.map(read_range).collect())


events_read = dg.graph_asset(
    key=keys.READ,
    ins={name.rsplit(".", 1)[-1]: dg.AssetIn(key, dagster_type=dg.Nothing) for name, key in keys.TOPICS.items()},
    group_name=keys.GROUP,
    description="The events this run read from Kafka: the snapshot's plan and, per partition range, the "
                "checkpoint segment its step saved (ids and checksums; the events are in the bucket).",
)(_read_graph)
