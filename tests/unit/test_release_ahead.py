"""A release started ahead by the gating step and taken by the release step (``pipelines.release.ahead``)."""

from __future__ import annotations

import logging
import threading

import pytest

from pipelines.release import ahead


def test_the_release_step_takes_the_outcome_of_the_release_started_under_its_run() -> None:
    go, done = threading.Event(), []

    def release(live) -> str:
        go.wait(5)
        done.append("release-1")
        return "manifest of release-1"

    ahead.start("run-a", release)
    assert done == []  # under way in its thread while the starting step goes on
    go.set()
    started = ahead.take("run-a")
    assert started is not None and started.result(5) == "manifest of release-1"
    assert ahead.take("run-a") is None  # taken once: nothing is left behind for a long-running watcher


def test_an_error_of_the_release_is_raised_where_it_is_taken() -> None:
    def release(live) -> str:
        raise RuntimeError("another publisher switched latest.json first")

    ahead.start("run-b", release)
    started = ahead.take("run-b")
    assert started is not None
    with pytest.raises(RuntimeError, match="another publisher"):
        started.result(5)


def test_a_run_starts_one_release_and_none_is_taken_where_none_started() -> None:
    go = threading.Event()
    ahead.start("run-c", lambda live: go.wait(5))
    with pytest.raises(ValueError, match="never taken"):
        ahead.start("run-c", lambda live: None)
    go.set()
    assert ahead.take("never-started") is None
    ahead.abandon("run-c")


def test_abandon_waits_for_the_release_and_says_how_it_ended(caplog: pytest.LogCaptureFixture) -> None:
    go, done = threading.Event(), []

    def release(live) -> None:
        go.wait(5)
        done.append("published")

    ahead.start("run-d", release)
    threading.Timer(0.2, go.set).start()
    with caplog.at_level(logging.WARNING, logger=ahead.__name__):
        ahead.abandon("run-d")
        assert done == ["published"]  # returned only once the release had ended
        ahead.start("run-e", lambda live: 1 / 0)
        ahead.abandon("run-e")
    assert "run-d was published" in caplog.text and "run-e failed" in caplog.text
    assert ahead.take("run-d") is None and ahead.take("run-e") is None


def test_wait_live_returns_once_latest_json_names_the_release_or_it_ended() -> None:
    steps, go_live, finish = [], threading.Event(), threading.Event()

    def release(live) -> None:
        go_live.wait(5)
        steps.append("switched latest.json")
        live()
        finish.wait(5)  # the catalog page and the announcement, beside the gating step's records
        steps.append("announced")

    ahead.start("run-f", release)
    threading.Timer(0.2, go_live.set).start()
    ahead.wait_live("run-f")
    assert steps == ["switched latest.json"]
    finish.set()
    started = ahead.take("run-f")
    assert started is not None and started.result(5) is None and steps[-1] == "announced"

    ahead.start("run-g", lambda live: 1 / 0)  # failed before going live: nobody waits for ever
    ahead.wait_live("run-g")
    assert isinstance(ahead.take("run-g").exception(5), ZeroDivisionError)
    ahead.wait_live("never-started")
