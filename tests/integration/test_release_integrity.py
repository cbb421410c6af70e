"""A staged file that changes under the upload is caught before the manifest (real S3); each run stages in its
own folder; gc removes the folder left behind and nothing with a manifest."""

from __future__ import annotations

import gzip
import hashlib
from datetime import timedelta

import pyarrow as pa
import pytest

from pipelines.errors import ChecksumMismatch, ServiceUnavailable
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import store as store_module
from pipelines.release.blobs import Blob, parts_of
from pipelines.release.gc import collect
from pipelines.release.manifest import table_entry
from pipelines.release.parquet import columns, write_table, write_table_files
from pipelines.release.pipeline import remove_run_staging, staging_folder
from pipelines.release.s3 import s3_client
from pipelines.release.store import ReleaseStore
from tests.support.releases import delete_dataset

NO_PARTS = {"parts_uploaded": 0, "parts_kept": 0}


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
        assert store.write_release("r1", [staged], {}, first) == {"uploaded": 1, "kept": 0, "copied": 0, **NO_PARTS}
        again = write_table("events", pa.table({"a": list(range(1000))}), tmp_path / "2")
        second = {"release_id": "r2", "tables": {"events": _entry(store, "r2", again)}}
        source = first["tables"]["events"]["files"][0]["key"]
        # The staged file is damaged after it was hashed: a copy never reads it, an upload would be refused.
        again.path.write_bytes(b"not the staged bytes")
        counts = store.write_release("r2", [again], {}, second, unchanged={"events": source})
        assert counts == {"uploaded": 0, "kept": 0, "copied": 1, **NO_PARTS}
        key = second["tables"]["events"]["files"][0]["key"]
        assert key != source and store.get_file(key, tmp_path / "copy.parquet") == (staged.sha256, staged.bytes)
        # A source that is gone: the file is uploaded (and its bytes checked) instead.
        third = {"release_id": "r3", "tables": {"events": _entry(store, "r3", staged)}}
        counts = store.write_release("r3", [staged], {}, third, unchanged={"events": source + ".gone"})
        assert counts == {"uploaded": 1, "kept": 0, "copied": 0, **NO_PARTS}
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
        assert counts == {"uploaded": 1, "kept": len(keys) - 1, "copied": 0, **NO_PARTS}
        assert store.sizes(keys) == store.sizes(reversed(keys)) and len(store.sizes(keys)) == len(keys)
        # Not listed by the previous release: uploaded again even though the bucket has it.
        third = {"release_id": "r3", "tables": {"events": _entry(store, "r3", staged)}}
        assert store.write_release("r3", [staged], {}, third, listed=set(keys[1:]))["uploaded"] == 1
    finally:
        delete_dataset(isolated, isolated.dataset)


def _document(store: ReleaseStore, *texts: bytes) -> tuple[Blob, dict]:
    """A document of one gzip member per text, and its manifest entry as the release step makes it."""
    members = [gzip.compress(t, mtime=0) for t in texts]
    blob = Blob(b"".join(members), "application/gzip", tuple(len(m) for m in members))
    parts = [{**p, "key": store.part_key(p["sha256"]), "url": store.url(store.part_key(p["sha256"]))}
             for p in parts_of(blob)]
    return blob, {"path": "cdf/x.json.gz", "bytes": len(blob.body), "sha256": hashlib.sha256(blob.body).hexdigest(),
                  "parts": parts}


def test_a_document_is_published_as_parts_and_a_release_uploads_only_the_parts_it_changed(isolated):
    store = ReleaseStore(isolated)
    key = "cdf/x.json.gz"
    try:
        blob, entry = _document(store, b'{"a":[', b"1,2", b"]}")
        first = {"release_id": "r1", "tables": {}, "documents": {key: entry}}
        assert store.write_release("r1", [], {key: blob}, first)["parts_uploaded"] == 3
        folder = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=store.release_prefix("r1"))
        assert [o["Key"] for o in folder["Contents"]] == [store.release_prefix("r1") + "manifest.json"]
        # One member changed: it alone is uploaded; the others are left where the first release has them.
        changed, entry2 = _document(store, b'{"a":[', b"1,3", b"]}")
        second = {"release_id": "r2", "tables": {}, "documents": {key: entry2}}
        counts = store.write_release("r2", [], {key: changed}, second, listed=store.listed_keys(first))
        assert (counts["parts_uploaded"], counts["parts_kept"]) == (1, 2)
        joined = b"".join(store.s3.get_object(Bucket=store.bucket, Key=p["key"])["Body"].read()
                          for p in entry2["parts"])
        assert joined == changed.body and gzip.decompress(joined) == b'{"a":[1,3]}'
        # Carried over (no bytes to upload): its parts must be there, or nothing is published.
        s3_client(isolated, admin=True).delete_object(Bucket=store.bucket, Key=entry2["parts"][1]["key"])
        third = {"release_id": "r3", "tables": {}, "documents": {key: entry2}}
        with pytest.raises(ServiceUnavailable, match="is not in the bucket; release r3 was not published"):
            store.write_release("r3", [], {}, third, listed=store.listed_keys(second))
        assert store.manifest("r3") is None
        # A part whose bytes are not those its entry lists is not uploaded.
        damaged = Blob(changed.body[:-1] + b"\x01", changed.content_type, changed.members)
        with pytest.raises(ChecksumMismatch, match="release r4 was not published"):
            store.write_release("r4", [], {key: damaged}, {**third, "release_id": "r4"})
        assert store.manifest("r4") is None
    finally:
        delete_dataset(isolated, isolated.dataset)
