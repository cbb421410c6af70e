"""Run the publish job in-process (what ``ballotstream publish``, the tests and the benchmarks do) and say what
happened. Dagster's own log lines go to the run's log file, not the console."""

import contextlib
import importlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project import keys
from dagster_project.definitions import defs
from dagster_project.io import remove_run_outputs
from dagster_project.resources import BallotstreamResource
from pipelines.errors import BallotstreamError, PublishConflict
from pipelines.gate import GateReport, new_gx_context
from pipelines.release import ahead, pipeline
from pipelines.release.s3 import s3_client
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings

# A run executed in this process, or with each step in a process of its own.
RunResult = dg.ExecuteInProcessResult | dg.JobExecutionResult


@dataclass(frozen=True)
class PublishOutcome:
    """What one run of the publish job did: published ``manifest``, or nothing (``skipped``)."""

    run_id: str
    log_file: Path
    manifest: dict[str, Any] | None = None
    report: GateReport | None = None
    skipped: str | None = None  # why nothing was published
    timings: dict[str, float] = field(default_factory=dict)
    # What Dagster recorded of each gate rule: (table, rule) -> (passed, severity)
    checks: dict[tuple[str, str], tuple[bool, str]] = field(default_factory=dict)


@contextlib.contextmanager
def _instance(multiprocess: bool) -> Iterator[dg.DagsterInstance]:
    # A persistent instance when DAGSTER_HOME is set (make sets it), so runs show up in `make ui`. Steps in
    # processes of their own need one too: without DAGSTER_HOME, a temporary one.
    if os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as instance:
            yield instance
    elif multiprocess:
        with tempfile.TemporaryDirectory(prefix="ballotstream-dagster-") as home, \
                dg.DagsterInstance.local_temp(home) as instance:
            yield instance
    else:
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance


def resolved_publish_job() -> dg.JobDefinition:
    """The publish job (a module-level function: what ``dg.reconstructable`` loads again in each step's
    process under the multi-process executor)."""
    return defs.resolve_job_def(keys.PUBLISH_JOB)


# Modules a publish imports on first use beyond the job's definition and Great Expectations.
# (pipelines.release.diff is not one any more: the scoped stage imports it, with the job.)
LAZY_MODULES = ("great_expectations.expectations", "pipelines.release.announce", "pipelines.release.catalog",
                "pipelines.release.withhold")


def warm_up(settings: Settings | None = None) -> None:
    """Load now what a publish loads on first use: the job's definition, the instance's storage (Dagster's storage
    modules and alembic, most of a second), Great Expectations (the gate imports it lazily; seconds), the
    release step's lazily imported modules and, given ``settings``, the bucket's client (built once per process:
    0.1-0.3 s). A publisher that waits for events (``publish --watch``) calls it before it waits: the first result
    of the night is then published as fast as the next."""
    if settings is not None:
        s3_client(settings)
    resolved_publish_job()
    with _instance(multiprocess=False):
        pass
    new_gx_context()
    for module in LAZY_MODULES:
        importlib.import_module(module)


def log_file_for(run_id: str) -> Path:
    """Where a run's log lines go: beside the Dagster instance, or in the temp folder without one."""
    home = os.environ.get("DAGSTER_HOME")
    return (Path(home) if home else Path(tempfile.gettempdir()) / "ballotstream") / "logs" / f"{run_id}.log"


@contextlib.contextmanager
def _python_logs_to(log_file: Path) -> Iterator[None]:
    """Dagster's own Python log lines (e.g. about checks a skipped step did not run) go to the run log too."""
    log = logging.getLogger("dagster")
    saved = (log.handlers[:], log.propagate)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log.handlers, log.propagate = [handler], False
    try:
        yield
    finally:
        log.handlers, log.propagate = saved
        handler.close()


