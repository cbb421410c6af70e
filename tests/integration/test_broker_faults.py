"""The Kafka broker SIGKILLed and restarted in the middle of a `ballotstream ingest` and of a `ballotstream publish`,
against the real services. Ingest: a run either outlives the outage (its idempotent acks=all producer retries)
and then every event is on its topic, or it fails saying how many records Kafka did not acknowledge and a re-run
completes it; either way no event is lost, the fold's events table has one row per event_id (re-deliveries are
counted in ``deliveries``) and the dead-letter topic holds exactly the rejected lines. Publish: the run succeeds
or fails with one error line, latest.json stays valid and the next publish succeeds. The broker is always
restarted and healthy before a test ends. CHAOS_ROUNDS (`make chaos`) runs more kills and prints the figures."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from pipelines.contract.topics import REFERENCE, RESULTS
from pipelines.fold import tables as t
from pipelines.fold.core import fold
from pipelines.generator.synth import synthesize
from pipelines.ingest.readers import Parsed, read_path
from pipelines.ingest.run import ingest
from pipelines.kafka.admin import delete_topics
from pipelines.settings import Settings
from tests.support.broker import (
    end_offsets,
    kill_during,
    one_error_line,
    read_topics,
    restart_broker,
    start_ingest,
    wait,
)
from tests.support.faults import audit, run_cli, start_publish
from tests.support.services import make_isolated

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "0"))
STATIONS = 3000


def _figures(title: str, figures: dict[str, object]) -> None:
    print(f"\nchaos: {title}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Counter[str], Counter[tuple[str, int, str]]]:
    """A few-thousand-station synthetic election with faults: its files, each valid event_id with how often the
    files hold it (the generator's duplicate lines: twice), the rejected lines."""
    out = tmp_path_factory.mktemp("election")
    synthesize(out, stations=STATIONS, seed=17, faults=0.01)
    inputs = sorted(p for p in out.iterdir() if p.name != "faults.jsonl")
    faults = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    rejected = Counter((f["file"], f["line"], f["reason_code"]) for f in faults if f["expect"] == "dead_letter")
    lines = {(file, line) for file, line, _ in rejected}
    # What the readers parse, less what ingest's reference checks reject (an unknown_reference line parses).
    ids = Counter(p.value["event_id"] for f in inputs for p in read_path(f)
                  if isinstance(p, Parsed) and (f.name, p.line) not in lines)
    assert rejected and ids
    return inputs, ids, rejected


def _kill_point(rng: random.Random) -> tuple[str, int]:
    """When to kill: at once (while the run connects and reads the reference topic), once its first reference
    events are acknowledged, or once results are (the first ones, or 2,000 of them)."""
    topic = rng.choice([REFERENCE.name, REFERENCE.name, RESULTS.name, RESULTS.name])
    at_least = rng.choice([1, 2000]) if topic == RESULTS.name else rng.choice([0, 1])
    return topic, at_least


def _ingest_round(services: Settings, tmp: Path, election, rng: random.Random) -> dict[str, object]:
    """One ingest with the broker killed in its middle; a re-run when it failed. What the topics then hold."""
    inputs, ids, rejected = election
    settings = make_isolated(services, tmp / "staging")
    try:
        probe = KafkaConsumer(**settings.kafka_config(), request_timeout_ms=3000)
        try:
            topic, at_least = _kill_point(rng)
            started = (lambda: True) if not at_least else lambda: end_offsets(probe, settings, [topic]) >= at_least
            proc = start_ingest(settings, inputs, tmp / "ingest.log")
            outcome = kill_during(settings, proc, started, rng)
        finally:
            probe.close()
        code, out = wait(proc, tmp / "ingest.log")
        assert "Traceback" not in out, out
        failed = code != 0 and "Error:" in out
        if failed:
            # It must say so in one line, and name the unacknowledged records or the unreachable broker.
            assert one_error_line(out) and ("not acknowledged" in out or "Kafka" in out), out
        else:
            # A run that did not fail claims every record: all of them must be on their topics now.
            assert code == 1 and f"rejected {sum(rejected.values())}" in out, out
            assert {r.value["event_id"] for r in read_topics(settings).events} == set(ids), (outcome, out)
        reruns = 0
        if failed:
            code, out = wait(start_ingest(settings, inputs, tmp / "rerun.log"), tmp / "rerun.log")
            reruns = 1
            assert code == 1 and "Error:" not in out and "Traceback" not in out, out
        seen = read_topics(settings)
        events = fold(seen.events, settings.dataset)[t.EVENTS]
        on_topics = Counter(r.value["event_id"] for r in seen.events)
        # Lines, not reason codes: the generator's expected code of a line is not what this test is about.
        dead = Counter((Path(d.value["file"]).name, d.value["line"]) for d in seen.dead)
        return {
            "kill": f"{outcome} at {at_least} records on {topic}", "first run": "failed" if failed else "completed",
            "reruns": reruns, "lost": len(set(ids) - set(on_topics)), "unexpected": len(set(on_topics) - set(ids)),
            "rows": events.num_rows, "distinct": len(set(events["event_id"].to_pylist())), "ids": len(ids),
            "redelivered": sum(on_topics.values()) - sum(ids.values()),
            "deliveries": sum(events["deliveries"].to_pylist()), "records": sum(on_topics.values()),
            "dead exact": set(dead) == {(f, line) for f, line, _ in rejected}, "dead redelivered": sum(dead.values()) - len(dead),
        }
    finally:
        restart_broker(services)  # also when the round failed with the broker down
        delete_topics(settings)


def test_broker_killed_during_ingest_loses_nothing_and_duplicates_no_row(services, tmp_path, election):
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "0")) or None)
    kills = max(ROUNDS // 10, 1)  # `make chaos` (50): 5
    rounds = []
    for i in range(kills):
        (tmp_path / str(i)).mkdir()
        rounds.append(_ingest_round(services, tmp_path / str(i), election, rng))
    for r in rounds:
        assert (r["lost"], r["unexpected"]) == (0, 0), json.dumps(r)
        assert r["rows"] == r["distinct"] == r["ids"] and r["deliveries"] == r["records"], json.dumps(r)
        assert r["dead exact"], json.dumps(r)
    _figures("broker kills during ingest", {
        "N": kills, "killed mid-run": sum(str(r["kill"]).startswith("killed") for r in rounds),
        "first run completed": sum(r["first run"] == "completed" for r in rounds),
        "first run failed (one error line), re-run": sum(r["reruns"] for r in rounds),
        "events lost": sum(int(r["lost"]) for r in rounds),
        "duplicate rows": sum(int(r["rows"]) - int(r["distinct"]) for r in rounds),
        "re-delivered records (counted in deliveries)": sum(int(r["redelivered"]) for r in rounds),
        "dead-letter exact": f"{sum(bool(r['dead exact']) for r in rounds)}/{kills}",
        "events per run": rounds[0]["ids"],
    })


@pytest.fixture
def events(isolated: Settings, tmp_path: Path) -> Settings:
    synthesize(tmp_path / "in", stations=300, seed=5)
    report = ingest(sorted(p for p in (tmp_path / "in").iterdir() if p.suffix in (".jsonl", ".csv")), isolated)
    assert not report.rejected_total and not report.failed
    return isolated


def test_broker_killed_during_publish_fails_cleanly_and_the_next_publish_succeeds(events, tmp_path):
    settings = events
    first = run_cli(settings, "publish", "--force")
    assert first.returncode == 0, first.stdout + first.stderr
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "0")) or None)
    kills = max(ROUNDS // 10, 1)
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latest_valid = recovered = 0
    for i in range(kills):
        log = tmp_path / f"publish-{i}.log"
        proc = start_publish(settings, log)
        # Kafka is read first (the snapshot) and written last (the announcement): kill anywhere in between.
        delay = rng.uniform(0.5, 6.0)
        began = time.monotonic()
        outcome = kill_during(settings, proc, lambda began=began, delay=delay: time.monotonic() - began >= delay,
                              rng, down_s=(1.0, 8.0))
        code, out = wait(proc, log)
        assert code == 0 or one_error_line(out), out
        if code != 0:
            errors[out.strip().splitlines()[-1][:100]] += 1
        outcomes[f"{outcome.split(' ')[0]}, {'published' if code == 0 else 'failed with one error line'}"] += 1
        seen = audit(settings, announcements=False)
        assert seen.checksum_mismatches == [] and seen.partial_listed_published == 0, seen
        latest_valid += seen.latest_valid
        after = run_cli(settings, "publish", "--force")
        assert after.returncode == 0, after.stdout + after.stderr
        recovered += 1
    assert latest_valid == kills
    repaired = run_cli(settings, "announce", "--repair", "--stale-after", "0s")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    final = audit(settings)
    assert (final.missing_announcements, final.duplicate_announcements, final.unpublished_announced) == ([], [], [])
    _figures("broker kills during publish", {
        "N": kills, "outcomes": dict(sorted(outcomes.items())), "latest.json valid": f"{latest_valid}/{kills}",
        "next publish succeeded": f"{recovered}/{kills}", "checksum mismatches": len(final.checksum_mismatches),
        "announcements missing after repair": len(final.missing_announcements),
    })
    for line, n in sorted(errors.items()):
        print(f"chaos: broker kills during publish: {n} x {line}")
