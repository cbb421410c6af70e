"""A publish writes ``cdf/<election_id>.json`` beside datapackage.json for each election, valid against the NIST
schema, and lists it in the manifest; a release folded without the contest tables lists none and writes none."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from pipelines.fold import fold
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import cdf
from pipelines.release.pipeline import release, stage_tables, validate
from pipelines.release.store import ReleaseStore
from tests.support.factories import small_election

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "nist" / "NIST_V2_election_results_reporting.json"


def test_release_carries_a_nist_document_per_election_when_it_has_contest_tables(isolated):
    tables = fold(small_election().records)
    staged = stage_tables(isolated, Snapshot(start={("test", 0): 0}, end={("test", 0): 1}), tables)
    manifest = release(isolated, staged, validate(isolated, staged))
    store = ReleaseStore(isolated)
    prefix = store.release_prefix(manifest["release_id"])
    listed = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=prefix + cdf.FOLDER + "/").get("Contents", [])
    elections = sorted(set(tables["elections"].column("election_id").to_pylist()))
    has_contests = all(n in tables for n in cdf.REQUIRED)
    expected = [cdf.document_key(e) for e in elections] if has_contests else []
    assert sorted(manifest["documents"]) == expected
    assert sorted(o["Key"].removeprefix(prefix) for o in listed) == expected
    validator = jsonschema.Draft4Validator(json.loads(SCHEMA.read_text(encoding="ascii")))
    for key, entry in manifest["documents"].items():
        document, _ = store.get_json(prefix + key)
        assert document is not None and list(validator.iter_errors(document)) == []
        assert entry["url"] == store.url(prefix + key)
        assert document["GeneratedDate"] == manifest["created_at"].replace("+00:00", "Z")
