"""The NIST documents built beside the gate (``pipelines.release.cdf_ahead``): the release step gets the bytes the
sequential build makes, and never a document of tables the gate re-staged (withholding) or refused."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.gate import GateReport
from pipelines.gate.report import CheckResult
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import cdf, cdf_ahead, pipeline, scoped
from pipelines.release.cdf_ahead import FOLDER, Build, StartWhenStaged
from pipelines.release.parquet import write_table_files
from pipelines.release.store import Blob
from pipelines.settings import Settings
from tests.support import contests as fx

AT = datetime(2020, 11, 5, 12, 30, 15, 123456, tzinfo=UTC)
KEY = cdf.document_key(fx.ELECTION)
SNAPSHOT = Snapshot(start={("test", 0): 0}, end={("test", 0): 1})


def _sequential(files: dict[str, Any], at: datetime = AT) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the release step builds without a document built ahead."""
    return cdf.release_documents(files, generated_at=at)


def _without_station(tables: dict[str, pa.Table], station: str) -> dict[str, pa.Table]:
    """The tables as withholding one station's tallies leaves them (its result and turnout rows gone)."""
    out = dict(tables)
    for name in ("contest_results", "station_turnout"):
        column = "unit_id" if name == "contest_results" else "station_id"
        out[name] = tables[name].filter(pc.not_equal(tables[name][column], station))
    return out


def _stage(tmp_path: Path, tables: dict[str, pa.Table], run_id: str = "run") -> pipeline.Staged:
    return pipeline.stage_tables(Settings(staging_dir=str(tmp_path)), SNAPSHOT, tables, run_id=run_id)


def _index(staged: pipeline.Staged) -> dict[str, Any]:
    return json.loads((staged.directory / FOLDER / "index.json").read_bytes())


def _built(staged: pipeline.Staged, at: datetime = AT, previous: dict[str, Any] | None = None) -> Build:
    build = Build(staged.directory, generated_at=at, previous=previous)
    build.start(staged.files)
    waited = build.wait()
    assert waited["documents_wait_s"] >= 0 and ("documents_ahead_s" in waited) == (staged.directory / FOLDER).exists()
    return build


def test_a_document_built_ahead_is_the_sequential_builds_bytes(tmp_path):
    staged = _stage(tmp_path, fx.contest_tables())
    _built(staged)
    loaded = Build.load(staged.directory, staged.files, AT)
    docs, entries = _sequential(staged.files)
    assert isinstance(docs[KEY], Blob) and loaded == {KEY: docs[KEY]} and docs[KEY].members
    # The release step publishes it as it would have built it, entry for entry.
    assert cdf.release_documents(staged.files, generated_at=AT, built=loaded) == (docs, entries)


def test_a_document_is_not_used_for_another_time_or_when_its_bytes_changed(tmp_path):
    staged = _stage(tmp_path, fx.contest_tables())
    _built(staged)
    assert Build.load(staged.directory, staged.files, AT + timedelta(microseconds=1)) == {}
    path = staged.directory / FOLDER / KEY
    body = path.read_bytes()
    path.write_bytes(body[:20] + bytes([body[20] ^ 1]) + body[21:])
    assert Build.load(staged.directory, staged.files, AT) == {}
    path.unlink()
    assert Build.load(staged.directory, staged.files, AT) == {}


def test_a_failed_build_leaves_nothing_and_says_so(tmp_path, caplog):
    staged = _stage(tmp_path, fx.contest_tables())
    staged.files["elections"].path.unlink()  # the build cannot read it; the release step would raise
    build = _built(staged)
    assert "failed" in caplog.text and build.wait() == {}
    assert not (staged.directory / FOLDER).exists()


def test_a_build_whose_index_is_damaged_counts_as_failed(tmp_path, caplog):
    staged = _stage(tmp_path, fx.contest_tables())
    build = Build(staged.directory, generated_at=AT, previous=None)
    build.start(staged.files)
    build.process.wait()  # the build ended well; then its index is damaged before the gate step waits
    (staged.directory / FOLDER / "index.json").write_bytes(b"{not json")
    waited = build.wait()
    assert "failed" in caplog.text and set(waited) == {"documents_wait_s"}
    assert not (staged.directory / FOLDER).exists()
    assert Build.load(staged.directory, staged.files, AT) == {}


def test_documents_the_previous_release_has_are_not_built(tmp_path):
    staged = _stage(tmp_path, fx.contest_tables())
    _, entries = _sequential(staged.files)
    _built(staged, previous={"release_id": "r1", "documents": entries, "tables": {}})
    assert json.loads((staged.directory / FOLDER / "index.json").read_bytes())["documents"] == {}
    assert Build.load(staged.directory, staged.files, AT) == {}


