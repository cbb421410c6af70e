"""A staged file that changes under the upload is caught before the manifest (real S3); each run stages in its
own folder; gc removes the folder left behind and nothing with a manifest."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from pipelines.errors import ChecksumMismatch
from pipelines.kafka.snapshot import Snapshot
from pipelines.release.gc import collect
from pipelines.release.manifest import table_entry
from pipelines.release.parquet import columns, write_table
from pipelines.release.pipeline import remove_run_staging, staging_folder
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
