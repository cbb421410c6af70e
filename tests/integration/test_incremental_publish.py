"""Incremental publish against the real services: each publish reads only the events after the latest release's
checkpoint, its tables equal a full rebuild's byte for byte, the checkpoint is private, and a missing,
unreadable or tampered checkpoint makes the next publish rebuild in full and say why."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dagster_project.run import run_publish
from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from pipelines.release import cdf_ahead, checkpoint, mapped_copy, reuse
from pipelines.release.gc import collect
from pipelines.release.s3 import s3_client
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings


def _ingest(settings: Settings, directory: Path, *, stations: int, seed: int) -> None:
    synthesize(directory, stations=stations, seed=seed)
    report = ingest([p for p in sorted(directory.iterdir()) if p.name != "faults.jsonl"], settings)
    assert report.rejected_total == 0


def _events(manifest: dict) -> int:
    return sum(p["end_offset"] - p["start_offset"] for p in manifest["snapshot"])


def _shas(manifest: dict) -> dict[str, str]:
    return {name: table["sha256"] for name, table in manifest["tables"].items()}


def test_incremental_publishes_read_only_new_events_and_equal_a_full_rebuild(isolated, tmp_path):
    _ingest(isolated, tmp_path / "a", stations=12, seed=2)
    first = run_publish(isolated).manifest
    assert first["read"] == {"from": "full rebuild (no earlier release)", "events_read": _events(first),
                             "fold": "whole snapshot (a full rebuild)"}

    # The same files again (every event re-delivered), then new versions of three stations' tallies.
    _ingest(isolated, tmp_path / "a", stations=12, seed=2)
    second = run_publish(isolated).manifest
    _ingest(isolated, tmp_path / "c", stations=3, seed=9)
    third = run_publish(isolated).manifest
    for before, after in ((first, second), (second, third)):
        assert after["read"] == {"from": f"incremental from release {before['release_id']}",
                                 "events_read": _events(after) - _events(before),
                                 "fold": "whole snapshot (the new events are not tallies alone)"}
    assert _shas(second) != _shas(first) and _shas(third) != _shas(second)

    full = run_publish(isolated, force=True, full=True).manifest
    assert full["read"] == {"from": "full rebuild (requested)", "events_read": _events(full),
                            "fold": "whole snapshot (a full rebuild)"}
    assert full["snapshot"] == third["snapshot"]
    assert _shas(full) == _shas(third)

    # The public cannot read the checkpoint; the publisher can.
    store = ReleaseStore(isolated)
    with pytest.raises(ClientError, match="403|AccessDenied|Forbidden"):
        s3_client(isolated, anonymous=True).get_object(Bucket=isolated.release_bucket, Key=full["checkpoint"])
    assert store.get_json(full["checkpoint"])[0]["end"]


def test_an_unusable_checkpoint_means_a_full_rebuild_that_says_why(isolated, tmp_path):
    _ingest(isolated, tmp_path / "a", stations=6, seed=4)
    first = run_publish(isolated).manifest
    admin = s3_client(isolated, admin=True)
    bucket = isolated.release_bucket

    admin.put_object(Bucket=bucket, Key=first["checkpoint"], Body=b"{not json")
    _ingest(isolated, tmp_path / "b", stations=2, seed=5)
    second = run_publish(isolated).manifest
    assert second["read"]["from"].startswith(f"full rebuild (the checkpoint of release {first['release_id']} is "
                                             "unreadable: ")
    assert second["read"]["events_read"] == _events(second)

    admin.delete_object(Bucket=bucket, Key=second["checkpoint"])
    _ingest(isolated, tmp_path / "c", stations=2, seed=6)
    third = run_publish(isolated).manifest
    assert third["read"]["from"] == f"full rebuild (the checkpoint of release {second['release_id']} is missing)"

    # A segment whose bytes changed on S3 (and no local copy): caught by its checksum.
    ckpt = checkpoint.Checkpoint.from_json(ReleaseStore(isolated).get_json(third["checkpoint"])[0])
    segment = ckpt.segments[0]
    admin.put_object(Bucket=bucket, Key=checkpoint.segment_prefix(ReleaseStore(isolated), segment.segment_id)
                     + "envelope.arrow", Body=b"tampered")
    shutil.rmtree(checkpoint.cache_folder(isolated))
    _ingest(isolated, tmp_path / "d", stations=2, seed=7)
    fourth = run_publish(isolated).manifest
    reason = fourth["read"]["from"]
    assert reason.startswith(f"full rebuild (the checkpoint of release {third['release_id']}: ")
    assert "envelope.arrow: downloaded 8 bytes" in reason
    assert fourth["read"]["events_read"] == _events(fourth)

    # The fallbacks left checkpoints of their own: the next publish is incremental again and equals a full one.
    _ingest(isolated, tmp_path / "e", stations=2, seed=8)
    fifth = run_publish(isolated).manifest
    assert fifth["read"]["from"] == f"incremental from release {fourth['release_id']}"
    assert _shas(run_publish(isolated, force=True, full=True).manifest) == _shas(fifth)


def test_gc_keeps_only_the_latest_checkpoint_and_the_next_publish_still_resumes(isolated, tmp_path):
    _ingest(isolated, tmp_path / "a", stations=4, seed=11)
    run_publish(isolated)
    _ingest(isolated, tmp_path / "a", stations=4, seed=11)  # re-delivered: new offsets to publish
    latest = run_publish(isolated).manifest
    store = ReleaseStore(isolated)
    kept = checkpoint.Checkpoint.from_json(store.get_json(latest["checkpoint"])[0])
    listed = {f"{checkpoint.segment_prefix(store, s.segment_id)}{part}.arrow"
              for s in kept.segments for part in s.files}

    assert collect(isolated, timedelta(hours=1)).checkpoint_objects == 0  # everything is younger than that
    removed = collect(isolated, timedelta(0)).checkpoint_objects
    objects = s3_client(isolated, admin=True).list_objects_v2(Bucket=isolated.release_bucket,
                                                              Prefix=checkpoint.checkpoints_prefix(store))
    assert {o["Key"] for o in objects["Contents"]} == listed | {latest["checkpoint"]}
    assert removed == 1  # the first release's document; its segment is the latest's first one

    _ingest(isolated, tmp_path / "a", stations=4, seed=11)
    assert run_publish(isolated).manifest["read"]["from"] == f"incremental from release {latest['release_id']}"


def _flip(path: Path) -> bytes:
    """Change 10 bytes of ``path`` (same size); returns what it held."""
    intact = path.read_bytes()
    path.write_bytes(intact[:100] + bytes(b ^ 0xFF for b in intact[100:110]) + intact[110:])
    return intact


def test_a_cached_segment_changed_on_disk_is_fetched_again_from_the_bucket(isolated, tmp_path):
    _ingest(isolated, tmp_path / "a", stations=6, seed=4)
    first = run_publish(isolated).manifest
    ckpt = checkpoint.Checkpoint.from_json(ReleaseStore(isolated).get_json(first["checkpoint"])[0])
    folder = checkpoint.cache_folder(isolated) / ckpt.segments[0].segment_id
    # Both the zstd file and the uncompressed copy a publish loads (``mapped_copy``): the copy is made again
    # from the zstd files, which are downloaded again first.
    intact = _flip(folder / "envelope.arrow")
    copy = _flip(folder / mapped_copy.COPY_FOLDER / "envelope.arrow")

    _ingest(isolated, tmp_path / "b", stations=2, seed=5)
    second = run_publish(isolated).manifest
    assert second["read"]["from"] == f"incremental from release {first['release_id']}"
    assert (folder / "envelope.arrow").read_bytes() == intact
    assert (folder / mapped_copy.COPY_FOLDER / "envelope.arrow").read_bytes() == copy
    assert _shas(run_publish(isolated, force=True, full=True).manifest) == _shas(second)


def _verdicts(manifest: dict) -> list[tuple]:
    return [(c["table"], c["name"], c["success"], c["failing_rows"]) for c in manifest["gate"]["checks"]]


def test_the_gate_rechecks_only_changed_table_files_with_the_full_gates_verdicts(isolated, tmp_path):
    settings = dataclasses.replace(isolated, table_file_bytes=500)
    _ingest(settings, tmp_path / "a", stations=60, seed=21)
    first = run_publish(settings).manifest
    assert first["gate"]["files"]["reused"] == 0
    files = first["gate"]["files"]["checked"]
    assert files > len(first["tables"])  # split tables are gated per file
    kept = ReleaseStore(settings).get_json(first["checkpoint"])[0]["gate"]
    assert len(kept["tables"]["station_results"]["files"]) == len(first["tables"]["station_results"]["files"])

    _ingest(settings, tmp_path / "b", stations=2, seed=22)  # two more stations' tallies
    second = run_publish(settings).manifest
    assert second["read"]["from"].startswith("incremental")
    assert second["gate"]["files"]["reused"] > 0 and second["gate"]["files"]["checked"] > 0
    full = run_publish(settings, force=True, full=True).manifest
    assert full["gate"]["files"] == {"checked": files_of(full), "reused": 0}
    assert _verdicts(full) == _verdicts(second)
    assert ReleaseStore(settings).get_json(second["checkpoint"])[0]["gate"]["tables"]


def files_of(manifest: dict) -> int:
    return sum(len(t.get("files") or [t]) for t in manifest["tables"].values())


def _file_shas(manifest: dict) -> set[str]:
    return {f["sha256"] for t in manifest["tables"].values() for f in t.get("files") or [t]}


def test_a_publish_encodes_only_the_table_files_that_changed_and_diffs_from_the_kept_ones(isolated, tmp_path):
    settings = dataclasses.replace(isolated, table_file_bytes=500)
    _ingest(settings, tmp_path / "a", stations=60, seed=21)
    first = run_publish(settings).manifest
    assert first["write"]["files"] == {"written": files_of(first), "reused": 0}

    _ingest(settings, tmp_path / "b", stations=2, seed=22)  # two more stations' tallies
    second = run_publish(settings)
    written, reused = second.manifest["write"]["files"]["written"], second.manifest["write"]["files"]["reused"]
    assert written > 0 and reused > 0 and written + reused == files_of(second.manifest)
    assert (second.timings["files_written"], second.timings["files_reused"]) == (written, reused)
    # The previous release's differing files came from the local cache, which now keeps this release's only.
    assert second.timings["changes_files_local"] > 0 and second.timings["changes_files_downloaded"] == 0
    assert second.timings["changes_ahead"] == 1  # counted beside the gate
    assert second.timings["checkpoint_loaded_ahead"] == 1  # its local copy checked while the new events were read
    kept = checkpoint.table_files_folder(settings)
    assert {p.stem for p in kept.glob("*.parquet")} == _file_shas(second.manifest)
    # Beside some of them, their first row's order key (the splice's); none outlives its file.
    notes = {p.name.removesuffix(".first.json") for p in kept.glob("*.first.json")}
    assert notes and notes <= _file_shas(second.manifest)
    assert len(list(kept.iterdir())) == len(_file_shas(second.manifest)) + len(notes)
    records = ReleaseStore(settings).get_json(second.manifest["checkpoint"])[0]["table_files"]
    assert {r["sha256"] for r in records.values()} == _file_shas(second.manifest)

    full = run_publish(settings, force=True, full=True).manifest  # no reuse, no checkpoint: every file written
    assert full["write"]["files"] == {"written": files_of(full), "reused": 0}
    assert _shas(full) == _shas(second.manifest)

    # Another machine (no local cache): every file written again, and the differing ones downloaded.
    shutil.rmtree(checkpoint.cache_folder(settings))
    _ingest(settings, tmp_path / "c", stations=2, seed=23)
    third = run_publish(settings)
    assert third.manifest["read"]["from"] == f"incremental from release {full['release_id']}"
    assert third.manifest["write"]["files"] == {"written": files_of(third.manifest), "reused": 0}
    assert third.timings["changes_files_local"] == 0 and third.timings["changes_files_downloaded"] > 0
    assert third.timings["checkpoint_loaded_ahead"] == 0  # no local copy to load ahead: downloaded, then made


def _two_corrected_stations(settings: Settings, tmp_path: Path) -> dict:
    """A 400-station election published, then new versions of two stations' tallies ingested; the first
    release's manifest."""
    # One contest a station (its council): a scope of a few councils. (A regional list or a national referendum
    # at every station would make the scope the whole election.)
    synthesize(tmp_path / "a", stations=400, seed=3, contests=1)
    assert ingest([p for p in sorted((tmp_path / "a").iterdir()) if p.name != "faults.jsonl"],
                  settings).rejected_total == 0
    first = run_publish(settings).manifest
    # New versions of two stations' tallies: their rows of the results file, one vote moved from the second
    # candidate to the first (the sum stays the valid ballots).
    with (tmp_path / "a" / "results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    stations = sorted({r["station_id"] for r in rows})[:2]
    changed = [dict(r) for r in rows if r["station_id"] in stations]
    for station in stations:
        first_two = [r for r in changed if r["station_id"] == station][:2]
        if int(first_two[1]["votes"]) > 0:
            first_two[0]["votes"] = str(int(first_two[0]["votes"]) + 1)
            first_two[1]["votes"] = str(int(first_two[1]["votes"]) - 1)
    (tmp_path / "b").mkdir()
    with (tmp_path / "b" / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(changed)
    assert ingest([tmp_path / "b" / "results.csv"], settings).rejected_total == 0
    return first


def test_a_publish_of_new_tallies_alone_folds_their_scope_and_equals_a_full_rebuild(isolated, tmp_path):
    settings = dataclasses.replace(isolated, table_file_bytes=4096)  # tables of many files: spliced in spans
    first = _two_corrected_stations(settings, tmp_path)

    outcome = run_publish(settings)
    second = outcome.manifest
    assert second["read"]["from"] == f"incremental from release {first['release_id']}"
    assert second["read"]["fold"].startswith("the new tallies' scope: ")
    # The NIST documents' build started in the stage, once their tables were staged, and the release used it.
    assert 0 < outcome.timings["documents_started_in_stage_s"] < outcome.timings["stage_total_s"]
    assert outcome.timings["documents_built_ahead"] == len(second["documents"]) >= 1
    # Its interpreter was started as the read was planned (a small read), and nothing of it is left.
    assert outcome.timings["documents_interpreter_prepared"] == 1.0 and cdf_ahead._SPARE == []
    # The gate's CPU beside its wall time (every thread of the process: at most every core's worth).
    assert 0 < outcome.timings["validate_user_s"] + outcome.timings["validate_sys_s"] \
        <= (os.cpu_count() or 1) * outcome.timings["validate_s"] + 0.5
    assert second["write"]["files"]["reused"] > second["write"]["files"]["written"]
    assert len(second["tables"]["events"]["files"]) > 1
    full = run_publish(settings, force=True, full=True).manifest
    assert full["read"]["fold"] == "whole snapshot (a full rebuild)"
    assert full["snapshot"] == second["snapshot"]
    assert _shas(full) == _shas(second)


def test_a_scope_too_large_to_build_the_documents_beside_the_gate_builds_them_after_it(isolated, tmp_path,
                                                                                      monkeypatch):
    settings = dataclasses.replace(isolated, table_file_bytes=4096)
    first = _two_corrected_stations(settings, tmp_path)
    monkeypatch.setattr(cdf_ahead, "AHEAD_MAX_SCOPE_TALLIES", 0)  # every scope is too large

    outcome = run_publish(settings)
    second = outcome.manifest
    assert second["read"]["from"] == f"incremental from release {first['release_id']}"
    assert outcome.timings["scope_tallies"] > 0 and "documents_started_in_stage_s" not in outcome.timings
    # Built once the gate had passed, still in a process of its own: the release used what it built.
    assert outcome.timings["documents_built_ahead"] == len(second["documents"]) >= 1
    full = run_publish(settings, force=True, full=True).manifest
    assert _shas(full) == _shas(second)


def test_a_scoped_stage_stopped_after_it_let_go_of_the_extraction_folds_the_whole_snapshot(isolated, tmp_path):
    # The scoped stage frees the whole extraction once it has cut out its scope; a kept file found damaged by a
    # splice after that means the publish loads it again and folds in full.
    settings = dataclasses.replace(isolated, table_file_bytes=4096)
    first = _two_corrected_stations(settings, tmp_path)
    kept = reuse.TableFileCache(checkpoint.table_files_folder(settings), {})
    for entry in first["tables"]["events"]["files"]:
        path = kept.kept_path(entry["sha256"])
        data = bytearray(path.read_bytes())
        data[8] ^= 0xFF  # the first row group: rows read from it would be wrong
        path.write_bytes(bytes(data))

    second = run_publish(settings).manifest
    assert second["read"]["from"] == f"incremental from release {first['release_id']}"
    assert second["read"]["fold"].startswith("whole snapshot (a file of events in the local cache is damaged")
    full = run_publish(settings, force=True, full=True).manifest
    assert full["snapshot"] == second["snapshot"] and _shas(full) == _shas(second)
