"""The publish pipeline in plain Python: snapshot → fold → stage Parquet → gate → release.

Dagster's assets call these steps one by one (``dagster_project``); benchmarks and tests may call
:func:`publish` directly. Nothing becomes visible to the public unless the gate passed.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contract import schemas
from pipelines.contract.topics import EVENT_TOPICS
from pipelines.errors import GateFailed, NothingToPublish
from pipelines.fold.core import fold_extracted
from pipelines.fold.read import read_snapshot
from pipelines.fold.tables import KEYS, TABLE_NAMES
from pipelines.gate import CheckResult, GateReport, new_gx_context, run_table_checks
from pipelines.gate.checks import OWN_COLUMNS, context_needs
from pipelines.kafka import snapshot
from pipelines.kafka.registry import subject_name
from pipelines.release.manifest import MANIFEST_FORMAT, datapackage, release_id_for, table_entry
from pipelines.release.parquet import StagedFile, columns, write_table
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings


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

    def tables(self, names: list[str] | None = None) -> dict[str, pa.Table]:
        """Read staged tables back (all, or the named ones)."""
        return {n: pq.read_table(self.files[n].path) for n in (names or list(self.files))}

    def table(self, name: str, columns: tuple[str, ...] | None = None) -> pa.Table:
        """Read one staged table back (all its columns, or the named ones)."""
        return pq.read_table(self.files[name].path, columns=list(columns) if columns else None)


def event_topic_names(settings: Settings) -> list[str]:
    return [settings.topic(t.name) for t in EVENT_TOPICS]


def stage(settings: Settings, snap: snapshot.Snapshot | None = None) -> Staged:
    """Capture (or take) a snapshot, read and fold it, and write each table as deterministic Parquet."""
    started = time.perf_counter()
    snap = snap or snapshot.capture(settings, event_topic_names(settings))
    if snap.total() == 0:
        raise NothingToPublish(
            f"no events on {', '.join(event_topic_names(settings))} at {settings.kafka_bootstrap_servers}: "
            "nothing to publish (ingest first: ballotstream ingest FILE...)")
    read = read_snapshot(settings, snap)
    t0 = time.perf_counter()
    tables = fold_extracted(read.extracted, settings.dataset)
    del read.extracted
    fold_s = time.perf_counter() - t0
    used = [
        {"topic": topic, "record_type": rt, "subject": subject_name(topic, schemas.fullname(rt)),
         "schema_id": schema_id, "fingerprint": schemas.fingerprint(rt)}
        for (topic, rt), schema_id in sorted(read.schema_ids.items())
    ]
    staged = stage_tables(settings, snap, tables, used)
    staged.timings.update({**read.timings(), "read_workers": read.workers, "fold_s": fold_s,
                           "stage_total_s": time.perf_counter() - started})
    return staged


def stage_tables(settings: Settings, snap: snapshot.Snapshot, tables: dict[str, pa.Table],
                 schemas_used: list[dict[str, Any]] | None = None) -> Staged:
    """Write folded tables as deterministic Parquet under the staging folder of their snapshot."""
    directory = Path(settings.staging_dir) / settings.dataset / snap.fingerprint()
    t0 = time.perf_counter()
    # Parquet encoding and zstd run in Arrow's C++ without the GIL: tables are written side by side, the
    # largest first so the small ones fill in around them. Each file's bytes do not depend on the threads.
    order = sorted(tables, key=lambda n: -tables[n].nbytes)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        written = dict(zip(order, pool.map(lambda n: write_table(n, tables[n], directory), order), strict=True))
    files = {name: written[name] for name in tables}
    return Staged(settings.dataset, snap, directory, files, {n: columns(t) for n, t in tables.items()},
                  schemas_used or [], {"write_s": time.perf_counter() - t0})


def gate_context(staged: Staged, name: str, cache: dict[tuple[str, tuple[str, ...]], pa.Table] | None = None
                 ) -> dict[str, pa.Table]:
    """Just the columns of other tables that ``name``'s checks read (``context_needs``), never whole tables.

    At a million stations holding every table at once beside station_results would cost a gigabyte more.
    """
    cache = {} if cache is None else cache
    context = {}
    for other, wanted in context_needs(name).items():
        if other in staged.files:
            if (other, wanted) not in cache:
                cache[(other, wanted)] = staged.table(other, wanted)
            context[other] = cache[(other, wanted)]
    return context


def check_table(settings: Settings, staged: Staged, name: str, context: dict[str, pa.Table] | None = None,
                gx_context: Any = None) -> list[CheckResult]:
    """Run one staged table's checks, loading only that table and what its checks read of others."""
    context = gate_context(staged, name) if context is None else context
    table = staged.table(name, OWN_COLUMNS.get(name))
    return run_table_checks(name, table, context, settings.gate_tolerance, gx_context)


def validate(settings: Settings, staged: Staged) -> GateReport:
    """Run the Great Expectations gate on every staged table."""
    t0 = time.perf_counter()
    gx_context = new_gx_context()
    cache: dict[tuple[str, tuple[str, ...]], pa.Table] = {}
    checks = []
    for name in TABLE_NAMES:
        if name in staged.files:
            checks.extend(check_table(settings, staged, name, gate_context(staged, name, cache), gx_context))
    staged.timings["validate_s"] = time.perf_counter() - t0
    return GateReport(checks=checks, tolerance=settings.gate_tolerance)


