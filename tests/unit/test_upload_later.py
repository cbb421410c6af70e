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
