"""Assets: the folded tables (one asset each, from one fold, gated by one check per rule) and the release."""
# No `from __future__ import annotations`: Dagster reads the context annotation at definition time.

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import dagster as dg

from dagster_project import keys
from dagster_project.checks import CHECK_SPECS, check_result
from dagster_project.reads import EventsRead, steps_in_this_process
from dagster_project.resources import BallotstreamResource
from pipelines.fold.tables import KEYS, SCHEMAS, TABLE_NAMES
from pipelines.release import ahead, pipeline
from pipelines.release.manifest import TABLE_DESCRIPTIONS, column_docs
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings


def _column_schema(name: str) -> dg.TableSchema:
    docs = column_docs()
    return dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type), description=docs.get(f.name) or None)
                                   for f in SCHEMAS[name]])


@dg.multi_asset(
    name=keys.FOLD_OP,
    outs={
        "staged_snapshot": dg.AssetOut(key=keys.STAGED, is_required=False,
                                       description="The snapshot's offsets, its staged files and the gate's report."),
        **{name: dg.AssetOut(key=keys.TABLES[name], description=TABLE_DESCRIPTIONS.get(name), is_required=False)
           for name in TABLE_NAMES},
    },
    ins={"events": dg.AssetIn(key=keys.READ)},
    check_specs=CHECK_SPECS,
    # Subsettable so that nothing is required: an unchanged snapshot yields no table and no check result.
    can_subset=True,
    group_name=keys.GROUP,
)
def folded_tables(context: dg.AssetExecutionContext, ballotstream: BallotstreamResource, events: EventsRead
                  ) -> Iterator[Any]:
    """Combine the latest release's checkpoint with the segments the read steps saved (or, when the checkpoint
    cannot be fetched, read what it held too), fold the whole extraction into tables, and gate each table."""
    settings = ballotstream.settings()
    plan = events.plan
    staged = pipeline.stage(settings, plan.snapshot, run_id=context.run.run_id, base=plan.base, reads=events.ranges)
    staged.report = pipeline.gate(settings, staged, attempt_id=context.run.run_id)
    started = _release_ahead(context, settings, staged)
    try:
        ahead.wait_live(context.run.run_id)
        yield from _outputs(context, staged)
    except BaseException:
        if started:
            ahead.abandon(context.run.run_id)
        raise


def _release_ahead(context: dg.AssetExecutionContext, settings: Settings, staged: pipeline.Staged) -> bool:
    """Start the release in a thread (``pipelines.release.ahead``) when the gate passed and the release step runs
    next in this process; whether it was started."""
    # A run of the job's assets records an empty selection; a run of some of them, those.
    job = context.op_execution_context.job_def
    selected = keys.RELEASE in (context.run.asset_selection or job.asset_layer.selected_asset_keys)
    if not (staged.report.passed and selected and steps_in_this_process(context.op_execution_context)):
        return False
    # Its own timings and checkpoint to add to: this step pickles ``staged`` meanwhile, for the release step.
    mine = replace(staged, timings=dict(staged.timings),
                   next_checkpoint=replace(staged.next_checkpoint) if staged.next_checkpoint else None)
    run_id = context.run.run_id
    ahead.start(run_id, lambda live: (pipeline.release(settings, mine, mine.report, run_id=run_id, live=live), mine))
    return True


def _outputs(context: dg.AssetExecutionContext, staged: pipeline.Staged) -> Iterator[Any]:
    """The staged snapshot, each selected table's files and each selected rule's result."""
    selected = set(context.op_execution_context.selected_output_names)
    snapshot = {f"{t}[{p}]": f"{staged.snapshot.start[(t, p)]}..{end}" for (t, p), end in staged.snapshot.end.items()}
    yield dg.Output(staged, output_name="staged_snapshot", metadata={
        "events": staged.snapshot.total(),
        "snapshot": dg.MetadataValue.json(snapshot),
        "fingerprint": staged.snapshot.fingerprint(),
        "read_from": staged.base_reason,
        "folded": staged.fold_note,
        "events_read": staged.events_read,
        "gate_passed": staged.report.passed,
        "withheld_rules": dg.MetadataValue.json(staged.report.withheld_rules),
        **({"report_url": dg.MetadataValue.url(staged.report.report_url)} if staged.report.report_url else {}),
        **{k: round(v, 3) for k, v in staged.timings.items()},
    })
    for name, f in staged.files.items():
        if name not in selected:
            continue
        yield dg.Output(f, output_name=name, metadata={
            "dagster/row_count": f.rows,
            "dagster/column_schema": _column_schema(name),
            "dagster/uri": f.path.resolve().as_uri(),
            "bytes": f.bytes,
            "sha256": f.sha256,
            "key": ", ".join(KEYS[name]),
            "snapshot_fingerprint": staged.snapshot.fingerprint(),
        })
    selected_checks = context.selected_asset_check_keys
    for result in staged.report.checks:
        evaluation = check_result(result)
        if dg.AssetCheckKey(evaluation.asset_key, evaluation.check_name) in selected_checks:
            yield evaluation


@dg.asset(
    key=keys.RELEASE,
    ins={"staged": dg.AssetIn(key=keys.STAGED)},
    deps=list(keys.TABLES.values()),
    group_name=keys.GROUP,
)
def release(context: dg.AssetExecutionContext, ballotstream: BallotstreamResource, staged: pipeline.Staged
            ) -> dg.MaterializeResult:
    """The public release: Parquet tables, manifest, datapackage and validation report on S3, then latest.json,
    the catalog page and the ReleasePublished announcement.

    Runs only when every blocking (ERROR) gate check passed. When the run's steps share one process, the step
    that gated the snapshot has started it already, before recording its outputs and checks
    (``pipelines.release.ahead``): this step takes its outcome.
    """
    settings = ballotstream.settings()
    started = ahead.take(context.run.run_id)
    if started is None:
        manifest = pipeline.release(settings, staged, staged.report, run_id=context.run.run_id)
    else:  # started by the gating step: its copy of ``staged`` holds the release's timings
        waited = time.perf_counter()
        manifest, staged = started.result()
        staged.timings["release_ahead_wait_s"] = time.perf_counter() - waited
    tables = manifest["tables"]
    manifest_url = ReleaseStore(settings).manifest_url(manifest["release_id"])
    return dg.MaterializeResult(metadata={
        "release_id": manifest["release_id"],
        "dagster/uri": manifest_url,
        "manifest_url": dg.MetadataValue.url(manifest_url),
        "dagster/row_count": sum(t["rows"] for t in tables.values()),
        "rows": dg.MetadataValue.json({n: t["rows"] for n, t in tables.items()}),
        "uris": dg.MetadataValue.json({n: [manifest["base_url"] + f["key"] for f in t["files"]]
                                        for n, t in tables.items()}),
        "sha256": dg.MetadataValue.json({n: t["sha256"] for n, t in tables.items()}),
        "previous_release": manifest["previous_release"] or "",
        "withheld_units": manifest["withheld"]["units"],
        "read_from": manifest["read"]["from"],
        "events_read": manifest["read"]["events_read"],
        "checkpoint": manifest["checkpoint"] or "",
        "timings_s": dg.MetadataValue.json({k: round(v, 3) for k, v in staged.timings.items()}),
    })