class _Store:
    """What the gate asks of the bucket here: no release yet, and where a blocked report went."""

    def latest(self) -> tuple[None, None]:
        return None, None

    def store_blocked_report(self, attempt_id: str, report: dict[str, Any]) -> str:
        return f"reports/{attempt_id}/"


def _report(passed: bool) -> GateReport:
    check = CheckResult("cast_le_registered", "station_turnout", "cast <= registered", True, passed, 0 if passed else 1,
                        3)
    return GateReport(checks=[check], tolerance=0.0)


def _slower_than_the_build(settings: Settings, staged: pipeline.Staged) -> GateReport:
    """A first gate that fails once the documents of the first staging are built (a real one takes seconds)."""
    deadline = time.monotonic() + 60
    while not (staged.directory / FOLDER / "index.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return _report(False)


def test_after_withholding_the_release_gets_the_document_of_the_restaged_tables(tmp_path, monkeypatch):
    settings = Settings(staging_dir=str(tmp_path), gate_withhold="station_turnout.cast_le_registered")
    staged = _stage(tmp_path, fx.contest_tables())
    first = Build.load(staged.directory, staged.files, AT)  # nothing built yet
    withheld = _without_station(fx.contest_tables(), fx.P1)

    def withhold(settings: Settings, staged: pipeline.Staged, report: GateReport, *, restaged: Any) -> GateReport:
        again = pipeline.stage_tables(settings, SNAPSHOT, withheld, run_id="run")  # in place, as withhold does
        staged.files, staged.columns = again.files, again.columns
        restaged()
        return _report(True)

    monkeypatch.setattr(pipeline, "validate", _slower_than_the_build)
    monkeypatch.setattr(pipeline, "withhold", withhold)
    before = pipeline.stage_tables(settings, SNAPSHOT, fx.contest_tables(), run_id="before").files
    report = pipeline.gate(settings, staged, "attempt", store=_Store())  # type: ignore[arg-type]
    assert report.passed and first == {}
    at = staged.release_time
    assert at is not None
    build = Build.started(staged.directory)  # left running for the release step, which waits for it
    assert build is not None and "documents_ahead_s" in build.wait() and Build.started(staged.directory) is None
    stale, _ = _sequential(before, at)
    fresh, _ = _sequential(staged.files, at)
    assert stale[KEY].body != fresh[KEY].body  # withholding changed the document
    assert Build.load(staged.directory, staged.files, at) == {KEY: fresh[KEY]}
    assert json.loads(gzip.decompress(fresh[KEY].body))["GeneratedDate"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_blocked_gate_leaves_no_document(tmp_path, monkeypatch):
    settings = Settings(staging_dir=str(tmp_path))
    staged = _stage(tmp_path, fx.contest_tables())
    monkeypatch.setattr(pipeline, "validate", _slower_than_the_build)
    report = pipeline.gate(settings, staged, "attempt", store=_Store())  # type: ignore[arg-type]
    assert not report.passed and report.report_url == "reports/attempt/"
    assert not (staged.directory / FOLDER).exists() and Build.started(staged.directory) is None
    assert staged.release_time is not None and Build.load(staged.directory, staged.files, staged.release_time) == {}


def test_a_passed_gate_leaves_the_build_to_the_release_and_a_run_that_ends_stops_it(tmp_path, monkeypatch):
    settings = Settings(staging_dir=str(tmp_path))
    staged = pipeline.stage_tables(settings, SNAPSHOT, fx.contest_tables(), run_id="passed")
    monkeypatch.setattr(pipeline, "validate", lambda settings, staged: _report(True))
    assert pipeline.gate(settings, staged, "attempt", store=_Store()).passed  # type: ignore[arg-type]
    build = Build.started(staged.directory)
    assert build is not None and build.process is not None  # not waited for: the gate returned at once
    assert pipeline.remove_run_staging(settings, "passed") == [staged.directory]
    assert Build.started(staged.directory) is None and build.process is None and not staged.directory.exists()


def test_the_build_starts_once_the_tables_it_reads_are_staged_and_the_gate_keeps_it(tmp_path, monkeypatch):
    settings = Settings(staging_dir=str(tmp_path))
    staged = pipeline.stage_tables(settings, SNAPSHOT, fx.contest_tables(), run_id="early")
    start = StartWhenStaged(staged.directory, None)
    start.scoped(cdf_ahead.AHEAD_MAX_SCOPE_TALLIES)
    so_far: dict[str, Any] = {}
    for name in [n for n in staged.files if n not in cdf.TABLES] + [n for n in staged.files if n in cdf.TABLES]:
        assert start.generated_at is None and Build.started(staged.directory) is None
        so_far[name] = staged.files[name]
        start(so_far)
    build = Build.started(staged.directory)
    assert build is not None and start.generated_at is not None
    start(staged.files)  # once started, not again
    assert Build.started(staged.directory) is build and build.generated_at == start.generated_at
    staged.release_time = start.generated_at  # as ``_stage_scoped`` leaves it
    monkeypatch.setattr(pipeline, "validate", lambda settings, staged: _report(True))
    assert pipeline.gate(settings, staged, "attempt", store=_Store()).passed  # type: ignore[arg-type]
    assert Build.started(staged.directory) is build and staged.release_time == start.generated_at
    assert "documents_ahead_s" in build.wait()
    sequential, _ = _sequential(staged.files, start.generated_at)
    assert Build.load(staged.directory, staged.files, start.generated_at) == {KEY: sequential[KEY]}
    # Started by the stage, the build is what the release waits for: it runs at the publish's own priority.
    assert _index(staged)["niceness"] == cdf_ahead.SCOPED_NICENESS == 0


def test_a_build_the_gate_did_not_decide_the_time_of_is_replaced(tmp_path, monkeypatch):
    settings = Settings(staging_dir=str(tmp_path))
    staged = pipeline.stage_tables(settings, SNAPSHOT, fx.contest_tables(), run_id="stray")
    stray = Build(staged.directory, generated_at=AT, previous=None)
    stray.start(staged.files)
    monkeypatch.setattr(pipeline, "validate", lambda settings, staged: _report(True))
    assert pipeline.gate(settings, staged, "attempt", store=_Store()).passed  # type: ignore[arg-type]
    build = Build.started(staged.directory)
    assert build is not None and build is not stray and stray.process is None
    assert staged.release_time is not None and build.generated_at == staged.release_time != AT
    build.wait()
    assert Build.load(staged.directory, staged.files, AT) == {}
    assert KEY in Build.load(staged.directory, staged.files, staged.release_time)
    # Started by the gate, the build gives way to it.
    assert _index(staged)["niceness"] == cdf_ahead.NICENESS > 0


def test_a_scoped_stage_that_stops_discards_its_build_and_leaves_nothing(tmp_path, monkeypatch):
    # A stage that stops once every table the documents read is staged, their build started: it is discarded with
    # what the stage wrote (the whole fold writes over those files).
    settings = Settings(staging_dir=str(tmp_path))
    files = _stage(tmp_path / "tables", fx.contest_tables()).files
    started: list[object] = []

    def stops(source, manifest, release_id, dataset, writing):
        writing.scoped(1)
        (writing.directory / "contests").mkdir(parents=True)
        writing.staged(files)  # every table the documents read
        started.append(Build.started(writing.directory))
        raise scoped.NotScoped("a file of events in the local cache is damaged")

    monkeypatch.setattr(scoped, "stage_scoped", stops)
    extension, base = SimpleNamespace(extracted=None, new_from=1), SimpleNamespace(release_id="r1")
    staged, note = pipeline._stage_scoped(settings, SNAPSHOT, extension, base, _Store(),  # type: ignore[arg-type]
                                          [], "scoped", None)
    directory = pipeline.staging_folder(settings, SNAPSHOT, "scoped")
    assert staged is None and note == "whole snapshot (a file of events in the local cache is damaged)"
    assert started[0] is not None and started[0].process is None  # type: ignore[attr-defined]
    assert Build.started(directory) is None and not directory.exists()


def _scoped_staged(settings: Settings, monkeypatch, scope_tallies: int, seen: list[object]) -> pipeline.Staged:
    """``_stage_scoped`` of the contest fixture's tables, as a stage of ``scope_tallies`` tally events in scope
    would leave them (``seen``: the build started before and after the stage had staged the documents' tables)."""

    def ends(source, manifest, release_id, dataset, writing):
        writing.scoped(scope_tallies)
        files = {name: write_table_files(name, table, writing.directory, **writing.how(name))
                 for name, table in fx.contest_tables().items()}
        writing.staged({name: files[name] for name in files if name not in cdf.TABLES})
        seen.append(Build.started(writing.directory))
        writing.staged(files)
        seen.append(Build.started(writing.directory))
        return scoped.ScopedStage(files, {}, "the new tallies' scope", {"fold_s": 0.0}, scope_tallies=scope_tallies)

    monkeypatch.setattr(scoped, "stage_scoped", ends)
    extension, base = SimpleNamespace(extracted=None, new_from=1), SimpleNamespace(release_id="r1")
    staged, _ = pipeline._stage_scoped(settings, SNAPSHOT, extension, base, _Store(),  # type: ignore[arg-type]
                                       [], "scoped", None)
    assert staged is not None
    return staged


@pytest.mark.parametrize("scope_tallies", [1, cdf_ahead.AHEAD_MAX_SCOPE_TALLIES])
def test_a_small_scope_starts_the_build_once_the_tables_it_reads_are_staged(tmp_path, monkeypatch, scope_tallies):
    settings = Settings(staging_dir=str(tmp_path))
    seen: list[object] = []
    staged = _scoped_staged(settings, monkeypatch, scope_tallies, seen)
    try:
        build = Build.started(staged.directory)
        assert seen[0] is None and seen[1] is build is not None  # started inside the stage, kept after it
        assert staged.release_time == build.generated_at is not None
        assert not staged.documents_after_gate and 0 <= staged.timings["documents_started_in_stage_s"]
    finally:
        cdf_ahead.discard_started(tmp_path)


@pytest.mark.parametrize("passed", [True, False])
def test_a_large_scope_builds_the_documents_only_once_the_gate_has_passed(tmp_path, monkeypatch, passed):
    # The gate's frames and the build's blocks both grow with the scope: side by side they made a large scope's
    # peak, so its build waits until the gate has given its memory back.
    settings = Settings(staging_dir=str(tmp_path))
    seen: list[object] = []
    staged = _scoped_staged(settings, monkeypatch, cdf_ahead.AHEAD_MAX_SCOPE_TALLIES + 1, seen)
    assert seen == [None, None]
    assert Build.started(staged.directory) is None and staged.release_time is None and staged.documents_after_gate
    assert "documents_started_in_stage_s" not in staged.timings and staged.timings["scope_tallies"] > 0
    during: list[object] = []

    def validate(settings: Settings, staged: pipeline.Staged) -> GateReport:
        during.append(Build.started(staged.directory))
        return _report(passed)

    monkeypatch.setattr(pipeline, "validate", validate)
    try:
        assert pipeline.gate(settings, staged, "attempt", store=_Store()).passed is passed  # type: ignore[arg-type]
        build = Build.started(staged.directory)
        assert during == [None]
        if not passed:  # a blocked release needs no documents: none was built
            assert build is None and staged.release_time is None and not (staged.directory / FOLDER).exists()
            return
        assert build is not None and staged.release_time is not None and build.generated_at == staged.release_time
        build.wait()
        sequential, _ = _sequential(staged.files, staged.release_time)
        assert Build.load(staged.directory, staged.files, staged.release_time) == {KEY: sequential[KEY]}
    finally:
        cdf_ahead.discard_started(tmp_path)


def test_a_build_works_in_the_publishers_folder(tmp_path, monkeypatch):
    # The staging folder may be relative to the publisher's working folder.
    monkeypatch.chdir(tmp_path)
    staged = pipeline.stage_tables(Settings(staging_dir="staging"), SNAPSHOT, fx.contest_tables(), run_id="run")
    assert not staged.directory.is_absolute()
    _built(staged)
    assert Build.load(staged.directory, staged.files, AT) == {KEY: _sequential(staged.files)[0][KEY]}


PUBLISHER = """
import sys
from pathlib import Path

if __name__ != "__main__":  # imported by a child process, as multiprocessing's children import their parent's main
    Path(__file__).with_suffix(".imported").touch()
else:
    from datetime import UTC, datetime

    from pipelines.kafka.snapshot import Snapshot
    from pipelines.release import pipeline
    from pipelines.release.cdf_ahead import Build
    from pipelines.settings import Settings
    from tests.support import contests as fx

    snapshot = Snapshot(start={("test", 0): 0}, end={("test", 0): 1})
    staged = pipeline.stage_tables(Settings(staging_dir=sys.argv[1]), snapshot, fx.contest_tables(), run_id="run")
    build = Build(staged.directory, generated_at=datetime.now(UTC), previous=None)
    build.start(staged.files)
    print(sorted(build.wait()))
"""


def test_a_build_does_not_load_the_publishers_main_module(tmp_path):
    # A build in a child of multiprocessing ran the publisher's __main__ first: 1.7 s of CPU under bench_live.
    script = tmp_path / "publisher.py"
    script.write_text(PUBLISHER)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "staging")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(root)}, check=True)
    assert "documents_ahead_s" in done.stdout, done.stdout + done.stderr
    assert not script.with_suffix(".imported").exists()