def _typed_error_names() -> frozenset[str]:
    """Class names of Ballotstream's own errors (their messages are written for people)."""
    found, todo = set(), [BallotstreamError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(found)


def _original_error(result: RunResult) -> str | None:
    """The first failed step's own error message: the outermost of Ballotstream's typed errors in the chain (which
    may wrap a library's error), else the innermost error.

    Raises:
        PublishConflict: that error was a lost ``latest.json`` race: its sentence is the whole story.
    """
    typed = _typed_error_names()
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name not in typed:  # Dagster wraps the user error
                error = error.cause
            text = error.message.strip().splitlines()[-1]
            if error.cls_name in typed:
                text = text.split(": ", 1)[-1]  # drop "pipelines.errors.X: "
            if error.cls_name == PublishConflict.__name__:
                raise PublishConflict(text)
            return f"step {event.step_key} failed: {text}"
    return None


def _interrupted(result: RunResult) -> bool:
    """Whether a step failed because of Ctrl-C: Dagster catches SIGINT during a run and fails the step instead."""
    for event in result.all_events:
        error = event.step_failure_data.error if event.is_step_failure else None
        while error is not None:
            if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                return True
            error = error.cause
    return False


def _release_timings(event: Any) -> dict[str, float]:
    """Seconds per stage, as the release step recorded them (its input is a copy of the staged snapshot, so the
    upload and announcement times exist only in its materialisation's metadata)."""
    return dict(event.materialization.metadata["timings_s"].value)


def run_publish(settings: Settings, *, force: bool = False, full: bool = False, multiprocess: bool = False
                ) -> PublishOutcome:
    """Execute the publish job for ``settings.dataset`` (``full``: read from offset 0, not the checkpoint).

    ``multiprocess`` runs each step in a process of its own (Dagster's multi-process executor; the read's range
    steps side by side), as steps on other machines would run; the run's log file is then named by a publish id
    of its own, not by Dagster's run id.

    Raises:
        GateFailed: a blocking check failed (the message names the checks and the stored report's URL).
        BallotstreamError: a step failed for another reason (the step's own error message).
        KeyboardInterrupt: Ctrl-C stopped the run (Dagster turns it into a failed step; it is not a failure).
    """
    run_id = str(uuid.uuid4())
    log_file = log_file_for(run_id)
    run_config = {
        "resources": {"ballotstream": {"config": BallotstreamResource.of(settings).model_dump()}},
        "ops": {keys.READ_NODE: {"ops": {keys.PLAN_OP: {"config": {"force": force, "full": full}}}}},
        "loggers": {"file": {"config": {"path": str(log_file)}}},
    }
    ran = [run_id]
    try:
        with _instance(multiprocess) as instance, _python_logs_to(log_file), \
                _executed(instance, run_id, run_config, multiprocess) as result:
            ran[0] = result.run_id
            return _outcome(settings, result, log_file)
    finally:
        # The run's own staging folder and step outputs go whatever happened (published, blocked, conflict,
        # failed): ``_outcome`` has read what it needs, and a publish run is never re-executed from its outputs.
        # A run that was killed leaves its staging folder to `ballotstream gc`. A release its gating step started
        # and no release step took (the run stopped between them) is waited for first: it reads that folder.
        ahead.abandon(ran[0], why="the run ended before its release step took it")
        pipeline.remove_run_staging(settings, ran[0])
        remove_run_outputs(ran[0])


@contextlib.contextmanager
def _executed(instance: dg.DagsterInstance, run_id: str, run_config: dict[str, Any], multiprocess: bool
              ) -> Iterator[RunResult]:
    """The finished run, its step outputs still loadable."""
    if not multiprocess:
        yield resolved_publish_job().execute_in_process(instance=instance, raise_on_error=False, run_id=run_id,
                                                        run_config=run_config)
        return
    config = {**run_config, "execution": {"config": {"multiprocess": {}}}}
    with dg.execute_job(dg.reconstructable(resolved_publish_job), instance, run_config=config,
                        raise_on_error=False) as result:
        yield result


def _outcome(settings: Settings, result: RunResult, log_file: Path) -> PublishOutcome:
    """What the finished run did, or the error that says why it did nothing."""
    run_id = result.run_id
    try:
        staged: pipeline.Staged | None = result.output_for_node(keys.FOLD_OP, "staged_snapshot")
    except dg.DagsterError:  # nothing staged: the snapshot was unchanged, or the step failed
        staged = None
    release = [m for m in result.get_asset_materialization_events() if m.asset_key == keys.RELEASE]
    checks = {(e.asset_key.path[-1], e.check_name): (e.passed, e.severity.value)
              for e in result.get_asset_check_evaluations()}
    if release:
        assert staged is not None
        release_id = str(release[0].materialization.metadata["release_id"].value)
        return PublishOutcome(run_id, log_file, ReleaseStore(settings).manifest(release_id), staged.report,
                              timings=_release_timings(release[0]), checks=checks)
    if _interrupted(result):  # the caller (e.g. `publish --watch`) stops as on any other Ctrl-C
        raise KeyboardInterrupt(f"publish run {run_id} interrupted (run log: {log_file})")
    if staged is not None and staged.report is not None and not staged.report.passed:
        raise pipeline.blocked_error(staged.report)
    error = _original_error(result)
    if error:
        raise BallotstreamError(f"{error} (run log: {log_file})")
    if staged is None and result.success:
        latest, _ = ReleaseStore(settings).latest()
        return PublishOutcome(run_id, log_file, skipped=pipeline.unchanged_message(latest and latest["release_id"]),
                              checks=checks)
    raise BallotstreamError(f"publish run {run_id} did not produce a release (run log: {log_file})")
