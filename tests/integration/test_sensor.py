"""The sensor (through the resource) requests a publish exactly when the topics hold events the latest release
lacks; the job itself publishes nothing for an unchanged snapshot, so a schedule tick cannot republish."""

from __future__ import annotations

import dagster as dg

from dagster_project.automation import offsets_moved
from dagster_project.resources import BallotstreamResource
from dagster_project.run import run_publish
from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from pipelines.release.store import ReleaseStore


def _evaluate(cursor, settings):
    context = dg.build_sensor_context(cursor=cursor, resources={"ballotstream": BallotstreamResource.of(settings)})
    return offsets_moved(context)


def test_sensor_requests_a_run_only_when_offsets_moved_past_the_latest_release(isolated, tmp_path):
    assert isinstance(_evaluate(None, isolated), dg.SkipReason)  # empty topics: nothing to publish
    synthesize(tmp_path, stations=10, seed=2)
    ingest([p for p in sorted(tmp_path.iterdir()) if p.name != "faults.jsonl"], isolated)
    first = _evaluate(None, isolated)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    assert isinstance(_evaluate(first.cursor, isolated), dg.SkipReason)  # already requested

    published = run_publish(isolated)
    assert published.manifest is not None
    unchanged = _evaluate(None, isolated)  # even without a cursor: the latest release holds this snapshot
    assert isinstance(unchanged, dg.SkipReason) and "nothing to publish" in str(unchanged.skip_message)
    tick = run_publish(isolated)  # what a schedule tick runs
    assert tick.manifest is None and "nothing to publish" in tick.skipped
    assert [i.release_id for i in ReleaseStore(isolated).list()] == [published.manifest["release_id"]]

    (tmp_path / "more").mkdir()
    synthesize(tmp_path / "more", stations=3, seed=9)
    ingest([tmp_path / "more" / "news.jsonl"], isolated)
    moved = _evaluate(first.cursor, isolated)
    assert isinstance(moved, dg.SensorResult) and moved.run_requests[0].run_key != first.run_requests[0].run_key
