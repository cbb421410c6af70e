"""The NIST documents' build's interpreter, started before the build (``cdf_ahead.prepare``)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.kafka.snapshot import Snapshot
from pipelines.release import cdf, cdf_ahead, pipeline
from pipelines.release.blobs import Blob
from pipelines.release.cdf_ahead import Build
from pipelines.settings import Settings
from tests.support import contests as fx

AT = datetime(2020, 11, 5, 12, 30, 15, 123456, tzinfo=UTC)
SNAPSHOT = Snapshot(start={("test", 0): 0}, end={("test", 0): 1})


@pytest.fixture(autouse=True)
def _no_spare_left() -> Any:
    yield
    cdf_ahead.let_go_of_spare()


def _staged(tmp_path: Path, run_id: str = "run") -> pipeline.Staged:
    return pipeline.stage_tables(Settings(staging_dir=str(tmp_path)), SNAPSHOT, fx.contest_tables(), run_id=run_id)


def _sequential(staged: pipeline.Staged) -> Blob:
    docs, _ = cdf.release_documents(staged.files, generated_at=AT)
    return docs[cdf.document_key(fx.ELECTION)]


def test_the_next_build_runs_in_the_prepared_interpreter_and_builds_the_same_bytes(tmp_path):
    staged = _staged(tmp_path)
    assert cdf_ahead.prepare(cdf_ahead.PREPARE_MAX_EVENTS)
    spare = cdf_ahead._SPARE[0]
    assert cdf_ahead.prepare(1) and cdf_ahead._SPARE == [spare]  # one at a time
    build = Build(staged.directory, generated_at=AT, previous=None)
    build.start(staged.files)
    assert build.process is spare and cdf_ahead._SPARE == []  # taken: the next build starts its own
    assert build.wait()["documents_interpreter_prepared"] == 1.0
    assert Build.load(staged.directory, staged.files, AT) == {cdf.document_key(fx.ELECTION): _sequential(staged)}

    again = Build(staged.directory, generated_at=AT, previous=None)
    again.start(staged.files)
    assert again.wait()["documents_interpreter_prepared"] == 0.0


def test_a_large_read_prepares_nothing(tmp_path):
    assert not cdf_ahead.prepare(cdf_ahead.PREPARE_MAX_EVENTS + 1) and cdf_ahead._SPARE == []


def test_a_prepared_interpreter_no_build_took_ends_with_the_run_and_exits_cleanly(tmp_path):
    assert cdf_ahead.prepare(1)
    spare = cdf_ahead._SPARE[0]
    pipeline.remove_run_staging(Settings(staging_dir=str(tmp_path)), "run")
    assert cdf_ahead._SPARE == [] and spare.returncode == 0  # read the end of its input, built nothing


def test_a_prepared_interpreter_that_died_is_replaced(tmp_path):
    staged = _staged(tmp_path)
    assert cdf_ahead.prepare(1)
    dead = cdf_ahead._SPARE[0]
    dead.kill()
    dead.wait()
    assert cdf_ahead.prepare(1) and cdf_ahead._SPARE[0] is not dead  # prepared again
    cdf_ahead._SPARE[0].kill()
    cdf_ahead._SPARE[0].wait()
    build = Build(staged.directory, generated_at=AT, previous=None)
    build.start(staged.files)  # a dead spare is not taken
    assert build.wait()["documents_interpreter_prepared"] == 0.0
    assert Build.load(staged.directory, staged.files, AT) == {cdf.document_key(fx.ELECTION): _sequential(staged)}


# An interpreter that reads its input only once told to (as a prepared one still importing the export would).
LATE_READER = """import pathlib, sys, time
go = pathlib.Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
sys.stdin.buffer.read()
"""


def test_starting_a_build_never_waits_for_its_interpreter_to_read_the_arguments(tmp_path, monkeypatch):
    go = tmp_path / "go"
    late = subprocess.Popen([sys.executable, "-c", LATE_READER, str(go)], stdin=subprocess.PIPE)
    monkeypatch.setattr(cdf_ahead, "_interpreter", lambda: late)
    staged = _staged(tmp_path)
    # Arguments larger than a pipe's buffer: written in the calling thread, they would block it.
    files = {**staged.files, **{f"padding-{i:05d}-{'x' * 100}": staged.files["elections"] for i in range(2000)}}
    build = Build(staged.directory, generated_at=AT, previous=None)
    starting = threading.Thread(target=build.start, args=(files,))
    starting.start()
    starting.join(60)
    returned = not starting.is_alive()
    go.touch()
    starting.join()
    assert returned and build.process is late
    late.wait(60)
