"""The steps of the one publish path: plan → stage (read, fold, write Parquet) → gate → release → announce.

The Dagster job ``publish`` (``dagster_project``) is the one composition of these steps; the CLI, the tests and
the benchmarks run that job (``dagster_project.run.run_publish``). The steps are plain functions so unit tests
can call one at a time. Nothing becomes visible to the public unless the gate passed.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.contract import schemas
from pipelines.contract.topics import EVENT_TOPICS, subject_name
from pipelines.errors import CheckError, GateFailed, NothingToPublish
from pipelines.fold.allocator import blocks_kept_while, give_back
from pipelines.fold.core import fold_extracted, fold_tables
from pipelines.fold.extract import Extracted, merge
from pipelines.fold.sliced import SlicedTable
from pipelines.fold.tables import STATION_TURNOUT, TABLE_NAMES, file_layout
from pipelines.gate import GateReport
from pipelines.gate.checks import OWN_COLUMNS
from pipelines.kafka import snapshot
from pipelines.release import cdf, cdf_ahead, checkpoint, reuse, scoped
from pipelines.release.cdf_ahead import Build
from pipelines.release.changes import ChangesAhead, Counted, Known, count_changes
from pipelines.release.gating import gate_context, gate_staged
from pipelines.release.manifest import MANIFEST_FORMAT, datapackage, release_id_for, table_entry
from pipelines.release.mapped_copy import let_go_of_pages
from pipelines.release.parquet import StagedFile, columns, read_staged, write_table_files
from pipelines.release.part_figures import FiguresCache, keeping_figures
from pipelines.release.store import ReleaseStore
from pipelines.release.stream_cuts import write_table_stream
from pipelines.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Staged:
    """A folded snapshot written to local Parquet, ready for the gate and the release."""

    dataset: str
    snapshot: snapshot.Snapshot
    directory: Path
    files: dict[str, StagedFile]
    columns: dict[str, list[dict[str, str]]]
    schemas_used: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    report: GateReport | None = None  # set by the gate step
    # Where the read started (``checkpoint.Base.reason``) and the checkpoint this release will leave.
    base_reason: str = "full rebuild"
    next_checkpoint: checkpoint.Pending | None = None
    events_read: int = 0  # events read from Kafka by this run (all of them for a full rebuild)
    # The last release's gate outcomes per table file (``pipelines.gate.incremental``); None: check every file.
    gate_kept: dict[str, Any] | None = None
    # The staged files by fingerprint, for the checkpoint; and the last release's, which staging reused
    # (``pipelines.release.reuse``; None: every file was written).
    file_records: dict[str, Any] = field(default_factory=dict)
    reuse_from: dict[str, Any] | None = None
    # The release's time, decided where the documents' build starts (``cdf_ahead``: in a scoped stage, else in
    # the gate): the documents carry it, so the release step must use the same (None: the release step decides
    # it).
    release_time: datetime | None = None
    # The documents' build waits until the gate has passed (a scope too large for both at once:
    # ``cdf_ahead.AHEAD_MAX_SCOPE_TALLIES``).
    documents_after_gate: bool = False
    # How the tables were folded: the whole snapshot, or the scope of new tallies (``pipelines.release.scoped``).
    fold_note: str = "whole snapshot"
    # The changes since the last release, counted beside the gate (``pipelines.release.changes``), and those of the
    # tables a scoped stage counted as it spliced them.
    changes_ahead: Counted | None = None
    changes_known: Known | None = None

    def extraction(self) -> Extracted:
        """The extraction of the whole snapshot again (from the local checkpoint segments), to fold it anew."""
        if self.next_checkpoint is None:
            raise ValueError("this staged snapshot kept no extraction")
        return merge(checkpoint.load_segments(self.next_checkpoint.folders()))

    def tables(self, names: list[str] | None = None) -> dict[str, pa.Table]:
        """Read staged tables back (all, or the named ones)."""
        return {n: read_staged(self.files[n]) for n in (names or list(self.files))}

    def table(self, name: str, columns: tuple[str, ...] | None = None) -> pa.Table:
        """Read one staged table back (all its columns, or the named ones)."""
        return read_staged(self.files[name], list(columns) if columns else None)


def staging_root(settings: Settings) -> Path:
    """The dataset's staging folder; each run stages in its own subfolder (``staging_folder``)."""
    return Path(settings.staging_dir) / settings.dataset


