"""End to end: ingest the sample election, publish it with `ballotstream publish` (the Dagster job), and read
the release back from S3 with pyarrow. Also: reproducibility, atomicity and the gate blocking a bad snapshot."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipelines.cli import cli
from pipelines.errors import PublishConflict, ServiceUnavailable
from pipelines.generator.sample import build_sample
from pipelines.ingest.run import ingest
from pipelines.kafka.admin import delete_topics
from pipelines.release.pipeline import plan, release, stage, validate
from pipelines.release.store import ReleaseStore
from tests.support.services import env_of, make_isolated


@pytest.fixture(scope="module")
def sample_env(services, tmp_path_factory):
    """An isolated environment holding the sample election, published once through the CLI."""
    tmp = tmp_path_factory.mktemp("sample")
    settings = make_isolated(services, tmp / "staging")
    build_sample(tmp / "data")
    report = ingest(sorted((tmp / "data").iterdir()), settings)
    assert report.rejected_total == 0
    result = CliRunner().invoke(cli, ["publish"], env=env_of(settings))
    assert result.exit_code == 0, result.output
    yield settings, result.output
    delete_topics(settings)


def _table(settings, name):
    store = ReleaseStore(settings)
    latest, _ = store.latest()
    manifest = store.manifest(latest["release_id"])
    # A large table is several files (BALLOTSTREAM_TABLE_FILE_BYTES): read one after another, they are the table.
    return pa.concat_tables(
        pq.read_table(pa.py_buffer(store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()))
        for key in store.table_keys(manifest, name))


def test_publish_prints_release_rows_checks_and_urls(sample_env):
    settings, output = sample_env
    assert "published release " in output
    assert "gate: " in output and "checks passed" in output
    assert f"/{settings.dataset}/releases/" in output and "tables/<table>.parquet" in output
    # A table in several files is not where the pattern points: the line names it (the sample's events are 4 files).
    manifest = ReleaseStore(settings).manifest(ReleaseStore(settings).latest()[0]["release_id"])
    split = [f"{n} ({len(t['files'])} files)" for n, t in manifest["tables"].items() if len(t["files"]) > 1]
    assert split and f"in several files, listed in the manifest: {', '.join(split)}" in output
    assert "station_turnout" in output and "rows" in output


def test_release_matches_the_article(sample_env):
    settings, _ = sample_env
    seats = _table(settings, "seats")
    real = seats.filter(pc.equal(seats["party_id"], "party:real"))
    assert real.num_rows == 5
    assert len(set(real["municipality_id"].to_pylist())) == 4
    summary = {r["metric"]: r for r in _table(settings, "national_summary").to_pylist()}
    assert summary["TURNOUT"]["reported"] == pytest.approx(0.3145)
    assert round(summary["TURNOUT"]["computed"], 4) == 0.3145
    assert summary["REGISTERED_VOTERS"]["computed"] == 6_326_764
    assert summary["CANDIDATES_PARTY"]["computed"] == 8424 == summary["CANDIDATES_PARTY"]["reported"]
    assert summary["CANDIDATES_INDEPENDENT"]["computed"] == 7588
    candidates = _table(settings, "candidates")
    assert candidates.num_rows == 8424 + 7588


def test_manifest_describes_every_file_with_checksums_and_offsets(sample_env):
    import hashlib

    settings, _ = sample_env
    store = ReleaseStore(settings)
    latest, _ = store.latest()
    manifest = store.manifest(latest["release_id"])
    assert manifest["gate"]["passed"] and manifest["snapshot"] and manifest["schemas"]
    assert manifest["dagster_run_id"]
    for name, entry in manifest["tables"].items():
        assert entry["files"] and sum(f["bytes"] for f in entry["files"]) == entry["bytes"], name
        for file in entry["files"]:
            body = store.s3.get_object(Bucket=store.bucket, Key=file["key"])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == file["sha256"], name
            assert len(body) == file["bytes"]
        assert all(c["description"] for c in entry["columns"] if c["name"] in ("station_id", "votes"))
    assert any(len(entry["files"]) > 1 for entry in manifest["tables"].values())  # a large table is several
    for doc in ("datapackage.json", "validation.json"):
        assert store.get_json(store.release_prefix(manifest["release_id"]) + doc)[0]


def test_same_snapshot_gives_byte_identical_parquet(sample_env):
    settings, _ = sample_env
    store = ReleaseStore(settings)
    first = store.manifest(store.latest()[0]["release_id"])
    result = CliRunner().invoke(cli, ["publish"], env=env_of(settings))
    assert "nothing to publish" in result.output  # unchanged snapshot: no new release without --force
    result = CliRunner().invoke(cli, ["publish", "--force"], env=env_of(settings))
    assert result.exit_code == 0, result.output
    second = store.manifest(store.latest()[0]["release_id"])
    assert second["release_id"] != first["release_id"]
    assert second["previous_release"] == first["release_id"]
    assert {n: t["sha256"] for n, t in first["tables"].items()} == {n: t["sha256"] for n, t in second["tables"].items()}
    assert all(c == {"added": 0, "changed": 0, "removed": 0} for c in second["changes"]["tables"].values())


class _CrashingS3:
    """The real S3 client, but the process 'dies' after ``uploads`` data files (a crash mid-publish)."""

    def __init__(self, real, uploads: int):
        self._real, self._left = real, uploads

    def upload_fileobj(self, *args, **kwargs):
        if self._left == 0:
            raise ServiceUnavailable("simulated crash during publish")
        self._left -= 1
        return self._real.upload_fileobj(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_interrupted_publish_changes_nothing_visible_and_next_publish_succeeds(sample_env):
    settings, _ = sample_env
    store = ReleaseStore(settings)
    before_latest, _ = store.latest()
    before_list = [(i.release_id, i.status) for i in store.list()]
    staged = stage(settings, plan(settings, force=True).snapshot)
    report = validate(settings, staged)
    with pytest.raises(ServiceUnavailable, match="simulated crash"):
        release(settings, staged, report, store=ReleaseStore(settings, s3=_CrashingS3(store.s3, uploads=3)))
    assert store.latest()[0] == before_latest
    after = store.list()
    assert [(i.release_id, i.status) for i in after if not i.status.startswith("incomplete")] == before_list
    assert any(i.status.startswith("incomplete") for i in after)
    manifest = release(settings, staged, report)
    assert store.latest()[0]["release_id"] == manifest["release_id"]


def test_two_publishers_cannot_both_switch_latest(sample_env):
    settings, _ = sample_env
    store = ReleaseStore(settings)
    latest, etag = store.latest()
    mine = store.manifest(latest["release_id"])
    theirs = store.manifest(mine["previous_release"])  # any other complete release
    store.switch_latest(theirs, etag)  # the other publisher, having read the same ETag, switches first
    with pytest.raises(PublishConflict, match=f"another publisher switched .*latest is now release {theirs['release_id']}"):
        store.switch_latest(mine, etag)
    assert store.latest()[0]["release_id"] == theirs["release_id"]
    store.switch_latest(mine, store.latest()[1])  # leave latest as it was for the other tests


def test_releases_command_lists_latest_first(sample_env):
    settings, _ = sample_env
    result = CliRunner().invoke(cli, ["releases"], env=env_of(settings))
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if "latest" in line or "published" in line]
    assert "latest" in lines[0] and "gate passed" in lines[0]


def test_bad_snapshot_is_blocked_and_latest_unchanged(isolated, tmp_path):
    build_sample(tmp_path / "data")
    files = sorted((tmp_path / "data").iterdir())
    ingest(files, isolated)
    assert CliRunner().invoke(cli, ["publish"], env=env_of(isolated)).exit_code == 0
    store = ReleaseStore(isolated)
    latest_before = store.latest()[0]
    # A corrected tally that is schema-valid but inconsistent: more ballots cast than registered voters.
    bad = tmp_path / "bad_results.csv"
    header, *rows = (tmp_path / "data" / "results.csv").read_text().splitlines()
    station = rows[0].split(",")[1]
    station_rows = [r for r in rows if r.split(",")[1] == station]
    cols = header.split(",")
    fixed = []
    for r in station_rows:
        values = r.split(",")
        values[cols.index("ballots_cast")] = str(int(values[cols.index("registered_voters")]) + 500)
        fixed.append(",".join(values))
    bad.write_text("\n".join([header, *fixed]) + "\n")
    assert ingest([bad], isolated).rejected_total == 0
    result = CliRunner().invoke(cli, ["publish"], env=env_of(isolated))
    assert result.exit_code == 1
    assert "release blocked by the gate" in result.output
    assert "cast_le_registered" in result.output
    assert store.latest()[0] == latest_before
    report_url = result.output.rsplit("report: ", 1)[1].strip()
    key = report_url.split(f"/{isolated.release_bucket}/", 1)[1]
    report = store.get_json(key)[0]
    failing = [c for c in report["checks"] if not c["success"]]
    assert failing and all(c["sample"] and c["sample"][0].get("event_id") for c in failing)


def test_subscribe_command_prints_the_release_announcement(sample_env):
    settings, _ = sample_env
    result = CliRunner().invoke(cli, ["subscribe", "releases", "--from-beginning", "--max-events", "1"],
                                env=env_of(settings))
    assert result.exit_code == 0, result.output
    event = json.loads(result.output.splitlines()[0])
    assert event["record_type"] == "ReleasePublished" and event["key"] == settings.dataset
    assert event["value"]["gate_passed"] is True and event["value"]["manifest_url"].endswith("manifest.json")


def test_demo_command_ingests_publishes_and_serves_the_catalog(isolated, tmp_path):
    import urllib.request

    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "sample")], env=env_of(isolated))
    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.output and "published release" in result.output
    page = next(line.split()[-1] for line in result.output.splitlines() if line.startswith("catalog page:"))
    with urllib.request.urlopen(page) as response:  # anonymous: no keys
        assert response.status == 200 and b"<svg" in response.read()


def test_publishing_empty_topics_is_a_clear_error_and_publishes_nothing(isolated):
    result = CliRunner().invoke(cli, ["publish"], env=env_of(isolated))
    assert result.exit_code == 1
    assert "nothing to publish (ingest first" in result.output
    assert "Traceback" not in result.output
    assert ReleaseStore(isolated).list() == []
