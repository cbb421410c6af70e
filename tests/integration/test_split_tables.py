"""Large tables as several content-addressed files, against the real services: a release lists every file, a
correction of one station uploads only the files it changed, the public reads the files anonymously,
pyarrow and DuckDB read a table as one dataset straight from the bucket, and gc removes the files no release
lists once they are older than its grace period."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from dagster_project.run import run_publish
from pipelines.errors import BallotstreamError, ServiceUnavailable
from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from pipelines.release.gc import collect
from pipelines.release.s3 import s3_client
from pipelines.release.store import ReleaseStore
from tests.support.sample_edits import station_rows

SPLIT = ("station_results", "contest_results")


def _objects(settings, prefix: str) -> dict[str, int]:
    pages = s3_client(settings, admin=True).get_paginator("list_objects_v2").paginate(
        Bucket=settings.release_bucket, Prefix=prefix)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def _one_vote_moved(synth_dir: Path) -> str:
    """The first station's rows again as a later version, one vote moved between two of its candidates."""
    _, header, rows = station_rows(synth_dir, cast_above_registered=False, occurred_at="2030-05-06T08:00:00+00:00")
    cols = header.split(",")
    first, second = (r.split(",") for r in rows[:2])
    assert first[cols.index("contest_id")] == second[cols.index("contest_id")]
    first[cols.index("votes")] = str(int(first[cols.index("votes")]) - 1)
    second[cols.index("votes")] = str(int(second[cols.index("votes")]) + 1)
    return "\n".join([header, ",".join(first), ",".join(second), *rows[2:]]) + "\n"


def test_large_tables_are_files_a_correction_uploads_only_what_changed_and_readers_see_one_table(isolated, tmp_path):
    settings = dataclasses.replace(isolated, table_file_bytes=500)
    synthesize(tmp_path / "e", stations=40, seed=3)
    assert ingest([p for p in sorted((tmp_path / "e").iterdir()) if p.name != "faults.jsonl"],
                  settings).rejected_total == 0
    first = run_publish(settings).manifest
    for name in SPLIT:
        entry = first["tables"][name]
        assert len(entry["files"]) > 3 and entry["path"] is None and entry["url"] is None
        assert sum(f["rows"] for f in entry["files"]) == entry["rows"]
        assert all(f["key"] == f"{settings.dataset}/tables/{name}/{f['sha256']}.parquet" for f in entry["files"])
        assert all("url" not in f for f in entry["files"])  # base_url + key (docs/releases.md)
    small = first["tables"]["elections"]
    assert [f["key"] for f in small["files"]] == [
        f"{settings.dataset}/releases/{first['release_id']}/tables/elections.parquet"]

    # Anyone reads a file; pyarrow (S3, anonymous) and DuckDB (its URLs) read the table as one dataset.
    entry = first["tables"]["contest_results"]
    assert first["base_url"] == settings.public_url("")
    urls = [first["base_url"] + f["key"] for f in entry["files"]]
    with urllib.request.urlopen(urls[0], timeout=10) as response:
        assert response.status == 200 and int(response.headers["Content-Length"]) == entry["files"][0]["bytes"]
    s3 = pafs.S3FileSystem(anonymous=True, endpoint_override=settings.s3_endpoint_url, scheme="http",
                           region=settings.s3_region)
    table = ds.dataset([f"{settings.release_bucket}/{f['key']}" for f in entry["files"]], filesystem=s3,
                       format="parquet").to_table()
    assert table.num_rows == entry["rows"]
    con = duckdb.connect()
    platform = con.execute("PRAGMA platform").fetchone()[0]
    con.execute(f"LOAD '{importlib.resources.files('duckdb_ext') / 'extensions' / f'v{duckdb.__version__}' / platform}"
                "/httpfs.duckdb_extension'")  # the packaged extension, as the README loads it (no download)
    assert con.execute("SELECT count(*) FROM read_parquet(?)", [urls]).fetchone()[0] == entry["rows"]
    # catalog.json lists the files by path, which resolves against its own URL to the same bytes.
    catalog_url = settings.public_url(f"{settings.dataset}/catalog.json")
    with urllib.request.urlopen(catalog_url, timeout=10) as response:
        listed = json.loads(response.read())["releases"][0]["tables"]["contest_results"]["files"]
    assert [(f["sha256"], f["bytes"], f["rows"]) for f in listed] == [
        (f["sha256"], f["bytes"], f["rows"]) for f in entry["files"]] and all("url" not in f for f in listed)
    with urllib.request.urlopen(urllib.parse.urljoin(catalog_url, listed[-1]["path"]), timeout=10) as response:
        assert hashlib.sha256(response.read()).hexdigest() == listed[-1]["sha256"]

    # One station's tally again, as a later version: a few files change, the rest are the earlier release's.
    (tmp_path / "fix").mkdir()
    (tmp_path / "fix" / "results.csv").write_text(_one_vote_moved(tmp_path / "e"))
    assert ingest([tmp_path / "fix" / "results.csv"], settings).rejected_total == 0
    before = _objects(settings, f"{settings.dataset}/tables/")
    second = run_publish(settings).manifest
    assert second["read"]["from"] == f"incremental from release {first['release_id']}"
    uploaded = {k: size for k, size in _objects(settings, f"{settings.dataset}/tables/").items() if k not in before}
    for name in ("station_results", "contest_results"):
        old = {f["key"] for f in first["tables"][name]["files"]}
        new = [f for f in second["tables"][name]["files"] if f["key"] not in old]
        assert 1 <= len(new) < len(second["tables"][name]["files"]) / 2, name
        assert {f["key"] for f in new} <= set(uploaded)
    # What was uploaded is exactly what the release lists that no earlier release had.
    listed = {f["key"] for t in second["tables"].values() for f in t["files"]}
    assert set(uploaded) <= listed
    assert ReleaseStore(settings).table_keys(second, "station_results") == [
        f["key"] for f in second["tables"]["station_results"]["files"]]