def _changes(store: ReleaseStore, previous: dict[str, Any] | None, staged: Staged) -> dict[str, Any]:
    """Rows added, changed and removed per table since the previous release, and the corrections applied."""
    from pipelines.release.diff import diff_tables

    tables: dict[str, Any] = {}
    prev_corrections: set[str] = set()
    for name, staged_file in staged.files.items():
        new = pq.ParquetFile(staged_file.path)
        old = None
        if previous and name in previous["tables"]:
            if previous["tables"][name]["sha256"] == staged_file.sha256:
                tables[name] = {"added": 0, "changed": 0, "removed": 0}
                continue
            key = store.release_prefix(previous["release_id"]) + previous["tables"][name]["path"]
            body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
            old = pq.ParquetFile(pa.BufferReader(body))
            if name == "corrections":
                prev_corrections = set(old.read(columns=["correction_event_id"]).column(0).to_pylist())
        tables[name] = diff_tables(old, new, list(KEYS[name]))
    wanted = ["correction_event_id", "target_event_id", "kind", "reason", "key"]
    corrections = (pq.read_table(staged.files["corrections"].path, columns=wanted).to_pylist()
                   if "corrections" in staged.files else [])
    applied = [c for c in corrections if c["correction_event_id"] not in prev_corrections]
    return {"previous_release": previous["release_id"] if previous else None, "tables": tables,
            "corrections": applied}


def release(settings: Settings, staged: Staged, report: GateReport, *, run_id: str | None = None,
            store: ReleaseStore | None = None) -> dict[str, Any]:
    """Publish ``staged`` if the gate passed; return its manifest.

    Raises:
        GateFailed: a blocking check failed; the report is stored under ``<dataset>/reports/`` and nothing
            else changes.
        PublishConflict: another publisher switched ``latest.json`` first.
    """
    store = store or ReleaseStore(settings)
    now = datetime.now(UTC)
    release_id = release_id_for(staged.snapshot, now)
    validation = report.to_dict()
    if not report.passed:
        url = store.store_blocked_report(release_id, validation)
        failed = ", ".join(c.qualified_name for c in report.blocking_failures)
        raise GateFailed(f"release blocked by the gate ({failed}); latest is unchanged; report: {url}", report)
    t0 = time.perf_counter()
    latest, etag = store.latest()
    previous = store.manifest(latest["release_id"]) if latest else None
    prefix = store.release_prefix(release_id)
    entries = {
        name: table_entry(f, staged.columns[name], store.url(f"{prefix}tables/{name}.parquet"))
        for name, f in staged.files.items()
    }
    manifest = {
        "format": MANIFEST_FORMAT,
        "dataset": staged.dataset,
        "release_id": release_id,
        "created_at": now.isoformat(timespec="seconds"),
        "previous_release": previous["release_id"] if previous else None,
        "dagster_run_id": run_id,
        "snapshot": staged.snapshot.to_json(),
        "schemas": staged.schemas_used,
        "tables": entries,
        "gate": {"passed": True, "report": "validation.json", "tolerance": report.tolerance,
                 "checks": [{"name": c.name, "table": c.table, "blocking": c.blocking, "success": c.success,
                             "failing_rows": c.failing_rows} for c in report.checks]},
        "changes": _changes(store, previous, staged),
    }
    store.write_release(release_id, list(staged.files.values()),
                        {"datapackage.json": datapackage(staged.dataset, release_id, entries),
                         "validation.json": validation}, manifest)
    store.switch_latest(manifest, etag)
    staged.timings["upload_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    announce(settings, staged, manifest, store)
    staged.timings["catalog_announce_s"] = time.perf_counter() - t0
    return manifest


# What the catalog page's charts are drawn from.
CHART_TABLES = ("station_turnout", "seats", "observations", "divisions", "parties")


def announce(settings: Settings, staged: Staged, manifest: dict[str, Any], store: ReleaseStore) -> None:
    """After ``latest.json`` switched: regenerate the catalog page and announce the release on Kafka."""
    from pipelines.release.announce import announce_release, release_published_event
    from pipelines.release.catalog import publish_catalog

    publish_catalog(settings, store.s3, staged.dataset, store.published_manifests(),
                    staged.tables([n for n in CHART_TABLES if n in staged.files]))
    manifest_url = store.url(store.release_prefix(manifest["release_id"]) + "manifest.json")
    announce_release(settings, release_published_event(manifest, manifest_url))


def publish(settings: Settings, *, run_id: str | None = None) -> tuple[Staged, dict[str, Any]]:
    """Every step in one call (no Dagster): stage, gate, release."""
    staged = stage(settings)
    report = validate(settings, staged)
    return staged, release(settings, staged, report, run_id=run_id)


def save_check_results(staged: Staged, table: str, results: list[Any]) -> None:
    """Keep one table's check results beside its Parquet, so a later step can assemble the whole report."""
    import dataclasses
    import json

    directory = staged.directory / "checks"
    directory.mkdir(parents=True, exist_ok=True)
    rows = [dataclasses.asdict(r) for r in results]
    (directory / f"{table}.json").write_text(json.dumps(rows, default=str, sort_keys=True))


def load_gate_report(settings: Settings, staged: Staged) -> GateReport:
    """The gate report assembled from every table's saved check results (missing tables: not checked)."""
    import json

    results = []
    for table in staged.files:
        path = staged.directory / "checks" / f"{table}.json"
        if path.exists():
            results.extend(CheckResult(**row) for row in json.loads(path.read_text()))
    return GateReport(checks=results, tolerance=settings.gate_tolerance)
