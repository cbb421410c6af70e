"""Ingestion against the real Kafka and registry: every record type round-trips, and a fault-injected file
sends exactly its bad lines to the dead-letter topic and loses no good line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from pipelines.cli import cli
from pipelines.contract.topics import DEAD_LETTER, EVENT_TOPICS
from pipelines.generator.sample import build_sample
from pipelines.generator.synth import synthesize
from pipelines.ingest.readers import Parsed, read_path
from pipelines.ingest.run import ingest
from pipelines.kafka import snapshot


def _read_all(settings, names):
    snap = snapshot.capture(settings, [settings.topic(n) for n in names])
    return list(snapshot.read(settings, snap))


def _env(settings) -> dict[str, str]:
    return {"BALLOTSTREAM_TOPIC_PREFIX": settings.topic_prefix}


def test_sample_election_round_trips_through_registry_and_kafka(isolated, tmp_path):
    build_sample(tmp_path)
    files = sorted(tmp_path.iterdir())
    expected = {(p.value["event_id"], p.record_type) for f in files for p in read_path(f) if isinstance(p, Parsed)}
    report = ingest(files, isolated)
    assert report.rejected_total == 0 and not report.failed
    records = _read_all(isolated, [t.name for t in EVENT_TOPICS])
    assert {(r.value["event_id"], r.record_type) for r in records} == expected
    # Every record type of the event topics is present and decoded through the registry's schema.
    assert {r.record_type for r in records} >= {
        "ElectionDeclared", "DivisionDeclared", "PartyDeclared", "CandidateRegistered", "StationTally",
        "DivisionSummary", "SeatAllocation", "IncidentReported", "IncidentStatusChanged", "ArticlePublished",
        "ContestDeclared"}
    tally = next(r for r in records if r.record_type == "StationTally")
    # A tally of a municipal council's contest is keyed per contest x station (docs/contests.md, rule 2).
    assert tally.key == f"{tally.value['election_id']}|{tally.value['contest_id']}|{tally.value['station_id']}"
    contest = next(r for r in records if r.record_type == "ContestDeclared" and r.key == tally.value["contest_id"])
    assert contest.topic == isolated.topic("ballotstream.reference")
    assert tally.topic == isolated.topic("ballotstream.results")


def test_reingesting_the_same_file_creates_no_new_event_ids(isolated, tmp_path):
    synthesize(tmp_path, stations=30, seed=3)
    files = sorted(tmp_path.glob("*.*"))
    files = [f for f in files if f.name != "faults.jsonl"]
    ingest(files, isolated)
    ingest(files, isolated)
    records = _read_all(isolated, [t.name for t in EVENT_TOPICS])
    ids = Counter(r.value["event_id"] for r in records)
    assert set(ids.values()) == {2}  # every event twice in the log, under one id: folded once downstream


def test_cli_fault_injected_file_dead_letters_exactly_the_bad_lines(isolated, tmp_path):
    synthesize(tmp_path, stations=200, seed=11, faults=0.02)
    faults = [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]
    assert any(f["expect"] == "dead_letter" for f in faults) and any(f["expect"] == "accepted" for f in faults)
    inputs = sorted(str(p) for p in tmp_path.iterdir() if p.name != "faults.jsonl")

    result = CliRunner().invoke(cli, ["ingest", *inputs], env=_env(isolated))

    assert result.exit_code == 1, result.output
    dead = _read_all(isolated, [DEAD_LETTER.name])
    got = sorted((Path(d.value["file"]).name, d.value["line"], d.value["reason_code"]) for d in dead)
    want = sorted((Path(f["file"]).name, f["line"], f["reason_code"]) for f in faults if f["expect"] == "dead_letter")
    assert got == want
    assert all(d.value["raw"] and d.value["reason"] for d in dead)
    assert f"rejected {len(want)}" in result.output
    # No good line is lost: everything the readers accept is on the event topics.
    good = {p.value["event_id"] for f in inputs for p in read_path(Path(f)) if isinstance(p, Parsed)}
    on_kafka = {r.value["event_id"] for r in _read_all(isolated, [t.name for t in EVENT_TOPICS])}
    assert good == on_kafka


def test_cli_ingest_clean_file_exits_zero_and_reports_counts(isolated, tmp_path):
    synthesize(tmp_path, stations=20, seed=5)
    inputs = [str(p) for p in sorted(tmp_path.iterdir()) if p.name != "faults.jsonl"]
    result = CliRunner().invoke(cli, ["ingest", *inputs], env=_env(isolated))
    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.output and "produced to ballotstream.results" in result.output


def test_cli_ingest_unknown_reference_is_dead_lettered_with_reason(isolated, tmp_path):
    bad = tmp_path / "observations.jsonl"
    bad.write_text(json.dumps({
        "type": "IncidentReported", "occurred_at": "2025-01-29T10:00:00+04:00",
        "source": {"organisation": "Test", "kind": "OBSERVER_MISSION", "url": None},
        "incident_id": "incident:test-1", "election_id": "local.zz.2025-01-29", "category": "THREAT",
        "division_id": "ocd-division/country:zz", "station_id": None, "reporter": "Test",
        "reporter_kind": "OBSERVER_MISSION", "description": "x", "evidence_urls": [], "count": None}) + "\n")
    result = CliRunner().invoke(cli, ["ingest", "--kind", "observations", str(bad)], env=_env(isolated))
    assert result.exit_code == 1
    assert "rejected unknown_reference: 1" in result.output
    (dead,) = _read_all(isolated, [DEAD_LETTER.name])
    assert dead.value["line"] == 1 and dead.value["field"] == "election_id"
    assert "unknown reference 'local.zz.2025-01-29'" in dead.value["reason"]


def test_worker_processes_dead_letter_the_same_lines_and_lose_nothing(isolated, tmp_path):
    synthesize(tmp_path, stations=200, seed=11, faults=0.02)
    faults = [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]
    inputs = sorted(p for p in tmp_path.iterdir() if p.name != "faults.jsonl")

    report = ingest(inputs, isolated, workers=2)

    assert not report.failed and report.stages["read_validate"] > 0
    dead = _read_all(isolated, [DEAD_LETTER.name])
    got = sorted((Path(d.value["file"]).name, d.value["line"], d.value["reason_code"]) for d in dead)
    want = sorted((Path(f["file"]).name, f["line"], f["reason_code"]) for f in faults if f["expect"] == "dead_letter")
    assert got == want
    good = [(p.key, p.value["event_id"]) for f in inputs for p in read_path(f) if isinstance(p, Parsed)]
    records = _read_all(isolated, [t.name for t in EVENT_TOPICS])
    assert {r.value["event_id"] for r in records} == {e for _, e in good}
    # Per key, every version is in one partition, in file order.
    want_by_key: dict[str, list[str]] = {}
    for key, event_id in good:
        want_by_key.setdefault(key, []).append(event_id)
    got_by_key: dict[str, list[str]] = {}
    partitions: dict[str, set[int]] = {}
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        got_by_key.setdefault(r.key, []).append(r.value["event_id"])
        partitions.setdefault(r.key, set()).add(r.partition)
    assert got_by_key == want_by_key and all(len(p) == 1 for p in partitions.values())


def test_cli_hostile_input_is_dead_lettered_and_the_run_ends_with_its_summary(isolated, tmp_path):
    """Invalid UTF-8, a 3 MB line (over Kafka's 1 MiB message limit), deep nesting and a duplicate key each
    become one dead letter naming file and line; the valid lines around them and the files after still go."""
    synthesize(tmp_path, stations=20, seed=5)
    results = tmp_path / "results.jsonl"
    good = results.read_bytes().splitlines()
    n = len(good)
    hostile = [(b'{"type": "\xff"}', "invalid_encoding"), (b'{"pad": "' + b"x" * 3_000_000 + b'"}', "record_too_large"),
               (b"[" * 10_000, "too_deeply_nested"), (good[0][:-1] + b', "type": "StationTally"}', "duplicate_key")]
    results.write_bytes(b"\xef\xbb\xbf" + b"\n".join(good + [h for h, _ in hostile]) + b"\n")
    inputs = sorted(str(p) for p in tmp_path.iterdir() if p.name != "faults.jsonl")

    result = CliRunner().invoke(cli, ["ingest", *inputs], env=_env(isolated))

    assert result.exit_code == 1, result.output
    assert f"rejected {len(hostile)}" in result.output and "Traceback" not in result.output
    dead = _read_all(isolated, [DEAD_LETTER.name])
    got = sorted((Path(d.value["file"]).name, d.value["line"], d.value["reason_code"]) for d in dead)
    assert got == sorted(("results.jsonl", n + 1 + i, code) for i, (_, code) in enumerate(hostile))
    good_ids = {p.value["event_id"] for f in inputs for p in read_path(Path(f)) if isinstance(p, Parsed)}
    assert {r.value["event_id"] for r in _read_all(isolated, [t.name for t in EVENT_TOPICS])} == good_ids
