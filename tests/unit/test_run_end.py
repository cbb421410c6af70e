"""What ``run_publish`` leaves once a run has ended, however it ended."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dagster_project import run
from pipelines.release import ahead
from pipelines.settings import Settings


def test_a_release_no_release_step_took_is_waited_for_before_the_staging_goes_and_not_left_behind(
        tmp_path, monkeypatch, caplog: pytest.LogCaptureFixture) -> None:
    # A run that stopped between its gating step (which started the release: ``pipelines.release.ahead``) and its
    # release step: the release still reads the run's staging folder, and nothing would ever take it.
    go, steps, started_under = threading.Event(), [], []

    def release(live) -> None:
        go.wait(5)
        steps.append("released")

    @contextlib.contextmanager
    def stops(instance: Any, run_id: str, run_config: dict[str, Any], multiprocess: bool) -> Iterator[Any]:
        started_under.append(run_id)
        ahead.start(run_id, release)
        threading.Timer(0.2, go.set).start()
        raise RuntimeError("the run stopped before its release step")
        yield  # a generator, as ``_executed`` is

    monkeypatch.setattr(run, "_instance", lambda multiprocess: contextlib.nullcontext())
    monkeypatch.setattr(run, "_executed", stops)
    monkeypatch.setattr(run, "remove_run_outputs", lambda run_id: None)
    monkeypatch.setattr(run.pipeline, "remove_run_staging", lambda settings, run_id: steps.append("staging removed"))
    with caplog.at_level(logging.WARNING, logger=ahead.__name__), pytest.raises(RuntimeError, match="stopped"):
        run.run_publish(Settings(staging_dir=str(tmp_path)))
    assert steps == ["released", "staging removed"]
    assert ahead.take(started_under[0]) is None
    assert "the run ended before its release step took it" in caplog.text
