"""A staged file that changes under the upload is caught before the manifest (real S3); each run stages in its
own folder; gc removes the folder left behind and nothing with a manifest."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from pipelines.errors import ChecksumMismatch
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import store as store_module
from pipelines.release.gc import collect
from pipelines.release.manifest import table_entry
from pipelines.release.parquet import columns, write_table, write_table_files
from pipelines.release.pipeline import remove_run_staging, staging_folder
from pipelines.release.s3 import s3_client
from pipelines.release.store import ReleaseStore
from tests.support.releases import delete_dataset


def _entry(store: ReleaseStore, release_id: str, staged) -> dict:
    return table_entry(staged, columns(pa.table({"a": [1]})), release_prefix=store.release_prefix(release_id),
                       object_key=store.object_key, url=store.url)


def test_changed_staged_file_is_not_published_and_gc_removes_the_folder(isolated, tmp_path):
    store = ReleaseStore(isolated)
    try:
        staged = write_table("events", pa.table({"a": list(range(1000))}), tmp_path)
        manifest = {"release_id": "r1", "tables": {"events": _entry(store, "r1", staged)}}
        # Another writer replaces the file after it was hashed (what a shared staging folder allowed).
        write_table("events", pa.table({"a": list(range(1, 1001))}), tmp_path)
        with pytest.raises(ChecksumMismatch, match="was not published"):
            store.write_release("r1", [staged], {}, manifest)
        assert store.manifest("r1") is None
        assert [i.status for i in store.list()] == ["incomplete (no manifest; never published)"]
        kept = write_table("events", pa.table({"a": [1]}), tmp_path / "2")
        store.write_release("r2", [kept], {}, {"release_id": "r2", "tables": {"events": _entry(store, "r2", kept)}})
        assert collect(isolated, timedelta(hours=1), dry_run=False).release_folders == []  # young: kept
        dry = collect(isolated, timedelta(0), dry_run=True)
        assert dry.release_folders == ["r1"] and store.release_ids() == ["r1", "r2"]
        assert collect(isolated, timedelta(0)).release_folders == ["r1"]
        assert store.release_ids() == ["r2"]
    finally:
        delete_dataset(isolated, isolated.dataset)


def test_each_run_stages_in_its_own_folder_and_removes_it(isolated):
    snap = Snapshot(start={("t", 0): 0}, end={("t", 0): 5})
    a, b = staging_folder(isolated, snap, "run-a"), staging_folder(isolated, snap, "run-b")
    assert a != b and a.parent == b.parent
    for folder in (a, b):
        write_table("events", pa.table({"a": [1]}), folder)
    assert remove_run_staging(isolated, "run-a") == [a]
    assert not a.exists() and b.exists()


def test_an_unchanged_one_file_table_is_copied_in_the_bucket_not_uploaded(isolated, tmp_path):
    store = ReleaseStore(isolated)
    try:
        staged = write_table("events", pa.table({"a": list(range(1000))}), tmp_path / "1")
        first = {"release_id": "r1", "tables": {"events": _entry(store, "r1", staged)}}
        assert store.write_release("r1", [staged], {}, first) == {"uploaded": 1, "kept": 0, "copied": 0}
        again = write_table("events", pa.table({"a": list(range(1000))}), tmp_path / "2")
        second = {"release_id": "r2", "tables": {"events": _entry(store, "r2", again)}}
        source = first["tables"]["events"]["files"][0]["key"]
        # The staged file is damaged after it was hashed: a copy never reads it, an upload would be refused.
        again.path.write_bytes(b"not the staged bytes")
        counts = store.write_release("r2", [again], {}, second, unchanged={"events": source})
        assert counts == {"uploaded": 0, "kept": 0, "copied": 1}
        key = second["tables"]["events"]["files"][0]["key"]
        assert key != source and store.get_file(key, tmp_path / "copy.parquet") == (staged.sha256, staged.bytes)
        # A source that is gone: the file is uploaded (and its bytes checked) instead.
        third = {"release_id": "r3", "tables": {"events": _entry(store, "r3", staged)}}
        counts = store.write_release("r3", [staged], {}, third, unchanged={"events": source + ".gone"})
        assert counts == {"uploaded": 1, "kept": 0, "copied": 0}
    finally:
        delete_dataset(isolated, isolated.dataset)


def test_a_file_the_previous_release_lists_is_kept_only_while_the_bucket_holds_it(isolated, tmp_path, monkeypatch):
    store = ReleaseStore(isolated)
    table = pa.table({"a": list(range(3000))})
    try:
        staged = write_table_files("events", table, tmp_path / "1", split_column="a", width=(8.0, 8.0),
                                   file_bytes=8_000)
        assert len(staged.parts) >= 3
        first = {"release_id": "r1", "tables": {"events": _entry(store, "r1", staged)}}
        assert store.write_release("r1", [staged], {}, first)["uploaded"] == len(staged.parts)
        keys = [f["key"] for f in first["tables"]["events"]["files"]]
        assert store.sizes(keys) == {f["key"]: f["bytes"] for f in first["tables"]["events"]["files"]}
        # One listed file is gone from the bucket (removed by hand): it is uploaded again, the others kept.
        s3_client(isolated, admin=True).delete_object(Bucket=store.bucket, Key=keys[1])
        assert keys[1] not in store.sizes(keys)
        there = {k: f["bytes"] for k, f in zip(keys, first["tables"]["events"]["files"], strict=True) if k != keys[1]}
        for page, per_key in ((1, 1), (2, 1), (1, 100)):  # listings cut short by the budget, asked one by one after
            monkeypatch.setattr(store_module, "LIST_PAGE", page)
            monkeypatch.setattr(store_module, "LISTED_PER_KEY", per_key)
            assert store.sizes(keys) == there and store.sizes(keys[1:2]) == {}
            assert store.sizes([*keys[::2], keys[0] + ".gone"]) == {k: there[k] for k in keys[::2] if k in there}
        monkeypatch.undo()
        second = {"release_id": "r2", "tables": {"events": _entry(store, "r2", staged)}}
        counts = store.write_release("r2", [staged], {}, second, listed=set(keys))
        assert counts == {"uploaded": 1, "kept": len(keys) - 1, "copied": 0}
        assert store.sizes(keys) == store.sizes(reversed(keys)) and len(store.sizes(keys)) == len(keys)
        # Not listed by the previous release: uploaded again even though the bucket has it.
        third = {"release_id": "r3", "tables": {"events": _entry(store, "r3", staged)}}
        assert store.write_release("r3", [staged], {}, third, listed=set(keys[1:]))["uploaded"] == 1
    finally:
        delete_dataset(isolated, isolated.dataset)
