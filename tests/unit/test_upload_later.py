"""Uploads started in a thread and finished by a later step (``pipelines.release.later``)."""

from __future__ import annotations

import threading

from pipelines.release import later


def test_finish_waits_for_the_upload_started_under_its_key() -> None:
    gate, done = threading.Event(), []

    def upload() -> None:
        gate.wait(5)
        done.append("segment-a")

    later.start("segment-a", upload)
    assert done == []
    gate.set()
    assert later.finish("segment-a") is True
    assert done == ["segment-a"]
    assert later.finish("segment-a") is False  # finished once: the next caller uploads it itself


def test_an_upload_that_failed_or_never_started_is_the_callers_to_do() -> None:
    def upload() -> None:
        raise OSError("the bucket went away")

    later.start("segment-b", upload)
    assert later.finish("segment-b") is False
    assert later.finish("never-started") is False


def test_uploads_nobody_finishes_are_forgotten_oldest_first_beyond_the_bound() -> None:
    later.start("never-finished-0", lambda: None)
    later.finish("never-finished-0")  # an empty pool's queue: the next ones finish in order too
    for i in range(1, later.KEEP + 10):
        later.start(f"never-finished-{i}", lambda: None)
        later._STARTED[f"never-finished-{i}"].result()
    later.start("waited-for", lambda: None)
    assert len(later._STARTED) <= later.KEEP
    assert "never-finished-1" not in later._STARTED  # the oldest went first
    assert later.finish("waited-for") is True  # the newest is still there for its own run's release step
    for key in list(later._STARTED):
        later.finish(key)


def test_an_upload_still_running_is_never_forgotten() -> None:
    gate = threading.Event()
    later.start("slow", lambda: gate.wait(5))
    for i in range(later.KEEP + 5):
        later.start(f"quick-{i}", lambda: None)
    assert "slow" in later._STARTED
    gate.set()
    assert later.finish("slow") is True
    for key in list(later._STARTED):
        later.finish(key)