def staging_folder(settings: Settings, snap: snapshot.Snapshot, run_id: str) -> Path:
    """``<staging>/<dataset>/<snapshot fingerprint>-<run id>``: unique per run, so two runs of one snapshot never
    write, hash or upload each other's files."""
    return staging_root(settings) / f"{snap.fingerprint()}-{run_id}"


def remove_run_staging(settings: Settings, run_id: str) -> list[Path]:
    """Delete the staging folders of run ``run_id`` (what a publish does when it ends, however it ends), and end
    the interpreter prepared for a documents' build that did not start."""
    cdf_ahead.let_go_of_spare()
    root = staging_root(settings)
    removed = sorted(root.glob(f"*-{run_id}")) if root.is_dir() else []
    for folder in removed:
        cdf_ahead.discard_started(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def event_topic_names(settings: Settings) -> list[str]:
    return [settings.topic(t.name) for t in EVENT_TOPICS]


@dataclass(frozen=True)
class Plan:
    """What a publish run will do: fold ``snapshot``, or nothing when it equals the latest release's; and
    whether it starts from the latest release's checkpoint (``base``) or from offset 0."""

    snapshot: snapshot.Snapshot
    latest_release: str | None
    unchanged: bool
    base: checkpoint.Base = field(default_factory=lambda: checkpoint.Base(None, "full rebuild"))

    def skip_message(self) -> str:
        return unchanged_message(self.latest_release)


def unchanged_message(release_id: str | None) -> str:
    return f"no new events since release {release_id}: nothing to publish (use --force to publish again)"


def plan(settings: Settings, *, force: bool = False, full: bool = False, store: ReleaseStore | None = None
         ) -> Plan:
    """Capture the event topics' end offsets and decide whether they hold anything the latest release lacks,
    and where the read starts: after the latest release's checkpoint, or at offset 0 when there is none, it is
    unusable, or ``full`` asks for a full rebuild (``checkpoint.base_for``).

    The rule lives here, in the first step of the one path, so the CLI, the sensor and the schedule all skip an
    unchanged snapshot the same way.

    Raises:
        NothingToPublish: the topics hold no events at all.
    """
    snap = snapshot.capture(settings, event_topic_names(settings))
    if snap.total() == 0:
        raise NothingToPublish(
            f"no events on {', '.join(event_topic_names(settings))} at {settings.kafka_bootstrap_servers}: "
            "nothing to publish (ingest first: ballotstream ingest FILE...)")
    store = store or ReleaseStore(settings)
    latest, _ = store.latest()
    if latest is None:
        return Plan(snap, None, unchanged=False, base=checkpoint.base_for(store, None, snap))
    manifest = store.manifest(latest["release_id"])
    unchanged = not force and manifest is not None and manifest["snapshot"] == snap.to_json()
    if unchanged:
        return Plan(snap, latest["release_id"], unchanged)
    return Plan(snap, latest["release_id"], unchanged, checkpoint.base_for(store, manifest, snap, full=full))


def stage(settings: Settings, snap: snapshot.Snapshot, run_id: str | None = None, *,
          base: checkpoint.Base | None = None, store: ReleaseStore | None = None,
          reads: list[checkpoint.RangeRead] | None = None) -> Staged:
    """Combine what ``base`` holds of ``snap`` with ``reads``, the rest read as ranges by the job's read steps
    (``checkpoint.plan_ranges``, ``checkpoint.read_range``), fold the whole extraction, and write each table as
    deterministic Parquet into the run's own folder. Without ``reads`` the ranges are read here; without
    ``base`` (or with a full one) every offset is read.

    An incremental base whose segments cannot be fetched falls back to a full rebuild, and says so.
    """
    base = base or checkpoint.Base(None, "full rebuild")
    cache = checkpoint.cache_folder(settings)
    if reads is None:
        reads = [checkpoint.read_range(settings, r, cache) for r in checkpoint.plan_ranges(settings, snap, base)]
    # The ranges' read (in the read steps or above) counts towards the stage, as when it was one step.
    read_s = checkpoint.read_timings(reads)["read_wall_s"]
    started = time.perf_counter()
    store = store or ReleaseStore(settings)
    extension = checkpoint.combine(settings, snap, base, reads, store, cache)
    used = [
        {"topic": topic, "record_type": rt, "subject": subject_name(topic, schemas.fullname(rt)),
         "schema_id": schema_id, "fingerprint": schemas.fingerprint(rt)}
        for (topic, rt), schema_id in sorted(extension.pending.checkpoint.schema_ids.items())
    ]
    run_id = run_id or uuid.uuid4().hex
    reuse_from = base.checkpoint.table_files if base.checkpoint is not None else None
    staged, fold_note = None, "whole snapshot (a full rebuild)"
    if extension.new_from is not None:
        staged, fold_note = _stage_scoped(settings, snap, extension, base, store, used, run_id, reuse_from)
    if staged is None:
        if extension.extracted is None:  # let go of by a scoped stage that then could not finish
            extension.extracted = merge(checkpoint.load_segments(extension.pending.folders()))
        # Folded and written at once: each table is written as soon as it is built (``stage_tables``).
        extension.extracted.let_go = let_go_of_pages
        tables = fold_tables(extension.extracted, settings.dataset)
        extension.extracted = None  # the fold's stream holds it only as long as it needs it
        staged = stage_tables(settings, snap, tables, used, run_id=run_id, reuse_from=reuse_from)
    extension.extracted = None
    give_back()  # what the fold freed, before the gate reads the tables back
    staged.fold_note = fold_note
    staged.base_reason, staged.next_checkpoint = extension.reason, extension.pending
    staged.events_read = extension.events_read
    staged.gate_kept = base.checkpoint.gate if base.checkpoint is not None else None
    staged.timings.update({**extension.timings, "stage_total_s": read_s + time.perf_counter() - started})
    return staged


def _stage_scoped(settings: Settings, snap: snapshot.Snapshot, extension: checkpoint.Extension,
                  base: checkpoint.Base, store: ReleaseStore, used: list[dict[str, Any]], run_id: str,
                  reuse_from: dict[str, Any] | None) -> tuple[Staged | None, str]:
    """The snapshot staged from its new events' scope (``pipelines.release.scoped``), and how it was folded; None
    and why not, when it must be folded whole."""
    directory = staging_folder(settings, snap, run_id)
    t0 = time.perf_counter()
    cache = reuse.TableFileCache(checkpoint.table_files_folder(settings), reuse.kept_files(reuse_from))
    previous = _previous_manifest(store)
    # The NIST documents are built from a few of the tables: for a small scope their build starts once those are
    # staged, while the rest of the stage (national_summary, the history tables) goes on.
    documents = cdf_ahead.StartWhenStaged(directory, previous, checkpoint.document_blocks_folder(settings))
    try:
        done = scoped.stage_scoped(extension, previous, base.release_id, settings.dataset,
                                   scoped.Writing(directory, settings.table_file_bytes, cache, documents,
                                                  checkpoint.figures_folder(settings), documents.scoped))
    except scoped.NotScoped as exc:
        cdf_ahead.discard_started(directory)  # a build of files the whole fold is about to write over
        shutil.rmtree(directory, ignore_errors=True)  # what it staged before it stopped
        return None, f"whole snapshot ({exc})"
    timings = {**done.timings, "write_s": time.perf_counter() - t0 - done.timings["fold_s"],
               "files_written": cache.written, "files_reused": cache.reused, "scope_tallies": done.scope_tallies}
    if documents.generated_at is not None:
        timings["documents_started_in_stage_s"] = documents.started_s - t0
    known = Known(base.release_id, {name: (done.files[name].sha256, counts) for name, counts in done.changes.items()})
    return Staged(settings.dataset, snap, directory, done.files, done.columns, used, timings,
                  file_records=cache.records(done.files.values()), reuse_from=reuse_from,
                  release_time=documents.generated_at, changes_known=known,
                  documents_after_gate=documents.generated_at is None), done.note


def stage_tables(settings: Settings, snap: snapshot.Snapshot,
                 tables: Mapping[str, pa.Table] | Iterable[tuple[str, pa.Table | SlicedTable]],
                 schemas_used: list[dict[str, Any]] | None = None, *, run_id: str | None = None,
                 reuse_from: dict[str, Any] | None = None) -> Staged:
    """Write folded tables as deterministic Parquet into this run's staging folder (``staging_folder``); a file
    ``reuse_from`` (a checkpoint's ``table_files``) lists is linked from the local cache instead, when kept there
    intact (``pipelines.release.reuse``).

    ``tables`` may be a stream of (name, table) pairs (``fold.core.fold_tables``): each table is written while the
    rest is folded, and let go once written; a ``SlicedTable`` is assembled by its writer a slice at a time. The
    stream is asked for the next table only while the tables still being written hold at most
    ``WRITE_BACKLOG_BYTES``, and the pages of a mapped extraction are let go of after each table.

    Timings: ``fold_s``, the time spent waiting for the stream (next to nothing for a dict); ``write_s``, the rest
    of the stage: the writing the fold did not hide.
    """
    directory = staging_folder(settings, snap, run_id or uuid.uuid4().hex)
    t0 = time.perf_counter()
    cache = reuse.TableFileCache(checkpoint.table_files_folder(settings), reuse.kept_files(reuse_from))
    # Files are listed in the order given, a stream's in the fold's (``TABLE_NAMES``).
    names = list(tables) if isinstance(tables, Mapping) else list(TABLE_NAMES)
    if isinstance(tables, Mapping):
        # The largest first, so that the small ones fill in around them.
        tables = sorted(tables.items(), key=lambda item: -item[1].nbytes)

    def write(name: str, table: pa.Table | SlicedTable) -> StagedFile:
        how = {**file_layout(name, settings.table_file_bytes), "write": cache.write}
        if name == STATION_TURNOUT:  # for the election-night publishes after this one (``part_figures``)
            how["write"] = keeping_figures(cache.write, FiguresCache(checkpoint.figures_folder(settings)))
        if isinstance(table, SlicedTable):  # assembled here, a slice at a time, each file written as it is sealed
            return write_table_stream(name, table.schema, table.slices(), directory, **how)
        return write_table_files(name, table, directory, **how)

    # Parquet encoding and zstd run in Arrow's C++ without the GIL: tables are written side by side. Each file's
    # bytes do not depend on the threads.
    pending, sizes, table_columns, fold_s = {}, {}, {}, 0.0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        stream = iter(tables)
        while True:
            _wait_for_writes(pending, sizes)
            waited = time.perf_counter()
            item = next(stream, None)
            fold_s += time.perf_counter() - waited
            if item is None:
                break
            # What the fold read of a mapped extraction to build this table: mapped back if read again.
            let_go_of_pages()
            name, table = item
            table_columns[name] = columns(table)
            sizes[name] = table.nbytes if isinstance(table, pa.Table) else 0  # a SlicedTable's come one by one
            pending[name] = pool.submit(write, name, table)
            del item, table  # the pool's task holds the table until it is written
        written = {name: future.result() for name, future in pending.items()}
    files = {name: written[name] for name in [*names, *written] if name in written}
    return Staged(settings.dataset, snap, directory, files, {n: table_columns[n] for n in files},
                  schemas_used or [], {"fold_s": fold_s, "write_s": time.perf_counter() - t0 - fold_s,
                                       "files_written": cache.written, "files_reused": cache.reused},
                  file_records=cache.records(files.values()), reuse_from=reuse_from)


# Past this many bytes of built tables waiting to be written, the fold waits for the writers before it builds the
# next table: in a full rebuild at a million stations, 2 GB of tables were queued behind them while the events
# table, the last and a copy of the whole log, was built (the publish's peak). The writers then have the cores.
WRITE_BACKLOG_BYTES = 512 << 20


def _wait_for_writes(pending: Mapping[str, Future[StagedFile]], sizes: Mapping[str, int]) -> None:
    """Wait while the tables ``pending`` still being written hold more than ``WRITE_BACKLOG_BYTES``."""
    while True:
        queued = [name for name, future in pending.items() if not future.done()]
        if sum(sizes[name] for name in queued) <= WRITE_BACKLOG_BYTES:
            return
        wait([pending[name] for name in queued], return_when=FIRST_COMPLETED)


# Tables whose gate took this long are named in the timings (at a million stations: the five largest).
GATE_TABLE_TIMED_S = 1.0


def validate(settings: Settings, staged: Staged) -> GateReport:
    """Run the Great Expectations gate on every staged table, one table in memory at a time, re-checking only
    the table files the last release's gate outcomes do not cover (``pipelines.gate.incremental``); the outcomes
    of this gate go into the checkpoint the release leaves."""
    t0, cpu = time.perf_counter(), os.times()
    with blocks_kept_while():  # then given back
        run = gate_staged(staged.files, settings.gate_tolerance, staged.gate_kept,
                          checkpoint.key_prints_folder(settings))
    if staged.next_checkpoint is not None:
        staged.next_checkpoint.checkpoint = replace(staged.next_checkpoint.checkpoint, gate=run.cache)
    used = os.times()
    # The process's CPU (every thread) beside the wall time: a gate slower than its CPU waited for the cores.
    staged.timings.update({"validate_s": time.perf_counter() - t0, "gate_files_checked": run.checked_files,
                           "gate_files_reused": run.reused_files, "validate_user_s": used.user - cpu.user,
                           "validate_sys_s": used.system - cpu.system,
                           **{f"gate_{name}_s": s for name, s in run.seconds.items() if s >= GATE_TABLE_TIMED_S}})
    return GateReport(checks=run.results, tolerance=settings.gate_tolerance)


def _previous_manifest(store: ReleaseStore) -> dict[str, Any] | None:
    """The manifest of the release ``latest.json`` names, if any."""
    latest, _ = store.latest()
    return store.manifest(latest["release_id"]) if latest else None


class _DocumentsAhead:
    """The documents' build of a gate: the one the stage started, else one started with the gate, else (the stage
    left it until after the gate: ``Staged.documents_after_gate``) one started once the gate has passed."""

    def __init__(self, settings: Settings, staged: Staged, previous: dict[str, Any] | None) -> None:
        self.settings, self.staged, self.previous = settings, staged, previous
        self.build = Build.started(staged.directory)
        if self.build is not None and staged.release_time is not None:
            return  # started by the stage (``_stage_scoped``), which decided the release time
        if self.build is not None:
            self.build.discard()
            self.build = None
        if not staged.documents_after_gate:
            self._start()

    def _start(self) -> None:
        self.staged.release_time = datetime.now(UTC)
        self.build = Build(self.staged.directory, generated_at=self.staged.release_time, previous=self.previous,
                           blocks=checkpoint.document_blocks_folder(self.settings))
        self.build.start(self.staged.files)

    def restart(self) -> None:
        """The tables were staged again (withholding): their documents are built anew, if built yet."""
        if self.build is not None:
            self.build.start(self.staged.files)

    def after_gate(self) -> None:
        if self.build is None:
            self._start()

    def discard(self) -> None:
        if self.build is not None:
            self.build.discard()


def gate(settings: Settings, staged: Staged, attempt_id: str, store: ReleaseStore | None = None) -> GateReport:
    """Validate ``staged``; when a blocking check fails, store the report where the public can read it.

    When every blocking failure is a rule of ``settings.withheld_rules``, the failing tallies are withheld
    instead (``pipelines.release.withhold``): ``staged`` then holds the tables folded without them, and the
    report is the second gate's.

    Meanwhile the NIST documents of the staged tables are built in a process of their own (``cdf_ahead``), for
    the release time decided here (``staged.release_time``) unless the stage started their build and decided it
    (or, for a scope too large to build them beside the gate, once the gate has passed: ``_DocumentsAhead``),
    and left in the staging folder for the release step, which waits for them; built again when withholding
    re-stages the tables, discarded when the gate blocks. The changes since the last release are counted beside
    the gate too, in a thread (``changes.ChangesAhead``), for the release step.

    Returns:
        The report; ``report_url`` is set when the gate blocked (``<dataset>/reports/<attempt_id>/``).
    """
    store = store or ReleaseStore(settings)
    previous = _previous_manifest(store)
    documents = _DocumentsAhead(settings, staged, previous)
    changes = ChangesAhead(store, previous, staged.files, checkpoint.table_files_folder(settings),
                           staged.changes_known)
    try:
        report = validate(settings, staged)
        if settings.withheld_rules and not report.passed:
            report = withhold(settings, staged, report, restaged=documents.restart)
    except BaseException:
        documents.discard()
        raise
    if report.passed:
        documents.after_gate()
        waited = time.perf_counter()
        staged.changes_ahead = changes.result()
        staged.timings["changes_wait_s"] = time.perf_counter() - waited
    else:  # a blocked release needs no changes and no documents
        documents.discard()
        report = replace(report, report_url=store.store_blocked_report(attempt_id, report.to_dict()))
    return report


def withhold(settings: Settings, staged: Staged, report: GateReport, *,
             restaged: Callable[[], None] = lambda: None) -> GateReport:
    """When every blocking failure is a rule configured to withhold: fold the snapshot again without the failing
    tallies, write the tables over ``staged``'s (in place: the Dagster step yields them after the gate), call
    ``restaged`` (the gate builds the documents of the new tables beside the second gate), gate them again, and
    return the merged report (blocking only when the second gate failed).

    Returns ``report`` unchanged when withholding does not apply, or cannot name the failing tallies exactly.
    """
    from pipelines.release import withhold as w

    if not w.applies(settings, report):
        return report
    t0 = time.perf_counter()
    cache: dict[tuple[str, tuple[str, ...]], pa.Table] = {}
    try:
        request = pa.concat_tables([
            w.failing_units(settings, c, staged.table(c.table, OWN_COLUMNS.get(c.table)),
                            gate_context(staged.files, c.table, cache))
            for c in report.blocking_failures])
    except CheckError:
        return report
    del cache
    if request.num_rows == 0:
        return report
    tables = fold_extracted(staged.extraction(), settings.dataset, withhold=request)
    # The same folder: the first fold's files are replaced, and the run's cleanup removes the folder as before.
    # Files the first fold staged, or the last release had, are linked: only those withholding changed are written.
    again = stage_tables(settings, staged.snapshot, tables, staged.schemas_used,
                         run_id=staged.directory.name.split("-", 1)[1],
                         reuse_from={**(staged.reuse_from or {}), **staged.file_records})
    del tables
    staged.files, staged.columns, staged.file_records = again.files, again.columns, again.file_records
    for key in ("files_written", "files_reused"):
        staged.timings[key] += again.timings[key]
    staged.timings["withhold_s"] = time.perf_counter() - t0
    restaged()
    first_validate_s = staged.timings["validate_s"]
    second = validate(settings, staged)
    staged.timings["validate_s"] += first_validate_s
    return w.merge(report, second, dict(Counter(request["rule"].to_pylist())))


def withheld_units(staged: Staged) -> int:
    """How many distinct tallies the staged tables withhold (a tally failing two rules is one unit)."""
    if "withheld" not in staged.files:
        return 0
    units = staged.table("withheld", ("election_id", "contest_id", "station_id"))
    return units.group_by(list(units.column_names)).aggregate([]).num_rows


def blocked_error(report: GateReport) -> GateFailed:
    """The one-sentence error of a release the gate blocked (the report's checks are on ``.report``)."""
    failed = ", ".join(f"{c.qualified_name} ({c.failing_rows:,} rows)" for c in report.blocking_failures)
    return GateFailed(f"release blocked by the gate: {failed}; latest is unchanged; report: {report.report_url}",
                      report)


def _changes(settings: Settings, store: ReleaseStore, previous: dict[str, Any] | None, staged: Staged
             ) -> dict[str, Any]:
    """The manifest's ``changes``: those counted beside the gate when they are of these files since ``previous``,
    else counted now; their timings go into ``staged.timings``."""
    if staged.changes_ahead is not None and staged.changes_ahead.fits(previous, staged.files):
        changes, timings = staged.changes_ahead.changes, {**staged.changes_ahead.timings, "changes_ahead": 1}
    else:  # not counted beside the gate, or of other files or since another release
        changes, timings = count_changes(store, previous, staged.files, checkpoint.table_files_folder(settings),
                                         staged.changes_known)
    staged.timings.update(timings)
    return changes


def _gate_entry(staged: Staged, report: GateReport) -> dict[str, Any]:
    return {"passed": True, "report": "validation.json", "tolerance": report.tolerance,
            # Table files the gate checked, and those whose outcome it kept from the last release's gate.
            "files": {"checked": staged.timings.get("gate_files_checked"),
                      "reused": staged.timings.get("gate_files_reused")},
            "checks": [{"name": c.name, "table": c.table, "blocking": c.blocking, "success": c.success,
                        "failing_rows": c.failing_rows, "withheld": c.withheld} for c in report.checks]}


def _write_entry(settings: Settings, staged: Staged) -> dict[str, Any]:
    # Table files this publish encoded, and those it linked from the last release's instead (``reuse``); how
    # they were cut (the next publish stages from this release's files only if it cuts them alike).
    return {"files": {"written": staged.timings.get("files_written"), "reused": staged.timings.get("files_reused")},
            "cutting": scoped.cutting(settings.table_file_bytes)}


def _prune_local(settings: Settings, staged: Staged) -> None:
    """Once its release is the latest: drop what the local caches keep for older ones (checkpoint segments, and
    table files, their key fingerprints and figures other than this release's)."""
    if staged.next_checkpoint:
        staged.next_checkpoint.prune_cache()
    shas = {f["sha256"] for f in staged.file_records.values()}
    reuse.prune(checkpoint.table_files_folder(settings), shas)
    reuse.prune(checkpoint.key_prints_folder(settings), shas)  # named by their file's sha256 too
    reuse.prune(checkpoint.figures_folder(settings), shas)


def _checkpoint_entries(staged: Staged, store: ReleaseStore, release_id: str) -> dict[str, Any]:
    """Upload the private checkpoint the next publish resumes from (``checkpoint``), after the tables and before
    the manifest that names it, and say where this release's read started."""
    key = None
    if staged.next_checkpoint:
        staged.next_checkpoint.checkpoint = replace(staged.next_checkpoint.checkpoint,
                                                    table_files=staged.file_records)
        key = staged.next_checkpoint.upload(store, release_id)
    return {"checkpoint": key, "read": {"from": staged.base_reason, "events_read": staged.events_read,
                                        "fold": staged.fold_note}}


def _unchanged(entries: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, str]:
    """The one-file tables whose file the previous release has, same bytes: table -> that release's key."""
    out = {}
    for name, entry in entries.items():
        before = ((previous or {}).get("tables") or {}).get(name) or {}
        if entry["path"] and before.get("path") and [(f["sha256"], f["bytes"]) for f in before.get("files", [])] \
                == [(f["sha256"], f["bytes"]) for f in entry["files"]]:
            out[name] = before["files"][0]["key"]
    return out


def _listed(store: ReleaseStore, manifest: dict[str, Any] | None) -> set[str]:
    """The bucket keys of every table file and document part ``manifest`` lists (none without a manifest)."""
    return set() if manifest is None else store.listed_keys(manifest)


def _refuse(store: ReleaseStore, release_id: str, report: GateReport, validation: dict[str, Any]) -> None:
    """Raise the ``GateFailed`` of a blocked release, its report stored first unless the gate stored it."""
    if report.report_url is None:
        report = replace(report, report_url=store.store_blocked_report(release_id, validation))
    raise blocked_error(report)


def _documents(settings: Settings, staged: Staged, now: datetime, store: ReleaseStore,
               previous: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``cdf.release_documents`` of ``staged``, with those this process's gate started building (waited for only
    now, when the release has done what it can without them), each part given its bucket key and URL."""
    documents = Build.started(staged.directory)
    if documents is not None:
        staged.timings.update(documents.wait())
    t0 = time.perf_counter()
    built = Build.load(staged.directory, staged.files, now)
    cache = checkpoint.document_blocks_folder(settings)
    documents, entries = cdf.release_documents(staged.files, generated_at=now, previous=previous, built=built,
                                               cache=cache)
    missing = _missing_carried_parts(store, documents, entries)
    if missing:
        # Carried over, the document would fail every publish until its tables change: build it again instead.
        log.warning("%d part(s) of a document carried over from release %s are not in the bucket (first: %s); "
                    "building the documents again", len(missing), (previous or {}).get("release_id"), missing[0])
        documents, entries = cdf.release_documents(staged.files, generated_at=now, previous=None, built=built,
                                                   cache=cache)
        staged.timings["documents_rebuilt_parts_missing"] = len(missing)
    for entry in entries.values():
        keys = [store.part_key(p["sha256"]) for p in entry["parts"]]
        entry["parts"] = [{"key": key, "sha256": p["sha256"], "bytes": p["bytes"]}
                          for key, p in zip(keys, entry["parts"], strict=True)]
    staged.timings.update(documents_s=time.perf_counter() - t0, documents_built_ahead=len(built))
    return documents, entries


def _missing_carried_parts(store: ReleaseStore, built: Mapping[str, Any], entries: Mapping[str, dict[str, Any]]
                           ) -> list[str]:
    """The keys of the parts that documents carried over from the previous release (``entries`` not ``built``)
    list and the bucket lacks (removed by hand, say): one listing of the parts folder, none when none is carried."""
    keys = [store.part_key(p["sha256"]) for name, entry in entries.items() if name not in built
            for p in entry["parts"]]
    there = store.sizes(keys) if keys else {}
    return [key for key in keys if key not in there]


def release(settings: Settings, staged: Staged, report: GateReport, *, run_id: str | None = None,
            store: ReleaseStore | None = None, live: Callable[[], object] = lambda: None) -> dict[str, Any]:
    """Publish ``staged`` if the gate passed; return its manifest. ``live`` is called once latest.json names it.

    Raises:
        GateFailed: a blocking check failed; the report is stored under ``<dataset>/reports/`` and nothing
            else changes.
        PublishConflict: another publisher switched ``latest.json`` first.
    """
    store = store or ReleaseStore(settings)
    now = staged.release_time or datetime.now(UTC)
    release_id = release_id_for(staged.snapshot, now)
    validation = report.to_dict()
    if not report.passed:
        _refuse(store, release_id, report, validation)
    t0 = time.perf_counter()
    latest, etag = store.latest()
    previous = store.manifest(latest["release_id"]) if latest else None
    prefix = store.release_prefix(release_id)
    entries = {name: table_entry(f, staged.columns[name], release_prefix=prefix, object_key=store.object_key,
                                 url=store.url) for name, f in staged.files.items()}
    counting = time.perf_counter()
    changes = _changes(settings, store, previous, staged)
    counting = time.perf_counter() - counting
    cdf_documents, cdf_entries = _documents(settings, staged, now, store, previous)
    manifest = {
        "format": MANIFEST_FORMAT,
        "dataset": staged.dataset,
        "release_id": release_id,
        # The public URL of a bucket key (each file's and part's ``key``) is this followed by the key.
        "base_url": store.url(""),
        "created_at": now.isoformat(timespec="seconds"),
        "previous_release": previous["release_id"] if previous else None,
        "dagster_run_id": run_id,
        "snapshot": staged.snapshot.to_json(),
        "schemas": staged.schemas_used,
        "tables": entries,
        # cdf/<election_id>.json.gz: NIST SP 1500-100 v2 in parts (docs/contests.md, "Export")
        "documents": cdf_entries,
        "gate": _gate_entry(staged, report),
        "write": _write_entry(settings, staged),
        # Tallies left out of this release (the withheld table's distinct units) and, per rule, how many.
        "withheld": {"units": withheld_units(staged), "rules": report.withheld_rules},
        "changes": changes,
    }
    documents = {"datapackage.json": datapackage(staged.dataset, release_id, entries, store.url),
                 "validation.json": validation, **cdf_documents}
    counts = store.write_release(release_id, list(staged.files.values()), documents, manifest,
                                 before_manifest=lambda: _checkpoint_entries(staged, store, release_id),
                                 listed=_listed(store, previous), unchanged=_unchanged(entries, previous))
    staged.timings.update({f"files_{how}": n for how, n in counts.items()})
    store.switch_latest(manifest, etag)
    live()
    _prune_local(settings, staged)
    staged.timings["upload_s"] = (time.perf_counter() - t0 - staged.timings["documents_s"]
                                  - staged.timings.get("documents_wait_s", 0.0) - counting)
    t0 = time.perf_counter()
    announce(settings, staged, store)
    staged.timings["catalog_announce_s"] = time.perf_counter() - t0
    return manifest


# What the catalog page's charts and contest section are drawn from.
CHART_TABLES = ("station_turnout", "seats", "observations", "divisions", "parties", "elections", "candidates",
                "contests", "contest_selections", "contest_summary", "contest_results")
# Of contest_results only the contest-level rows (one per selection), never every station's.
CHART_FILTERS = {"contest_results": [("level", "==", "contest")]}


def announce(settings: Settings, staged: Staged, store: ReleaseStore) -> None:
    """After ``latest.json`` switched: regenerate the catalog page and announce on Kafka this release and any
    earlier one whose announcement a killed publisher never made (exactly once each: announce.py)."""
    from pipelines.release.announce import announce_pending
    from pipelines.release.catalog import LATEST_COLUMNS, manifests_since, publish_catalog, read_catalog

    # The previous catalog's entries are kept (a release never changes): only newer manifests are read, and of
    # the latest tables only the columns the page draws from.
    give_back()  # the charts read a million stations' turnout
    previous = read_catalog(settings, store.s3, staged.dataset)
    publish_catalog(settings, store.s3, staged.dataset, manifests_since(store, previous),
                    {n: read_staged(staged.files[n], columns=LATEST_COLUMNS.get(n), filters=CHART_FILTERS.get(n))
                     for n in CHART_TABLES if n in staged.files}, previous=previous)
    announce_pending(settings, store)

