"""The sensor requests a publish exactly when the event topics' end offsets moved."""

from __future__ import annotations

import dagster as dg

from dagster_project.automation import offsets_moved
from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from tests.conftest import env_of


def _evaluate(cursor, monkeypatch, settings):
    for name, value in env_of(settings).items():
        monkeypatch.setenv(name, value)
    return offsets_moved(dg.build_sensor_context(cursor=cursor))


def test_sensor_requests_a_run_only_when_offsets_moved(isolated, tmp_path, monkeypatch):
    synthesize(tmp_path, stations=10, seed=2)
    ingest([p for p in sorted(tmp_path.iterdir()) if p.name != "faults.jsonl"], isolated)
    first = _evaluate(None, monkeypatch, isolated)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    again = _evaluate(first.cursor, monkeypatch, isolated)
    assert isinstance(again, dg.SkipReason)
    (tmp_path / "more").mkdir()
    synthesize(tmp_path / "more", stations=3, seed=9)
    ingest([tmp_path / "more" / "news.jsonl"], isolated)
    moved = _evaluate(first.cursor, monkeypatch, isolated)
    assert isinstance(moved, dg.SensorResult) and moved.run_requests[0].run_key != first.run_requests[0].run_key
