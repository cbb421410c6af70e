"""The read as one Dagster step per partition range, against the real services: with the multi-process executor
every range is read by a step in a process of its own, the fold step gets only segment ids (the segments come
through the bucket when its machine lacks them), and the release equals a full rebuild read in one step."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import dagster as dg

from dagster_project import keys
from dagster_project.instance import write_instance_yaml
from dagster_project.resources import BallotstreamResource
from dagster_project.run import resolved_publish_job, run_publish
from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from pipelines.kafka import snapshot
from pipelines.release import checkpoint, pipeline
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings

RANGES = 4


def _ingest(settings: Settings, directory: Path, *, stations: int, seed: int) -> None:
    synthesize(directory, stations=stations, seed=seed)
    report = ingest([p for p in sorted(directory.iterdir()) if p.name != "faults.jsonl"], settings)
    assert report.rejected_total == 0


def _shas(manifest: dict) -> dict[str, str]:
    return {name: table["sha256"] for name, table in manifest["tables"].items()}


def _range_steps(run_id: str) -> dict[str, tuple[int, dict]]:
    """Per read step of the run: (its process id, its output's metadata)."""
    with dg.DagsterInstance.get() as instance:
        logs = instance.all_logs(run_id)
    prefix = f"{keys.READ_NODE}.{keys.READ_RANGE_OP}["
    return {e.step_key: (e.dagster_event.pid, {k: v.value for k, v in e.dagster_event.step_output_data.metadata.items()})
            for e in logs if e.step_key and e.step_key.startswith(prefix) and e.dagster_event
            and e.dagster_event.event_type_value == "STEP_OUTPUT"}


def _step_segments(steps: dict[str, tuple[int, dict]]) -> list[str]:
    """The segments the read steps saved, as their outputs' metadata names them."""
    return sorted(segment for _, meta in steps.values() for segment in meta["segments"])


def test_multiprocess_run_reads_one_step_per_range_and_equals_a_full_rebuild(isolated, tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    write_instance_yaml(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the steps' processes inherit it: one instance, one storage
    settings = replace(isolated, read_ranges=RANGES, read_range_min_events=1)
    _ingest(settings, tmp_path / "a", stations=12, seed=3)

    first = run_publish(settings, multiprocess=True)
    steps = _range_steps(first.run_id)
    assert sorted(steps) == [f"{keys.READ_NODE}.{keys.READ_RANGE_OP}[range_{i}]" for i in range(RANGES)]
    assert len({pid for pid, _ in steps.values()} | {os.getpid()}) == RANGES + 1  # each in a process of its own
    # Together the steps read every partition of the snapshot once.
    offsets = [tp for _, meta in steps.values() for tp in meta["offsets"]]
    assert sorted(offsets) == sorted(f"{p['topic']}[{p['partition']}]" for p in first.manifest["snapshot"]
                                     if p["end_offset"] > p["start_offset"])
    events = sum(p["end_offset"] - p["start_offset"] for p in first.manifest["snapshot"])
    assert sum(meta["events"] for _, meta in steps.values()) == events
    assert all(meta["seconds"] > 0 for _, meta in steps.values())
    assert first.manifest["read"] == {"from": "full rebuild (no earlier release)", "events_read": events,
                                      "fold": "whole snapshot (a full rebuild)"}
    # The release step (a process of its own) published the NIST documents the gate step built beside the gate,
    # and released itself: the gating step starts a release only for a release step of its own process.
    assert first.timings["documents_built_ahead"] == len(first.manifest["documents"]) >= 1
    assert "release_ahead_wait_s" not in first.timings

    # The checkpoint lists the ranges' segments, which the read steps put in the bucket themselves.
    store = ReleaseStore(settings)
    ckpt = checkpoint.Checkpoint.from_json(store.get_json(first.manifest["checkpoint"])[0])
    assert sorted(s.segment_id for s in ckpt.segments) == _step_segments(steps)

    _ingest(settings, tmp_path / "b", stations=3, seed=4)
    second = run_publish(settings, multiprocess=True).manifest
    assert second["read"]["from"] == f"incremental from release {first.manifest['release_id']}"
    full = run_publish(replace(settings, read_ranges=1), force=True, full=True).manifest
    assert full["read"]["from"] == "full rebuild (requested)"
    assert full["snapshot"] == second["snapshot"] and _shas(full) == _shas(second)
    # Forced without new events: one empty range, nothing read, the same tables.
    forced = run_publish(settings, force=True).manifest
    assert forced["read"] == {"from": f"incremental from release {full['release_id']}", "events_read": 0,
                              "fold": "the new tallies' scope: 0 contests, 0.0% of the tallies"}
    assert _shas(forced) == _shas(full)


def test_in_one_process_the_segments_upload_behind_the_fold_and_the_release_starts_after_the_gate(isolated, tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    write_instance_yaml(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    settings = replace(isolated, read_ranges=2, read_range_min_events=1)
    _ingest(settings, tmp_path / "a", stations=6, seed=7)
    done = run_publish(settings)
    # Released ahead by the gating step, in a thread; the release step took its outcome, and it is the latest.
    assert done.timings["release_ahead_wait_s"] >= 0
    assert ReleaseStore(settings).latest()[0]["release_id"] == done.manifest["release_id"]
    steps = _range_steps(done.run_id)
    # Not uploaded by the read steps (whose timings would say how long it took) but behind them, in this process.
    assert len(steps) == 2 and not any("segment_upload_s" in meta for _, meta in steps.values())
    store = ReleaseStore(settings)
    ckpt = checkpoint.Checkpoint.from_json(store.get_json(done.manifest["checkpoint"])[0])
    assert sorted(s.segment_id for s in ckpt.segments) == _step_segments(steps)
    # Every file of every segment is in the bucket with the bytes the checkpoint names.
    fetched = tmp_path / "elsewhere"
    fetched.mkdir()
    for segment in ckpt.segments:
        for part, expected in segment.files.items():
            key = checkpoint.segment_prefix(store, segment.segment_id) + f"{part}.arrow"
            assert store.get_file(key, fetched / f"{segment.segment_id}.{part}") == (expected["sha256"],
                                                                                     expected["bytes"])


def test_the_fold_step_on_another_machine_fetches_the_ranges_from_the_bucket(isolated, tmp_path):
    settings = replace(isolated, read_ranges=3, read_range_min_events=1)
    _ingest(settings, tmp_path / "a", stations=8, seed=5)
    snap = snapshot.capture(settings, pipeline.event_topic_names(settings))
    full = checkpoint.Base(None, "full rebuild")
    store = ReleaseStore(settings)
    reader = replace(settings, staging_dir=str(tmp_path / "reader"))  # the read steps' machine
    reads = [checkpoint.read_range(reader, r, checkpoint.cache_folder(reader), store=store)
             for r in checkpoint.plan_ranges(settings, snap, full)]
    assert len(reads) == 3 and all(r.uploaded for r in reads)

    folder = replace(settings, staging_dir=str(tmp_path / "folder"))  # the fold step's machine: nothing local
    staged = pipeline.stage(folder, snap, base=full, store=store, reads=reads)
    # Besides the segments, the cache keeps the table files the fold step staged and their station_turnout files'
    # figures (for the next publish to reuse).
    fetched = {p.name for p in checkpoint.cache_folder(folder).iterdir()} - {
        checkpoint.TABLE_FILES_FOLDER, checkpoint.DOCUMENT_BLOCKS_FOLDER, checkpoint.FIGURES_FOLDER}
    assert fetched == {s.segment_id for r in reads for s in r.segments}
    assert staged.next_checkpoint is not None and not staged.next_checkpoint.new  # nothing left to upload

    whole = pipeline.stage(replace(settings, read_ranges=1), snap, base=full, store=store)
    assert {n: f.sha256 for n, f in staged.files.items()} == {n: f.sha256 for n, f in whole.files.items()}


def test_a_run_of_the_tables_alone_gates_them_and_releases_nothing(isolated, tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    write_instance_yaml(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    _ingest(isolated, tmp_path / "a", stations=4, seed=5)
    job = resolved_publish_job()
    run_config = {"resources": {"ballotstream": {"config": BallotstreamResource.of(isolated).model_dump()}}}
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False,
                                        asset_selection=[k for k in job.asset_layer.selected_asset_keys
                                                         if k != keys.RELEASE])
    assert result.success
    made = {m.asset_key for m in result.get_asset_materialization_events()}
    assert keys.STAGED in made and keys.RELEASE not in made
    assert all(e.passed for e in result.get_asset_check_evaluations())
    # The gate passed in one process, yet no release was started ahead: the run does not include one.
    assert ReleaseStore(isolated).latest() == (None, None)