def test_a_split_table_diffs_against_the_previous_release(isolated, tmp_path: Path):
    settings = dataclasses.replace(isolated, table_file_bytes=500)
    synthesize(tmp_path / "e", stations=20, seed=5)
    files = [p for p in sorted((tmp_path / "e").iterdir()) if p.name != "faults.jsonl"]
    ingest(files, settings)
    run_publish(settings)
    (tmp_path / "fix.csv").write_text(_one_vote_moved(tmp_path / "e"))
    ingest([tmp_path / "fix.csv"], settings)
    changes = run_publish(settings).manifest["changes"]["tables"]
    assert changes["station_results"]["added"] == changes["station_results"]["removed"] == 0
    # The station's rows of every contest it reported (a new version each), two of them with other votes.
    assert changes["station_results"]["changed"] >= 2
    assert changes["contests"] == {"added": 0, "changed": 0, "removed": 0}


def _failing_publish(settings, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """A publish that dies after uploading its table files and document parts, before its manifest; the keys of
    the parts it uploaded."""
    put_json, put_bytes, parts = ReleaseStore.put_json, ReleaseStore.put_bytes, set()

    def refuse_manifest(self, key, body, **conditions):
        if key.endswith("/manifest.json"):
            raise ServiceUnavailable(f"S3 put {key}: connection reset (test)")
        return put_json(self, key, body, **conditions)

    def put_part(self, key, data, content_type, **conditions):
        parts.add(key)
        return put_bytes(self, key, data, content_type, **conditions)

    with monkeypatch.context() as patch:
        patch.setattr(ReleaseStore, "put_json", refuse_manifest)
        patch.setattr(ReleaseStore, "put_bytes", put_part)
        with pytest.raises(BallotstreamError, match="connection reset"):
            run_publish(settings)
    return {key for key in parts if f"{settings.dataset}/parts/" in key}


def _shared(settings) -> dict[str, int]:
    """The files of split tables and documents' parts in the bucket, with their sizes."""
    return {**_objects(settings, f"{settings.dataset}/tables/"), **_objects(settings, f"{settings.dataset}/parts/")}


def _young_orphan(settings, body: bytes) -> str:
    key = ReleaseStore(settings).object_key("contest_results", hashlib.sha256(body).hexdigest())
    s3_client(settings, admin=True).put_object(Bucket=settings.release_bucket, Key=key, Body=body)
    return key


def test_gc_removes_table_files_no_release_lists_once_old_and_a_publish_after_it_works(isolated, tmp_path,
                                                                                         monkeypatch):
    settings = dataclasses.replace(isolated, table_file_bytes=500)
    # A publish's files are still younger than this when gc runs after it: the release uploads them before the
    # gate step records its results (pipelines/release/ahead.py), seconds before the publish ends.
    grace = timedelta(seconds=6)
    synthesize(tmp_path / "e", stations=20, seed=8)
    ingest([p for p in sorted((tmp_path / "e").iterdir()) if p.name != "faults.jsonl"], settings)
    first = run_publish(settings).manifest
    # The files of split tables and the parts of documents: shared by releases, collected alike.
    listed = {key for key in ReleaseStore(settings).listed_keys(first) if "/releases/" not in key}
    assert set(_shared(settings)) == listed and any(f"{settings.dataset}/parts/" in key for key in listed)

    # A correction whose publish dies before its manifest leaves the files it changed, listed by no release.
    (tmp_path / "fix.csv").write_text(_one_vote_moved(tmp_path / "e"))
    ingest([tmp_path / "fix.csv"], settings)
    _failing_publish(settings, monkeypatch)
    orphans = set(_shared(settings)) - listed
    assert orphans and any(f"{settings.dataset}/parts/" in key for key in orphans)  # the correction's document too

    # Past the grace period a second attempt needs the same files: it uploads them again rather than trusting
    # they stay, so gc (which would have removed them a moment ago) keeps them as young. Not the first attempt's
    # member with its release time: the second has a time of its own.
    time.sleep(grace.total_seconds() + 1.5)
    assert collect(settings, grace, dry_run=True).shared_files == len(orphans)
    uploaded = _failing_publish(settings, monkeypatch)
    stale = orphans - uploaded - {k for k in orphans if "/tables/" in k}
    assert len(stale) == 1 and not uploaded <= orphans  # a time member each
    young = _young_orphan(settings, b"young")
    done = collect(settings, grace)
    left = (orphans | uploaded) - stale
    assert (done.shared_files, done.kept_young_shared_files) == (len(stale), len(left) + 1)

    time.sleep(grace.total_seconds() + 1.5)
    younger = _young_orphan(settings, b"younger")
    dry = collect(settings, grace, dry_run=True)
    assert set(_shared(settings)) == listed | left | {young, younger}
    done = collect(settings, grace)
    assert (dry.shared_files, done.shared_files, done.kept_young_shared_files) == (len(left) + 1,) * 2 + (1,)
    assert set(_shared(settings)) == listed | {younger}  # every file the release lists stays

    # The correction published after gc uploads the files gc removed; every file it lists is there.
    second = run_publish(settings).manifest
    files = [f for t in second["tables"].values() for f in t["files"]]
    assert {k for k in orphans if "/tables/" in k} <= {f["key"] for f in files}
    files += [p for d in second["documents"].values() for p in d["parts"]]
    present = _objects(settings, settings.dataset + "/")
    assert all(present.get(f["key"]) == f["bytes"] for f in files)
