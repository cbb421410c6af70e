"""Subscriptions against the real Kafka and registry: ``subscribe`` yields a synth election's events as JSON,
stops at the end it captured, resumes through a consumer group; a consumer built only from confluent-kafka's stock
AvroDeserializer decodes every topic unmodified; release announcements round-trip; both examples run."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from pipelines.contract.schemas import parsed_schema
from pipelines.contract.topics import ALL_TOPICS, RELEASES, RESULTS
from pipelines.errors import ConfigError
from pipelines.generator.synth import synthesize
from pipelines.ingest.readers import Parsed, read_path
from pipelines.ingest.run import ingest
from pipelines.kafka import snapshot
from pipelines.kafka.subscribe import resolve_topic, subscribe
from pipelines.release.announce import announce_release, release_published_event
from pipelines.settings import Settings
from tests.support.releases import delete_dataset, upload_fake_releases

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXAMPLE_TIMEOUT_S = 120


def _synth(settings: Settings, tmp_path: Path, *, stations: int = 40, faults: float = 0.0) -> list[Path]:
    synthesize(tmp_path, stations=stations, seed=5, faults=faults)
    files = sorted(p for p in tmp_path.iterdir() if p.name != "faults.jsonl")
    # Reference files first, as ingest orders them, so "file order" is "Kafka order" per key below.
    files = sorted(files, key=lambda p: "reference" not in p.name)
    ingest(files, settings)
    return files


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "BALLOTSTREAM_TOPIC_PREFIX": settings.topic_prefix}


def _run_example(name: str, settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=EXAMPLE_TIMEOUT_S, env=_env(settings), cwd=ROOT)


def test_subscribe_yields_json_ready_events_and_stops_at_the_end(isolated, tmp_path):
    _synth(isolated, tmp_path)
    events = list(subscribe(isolated, "results", from_beginning=True, follow=False))
    snap = snapshot.capture(isolated, [isolated.topic(RESULTS.name)])
    expected = {(r.partition, r.offset): r for r in snapshot.read(isolated, snap)}
    assert len(events) == len(expected) > 0
    for e in events:
        json.dumps(e)  # JSON-ready: no datetime, date or bytes left
        record = expected[(e["partition"], e["offset"])]
        assert e["topic"] == isolated.topic(RESULTS.name) and e["key"] == record.key
        assert e["record_type"] == record.record_type and e["value"]["event_id"] == record.value["event_id"]
    tally = next(e for e in events if e["record_type"] == "StationTally")
    assert tally["value"]["occurred_at"].endswith("+00:00")
    # Short, declared and live names all mean the same topic.
    assert resolve_topic(isolated, "results") == resolve_topic(isolated, RESULTS.name) == \
        resolve_topic(isolated, isolated.topic(RESULTS.name))
    with pytest.raises(ConfigError):
        resolve_topic(isolated, "nonsense")


def test_consumer_group_resumes_where_it_stopped(isolated, tmp_path, unique):
    _synth(isolated, tmp_path)
    group = f"test-group-{unique}"
    everything = [(e["partition"], e["offset"]) for e in subscribe(isolated, "reference", from_beginning=True)]
    first = subscribe(isolated, "reference", from_beginning=True, group=group)
    taken = [(e["partition"], e["offset"]) for e in itertools.islice(first, 7)]
    first.close()  # the caller moved past the first 6; the 7th was being handled when it stopped
    # Not from_beginning: without a commit this would read nothing; with the group's commit it resumes.
    rest = [(e["partition"], e["offset"]) for e in subscribe(isolated, "reference", group=group)]
    assert set(taken[:6]).isdisjoint(rest) and taken[6] in rest
    assert sorted(set(taken) | set(rest)) == sorted(everything)
    assert list(subscribe(isolated, "reference", group=f"{group}-new")) == []  # a new group starts at the end


def test_without_follow_events_after_the_start_are_left_for_later(isolated):
    manifest = {"dataset": isolated.dataset, "release_id": "r1", "tables": {"seats": {"rows": 3}},
                "gate": {"passed": True}}
    announce_release(isolated, release_published_event(manifest, "http://x/m1.json"))
    announce_release(isolated, release_published_event({**manifest, "release_id": "r2"}, "http://x/m2.json"))
    reader = subscribe(isolated, "releases", from_beginning=True, follow=False)
    assert next(reader)["value"]["release_id"] == "r1"  # end offsets are captured by now
    announce_release(isolated, release_published_event({**manifest, "release_id": "r3"}, "http://x/m3.json"))
    assert [e["value"]["release_id"] for e in reader] == ["r2"]
    following = subscribe(isolated, "releases", from_beginning=True, follow=True)
    assert [e["value"]["release_id"] for e in itertools.islice(following, 3)] == ["r1", "r2", "r3"]
    following.close()
    later = [e["value"]["release_id"] for e in subscribe(isolated, "releases", from_beginning=True, start={0: 1})]
    assert later == ["r2", "r3"]
    assert [e["value"]["release_id"] for e in subscribe(isolated, "releases", start={0: -5})] == ["r1", "r2", "r3"]


def test_release_published_event_fits_the_schema_and_is_keyed_by_dataset(isolated):
    import fastavro

    manifest = {"dataset": isolated.dataset, "release_id": "20250131T120000Z-abc",
                "tables": {"seats": {"rows": 9}, "parties": {"rows": 2}}, "gate": {"passed": True}}
    value = release_published_event(manifest, "http://h/b/m.json")
    assert fastavro.validate(value, parsed_schema("ReleasePublished"))
    again = release_published_event(manifest, "http://h/b/m.json", published_at=value["occurred_at"])
    assert again["event_id"] == value["event_id"]  # one release, one id, whenever it is recorded
    where = announce_release(isolated, value)
    assert where["topic"] == isolated.topic(RELEASES.name)
    (event,) = list(subscribe(isolated, "releases", from_beginning=True))
    assert event["key"] == isolated.dataset and event["offset"] == where["offset"]
    assert event["value"]["rows"] == {"seats": 9, "parties": 2} and event["value"]["gate_passed"] is True


def test_stock_confluent_avro_deserializer_decodes_every_topic(isolated, tmp_path):
    _synth(isolated, tmp_path, stations=200, faults=0.02)  # faults fill the dead-letter topic too
    announce_release(isolated, release_published_event(
        {"dataset": isolated.dataset, "release_id": "r1", "tables": {}, "gate": {"passed": True}}, "http://x/m"))
    ours: dict[tuple[str, int, int], dict[str, Any]] = {}
    for spec in ALL_TOPICS:
        for e in subscribe(isolated, spec.name, from_beginning=True):
            ours[(e["topic"], e["partition"], e["offset"])] = e
    assert {t for t, _, _ in ours} == {isolated.topic(t.name) for t in ALL_TOPICS}, "every topic has events"

    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "confluent_consumer.py"), "--registry", isolated.registry_url,
         "--bootstrap", isolated.kafka_bootstrap_servers, "--idle-seconds", "30",
         "--topic", *(isolated.topic(t.name) for t in ALL_TOPICS)],
        capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT_S)
    assert run.returncode == 0, run.stderr
    theirs = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(theirs) == len(ours)
    for t in theirs:
        mine = ours[(t["topic"], t["partition"], t["offset"])]
        assert t["key"] == mine["key"]
        assert set(t["value"]) == set(mine["value"])  # the same fields, decoded from the writer schema
        if "event_id" in mine["value"]:
            assert t["value"]["event_id"] == mine["value"]["event_id"]
        else:
            assert t["value"]["raw"] == mine["value"]["raw"]


def _expected_turnout(files: list[Path]) -> dict[str, dict[str, int]]:
    current: dict[str, dict[str, Any]] = {}
    for f in files:
        for p in read_path(f):
            if isinstance(p, Parsed) and p.record_type == "StationTally":
                current[p.key] = p.value
            elif isinstance(p, Parsed) and p.record_type == "Retraction":
                current.pop(p.value["target_key"], None)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"registered_voters": 0, "ballots_cast": 0})
    for v in current.values():
        totals[v["municipality_id"]]["registered_voters"] += v["registered_voters"]
        totals[v["municipality_id"]]["ballots_cast"] += v["ballots_cast"]
    return dict(totals)


def test_live_turnout_example_tallies_the_results_topic(isolated, tmp_path):
    files = _synth(isolated, tmp_path, stations=120)
    n = sum(1 for _ in subscribe(isolated, "results", from_beginning=True))
    run = _run_example("live_turnout.py", isolated, "--max-events", str(n))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any("turnout" in line and "%" in line for line in lines[:-1])
    final = json.loads(lines[-1].removeprefix("FINAL "))
    got = {m: {"registered_voters": t["registered_voters"], "ballots_cast": t["ballots_cast"]}
           for m, t in final.items()}
    assert got == _expected_turnout(files)


def test_release_downloader_example_verifies_announced_releases(isolated, tmp_path):
    published = upload_fake_releases(isolated, isolated.dataset)
    try:
        manifest = published.manifests[-1]
        url = isolated.public_url(f"{isolated.dataset}/releases/{manifest['release_id']}/manifest.json")
        announce_release(isolated, release_published_event(manifest, url))
        run = _run_example("release_downloader.py", isolated, "--max-events", "1", "--out", str(tmp_path / "dl"))
        assert run.returncode == 0, run.stderr
        verified = [line for line in run.stdout.splitlines() if line.startswith("verified ")]
        assert len(verified) == len(manifest["tables"])
        for name, entry in manifest["tables"].items():
            saved = tmp_path / "dl" / isolated.dataset / manifest["release_id"] / entry["path"]
            assert saved.read_bytes() == published.files[
                f"{isolated.dataset}/releases/{manifest['release_id']}/{entry['path']}"]

        from pipelines.release.s3 import s3_client

        # A release with a NIST export in two parts (gzip members): they are fetched, joined, checked and saved as
        # the document the manifest lists.
        s3 = s3_client(isolated)
        members = [gzip.compress(b'{"@type":', mtime=0), gzip.compress(b'"ElectionResults.ElectionReport"}', mtime=0)]
        body = b"".join(members)
        folder = f"{isolated.dataset}/releases/{manifest['release_id']}-cdf"
        path = "cdf/local.xs.2030-05-05.json.gz"
        parts = []
        for member in members:
            key = f"{isolated.dataset}/parts/{hashlib.sha256(member).hexdigest()}.gz"
            s3.put_object(Bucket=isolated.release_bucket, Key=key, Body=member)
            parts.append({"key": key, "url": isolated.public_url(key), "bytes": len(member),
                          "sha256": hashlib.sha256(member).hexdigest()})
        with_document = {**json.loads(json.dumps(manifest)), "release_id": f"{manifest['release_id']}-cdf",
                         "documents": {path: {"path": path, "parts": parts, "bytes": len(body),
                                              "sha256": hashlib.sha256(body).hexdigest()}}}
        s3.put_object(Bucket=isolated.release_bucket, Key=f"{folder}/manifest.json",
                      Body=json.dumps(with_document).encode())
        announce_release(isolated, release_published_event(with_document,
                                                           isolated.public_url(f"{folder}/manifest.json")))
        run = _run_example("release_downloader.py", isolated, "--max-events", "2", "--out", str(tmp_path / "dl"))
        assert run.returncode == 0, run.stderr
        assert f"verified {with_document['release_id']} {path} " in run.stdout
        saved = tmp_path / "dl" / isolated.dataset / with_document["release_id"] / path
        assert saved.read_bytes() == body and json.loads(gzip.decompress(body))["@type"]
        # Its tables are the first release's files, kept from the first run: linked into its folder, not fetched.
        for name, entry in manifest["tables"].items():
            assert f"unchanged {with_document['release_id']} {name} {entry['sha256']}" in run.stdout
            again = tmp_path / "dl" / isolated.dataset / with_document["release_id"] / entry["path"]
            assert again.read_bytes() == published.files[
                f"{isolated.dataset}/releases/{manifest['release_id']}/{entry['path']}"]
        assert f"release {manifest['release_id']}: 0 files downloaded (0 bytes)" in run.stdout
        assert f"release {with_document['release_id']}: 2 files downloaded ({len(body):,} bytes), " \
               f"{len(manifest['tables'])} unchanged" in run.stdout
        # A kept file that was damaged on disk is fetched again, not trusted.
        name, entry = next(iter(sorted(manifest["tables"].items())))
        (tmp_path / "dl" / "by-sha256" / entry["sha256"]).write_bytes(b"damaged")
        run = _run_example("release_downloader.py", isolated, "--max-events", "1", "--out", str(tmp_path / "dl"))
        assert run.returncode == 0, run.stderr
        assert f"verified {manifest['release_id']} {name} {entry['sha256']}" in run.stdout
        assert f"release {manifest['release_id']}: 1 files downloaded ({entry['bytes']:,} bytes)" in run.stdout
        fixed = published.files[f"{isolated.dataset}/releases/{manifest['release_id']}/{entry['path']}"]
        assert (tmp_path / "dl" / "by-sha256" / entry["sha256"]).read_bytes() == fixed
        assert (tmp_path / "dl" / isolated.dataset / manifest["release_id"] / entry["path"]).read_bytes() == fixed

        # A manifest whose checksum does not match its file makes the downloader fail loudly.
        tampered = json.loads(json.dumps(with_document))
        tampered["tables"]["seats"]["sha256"] = "0" * 64
        tampered["documents"][path]["sha256"] = "0" * 64
        key = f"{isolated.dataset}/reports/tampered/manifest.json"  # somewhere the public may read
        s3.put_object(Bucket=isolated.release_bucket, Key=key, Body=json.dumps(tampered).encode())
        announce_release(isolated, release_published_event(tampered, isolated.public_url(key)))
        run = _run_example("release_downloader.py", isolated, "--max-events", "3", "--no-save")
        assert run.returncode == 1 and f"MISMATCH {tampered['release_id']} seats" in run.stdout
        assert f"MISMATCH {tampered['release_id']} {path}" in run.stdout
    finally:
        delete_dataset(isolated, isolated.dataset)
