"""A publish writes ``cdf/<election_id>.json.gz`` for each election as its parts (one public object per gzip
member), valid against the NIST schema once joined and decompressed, and lists it in the manifest with its size and
sha256; a release folded without the contest tables lists none and writes none. A release whose export inputs are
unchanged carries the previous release's document over, byte for byte, without uploading it. The gate step builds
the documents beside the gate, and the release step publishes those bytes, the sequential build's."""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from pipelines.fold import fold
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import cdf
from pipelines.release.cdf_ahead import Build
from pipelines.release.pipeline import gate, release, stage_tables, validate
from pipelines.release.s3 import s3_client
from pipelines.release.store import ReleaseStore
from tests.support.factories import small_election

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "nist" / "NIST_V2_election_results_reporting.json"


def _documents(store: ReleaseStore, manifest: dict) -> dict[str, tuple[bytes, str]]:
    """Each document as the public gets it: its parts fetched anonymously from their URLs and joined in order, each
    part checked against its entry (its bytes, its key named by its content, the content type)."""
    out = {}
    for key, entry in manifest["documents"].items():
        body, types = b"", set()
        for part in entry["parts"]:
            with urllib.request.urlopen(manifest["base_url"] + part["key"], timeout=30) as response:
                got = response.read()
                types.add(response.headers["Content-Type"])
            assert (len(got), hashlib.sha256(got).hexdigest()) == (part["bytes"], part["sha256"])
            assert part["key"] == store.part_key(part["sha256"]) and "url" not in part
            body += got
        (content_type,) = types
        out[key] = (body, content_type)
    # Nothing of theirs in the release folder: the parts are the document.
    folder = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=store.release_prefix(manifest["release_id"]))
    assert not [o["Key"] for o in folder.get("Contents", []) if f"/{cdf.FOLDER}/" in o["Key"]]
    return out


def test_release_carries_a_nist_document_per_election_when_it_has_contest_tables(isolated):
    tables = fold(small_election().records)
    staged = stage_tables(isolated, Snapshot(start={("test", 0): 0}, end={("test", 0): 1}), tables)
    manifest = release(isolated, staged, validate(isolated, staged))
    store = ReleaseStore(isolated)
    elections = sorted(set(tables["elections"].column("election_id").to_pylist()))
    has_contests = all(n in tables for n in cdf.REQUIRED)
    expected = [cdf.document_key(e) for e in elections] if has_contests else []
    documents = _documents(store, manifest)
    assert sorted(manifest["documents"]) == sorted(documents) == expected
    validator = jsonschema.Draft4Validator(json.loads(SCHEMA.read_text(encoding="ascii")))
    for key, entry in manifest["documents"].items():
        body, content_type = documents[key]
        assert content_type == cdf.MEDIA_TYPE == entry["media_type"]
        assert (len(body), hashlib.sha256(body).hexdigest()) == (entry["bytes"], entry["sha256"])
        document = json.loads(gzip.decompress(body))
        assert list(validator.iter_errors(document)) == []
        assert len(entry["parts"]) >= 5  # the frame's two members, a block at least, the time and the status
        assert document["GeneratedDate"] == manifest["created_at"].replace("+00:00", "Z")

    # The same tables published again: the documents are the first release's parts, neither rebuilt nor uploaded.
    again = release(isolated, staged, validate(isolated, staged))
    assert again["previous_release"] == manifest["release_id"]
    assert {k: (e["bytes"], e["sha256"], e["inputs"]) for k, e in again["documents"].items()} == \
        {k: (e["bytes"], e["sha256"], e["inputs"]) for k, e in manifest["documents"].items()}
    assert again["documents"] == manifest["documents"] and _documents(store, again) == documents

    # A part of the carried-over document gone from the bucket (removed by hand): the next release builds the
    # documents again and uploads what is missing, instead of failing until the tables change.
    assert has_contests  # the small election has contest tables, so it has a document to lose a part of
    gone = next(iter(again["documents"].values()))["parts"][1]["key"]
    s3_client(isolated, admin=True).delete_object(Bucket=store.bucket, Key=gone)
    staged.timings.pop("documents_rebuilt_parts_missing", None)
    third = release(isolated, staged, validate(isolated, staged))
    assert staged.timings["documents_rebuilt_parts_missing"] == 1
    assert third["previous_release"] == again["release_id"] and store.manifest(third["release_id"]) == third
    assert gone in {p["key"] for e in third["documents"].values() for p in e["parts"]}
    rebuilt = _documents(store, third)  # every part there again, each its listed bytes
    for key, entry in third["documents"].items():
        assert json.loads(gzip.decompress(rebuilt[key][0]))["GeneratedDate"] == \
            third["created_at"].replace("+00:00", "Z")


def test_the_release_publishes_the_documents_built_beside_the_gate(isolated, monkeypatch):
    tables = fold(small_election().records)
    staged = stage_tables(isolated, Snapshot(start={("test", 0): 0}, end={("test", 0): 1}), tables)
    report = gate(isolated, staged, "attempt")
    at = staged.release_time
    assert report.passed and at is not None and Build.started(staged.directory) is not None  # left running
    expected, _ = cdf.release_documents(staged.files, generated_at=at)  # the sequential build
    built = {key: doc.body for key, doc in expected.items()}
    assert built != {}
    monkeypatch.setattr(cdf, "read_export_tables", lambda _: pytest.fail("the release step built the documents"))
    manifest = release(isolated, staged, report)  # waits for the build
    assert staged.timings["documents_built_ahead"] == len(built) and staged.timings["documents_ahead_s"] > 0
    assert Build.started(staged.directory) is None
    store = ReleaseStore(isolated)
    assert {key: body for key, (body, _) in _documents(store, manifest).items()} == built
    assert manifest["created_at"] == at.isoformat(timespec="seconds")
    assert manifest["release_id"].startswith(at.strftime("%Y%m%dT%H%M%S.%f"))
