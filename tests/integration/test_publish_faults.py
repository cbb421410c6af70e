"""Publishers killed at random points (mid-upload, just after the latest.json switch, anywhere) and publishers
racing each other, against the real services: nothing half-written is ever listed as published, every manifest's
checksums match its files, latest.json stays valid, and after a repair every published release is announced
exactly once. CHAOS_ROUNDS (read only here; `make chaos`) runs longer versions and prints the figures."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from pipelines.release.pipeline import staging_root
from pipelines.settings import Settings
from tests.support.faults import audit, kill_publish, race, random_point, run_cli

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "0"))


@pytest.fixture
def events(isolated: Settings, tmp_path: Path) -> Settings:
    synthesize(tmp_path / "in", stations=30, seed=5)
    report = ingest(sorted(p for p in (tmp_path / "in").iterdir() if p.suffix in (".jsonl", ".csv")), isolated)
    assert not report.rejected_total and not report.failed
    return isolated


def _figures(title: str, figures: dict[str, object]) -> None:
    print(f"\nchaos: {title}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


def test_killed_publishers_leave_nothing_corrupt_and_every_release_is_announced_once(events, tmp_path):
    settings = events
    started = time.monotonic()
    first = run_cli(settings, "publish", "--force")
    assert first.returncode == 0, first.stdout + first.stderr
    typical = time.monotonic() - started
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "0")) or None)
    kills = max(ROUNDS, 3)
    # Mid-upload and right after the switch always; the rest anywhere in a typical run. The switch kill comes last:
    # a later run that got as far as announcing would (rightly) announce its release, leaving nothing to repair.
    points = [("upload", 0.0)] + [random_point(rng, typical) for _ in range(kills - 2)] + [("switch", 0.0)]
    outcomes, latest_valid = [], 0
    for i, (point, delay) in enumerate(points):
        outcomes.append(kill_publish(settings, point, tmp_path / f"kill-{i}.log", delay_s=delay))
        seen = audit(settings, announcements=False)
        assert seen.checksum_mismatches == [], (point, seen)
        assert seen.partial_listed_published == 0, (point, seen)
        latest_valid += seen.latest_valid
    assert latest_valid == len(points)
    assert "killed at upload" in outcomes and "killed at switch" in outcomes, outcomes
    before = audit(settings)
    # The release killed after its switch was never announced; the repair announces it (and any other) once.
    assert before.missing_announcements, before
    repaired = run_cli(settings, "announce", "--repair", "--stale-after", "0s")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    after = audit(settings)
    assert (after.missing_announcements, after.duplicate_announcements, after.unpublished_announced) == ([], [], [])
    again = run_cli(settings, "announce", "--repair", "--stale-after", "0s")
    assert again.returncode == 0 and audit(settings).announcements == after.announcements, again.stdout
    # gc: partial folders and killed runs' staging go; every manifest and its files stay.
    dry = run_cli(settings, "gc", "--dry-run", "--grace", "0s")
    assert dry.returncode == 0 and audit(settings, announcements=False).partial == after.partial, dry.stdout
    swept = run_cli(settings, "gc", "--grace", "0s")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    cleaned = audit(settings, announcements=False)
    assert (cleaned.partial, cleaned.checksum_mismatches, cleaned.manifests_checked, cleaned.latest_valid) == (
        0, [], after.manifests_checked, True)
    root = staging_root(settings)
    assert not root.is_dir() or not any(root.iterdir())
    _figures("publisher kills", {
        "N": len(points), "outcomes": dict(sorted({o: outcomes.count(o) for o in outcomes}.items())),
        "partial releases left": after.partial, "partial releases listed as published": after.partial_listed_published,
        "latest.json valid": f"{latest_valid}/{len(points)}", "manifests checked": after.manifests_checked,
        "checksum mismatches": len(after.checksum_mismatches),
        "announcements missing before repair": len(before.missing_announcements),
        "announcements missing after repair": len(after.missing_announcements),
        "duplicate announcements": len(after.duplicate_announcements),
        "partial folders after gc": cleaned.partial,
    })


@pytest.mark.parametrize("publishers", [2, 3])
def test_concurrent_publishers_never_corrupt_a_release(events, tmp_path, publishers):
    settings = events
    rounds = max(ROUNDS // 2, 1)
    results = []
    for r in range(rounds):
        (tmp_path / str(r)).mkdir()
        results.extend(race(settings, publishers, tmp_path / str(r)))
    for code, out in results:
        lines = [line for line in out.strip().splitlines() if line.strip()]
        if code != 0:
            # The loser: one sentence naming the winner, nothing else.
            assert lines[-1].startswith("Error: another publisher switched") and "latest is now release" in lines[-1], out
            assert "was not published" in lines[-1] and "Traceback" not in out, out
    seen = audit(settings)
    assert sum(code == 0 for code, _ in results) >= rounds
    assert seen.checksum_mismatches == [] and seen.latest_valid and seen.partial_listed_published == 0, seen
    assert seen.published == sum(code == 0 for code, _ in results), seen
    # Winners announce their own releases, exactly once, without a repair.
    assert (seen.missing_announcements, seen.duplicate_announcements, seen.unpublished_announced) == ([], [], [])
    root = staging_root(settings)
    assert not root.is_dir() or not any(root.iterdir())
    _figures(f"{publishers} concurrent publishers", {
        "races": rounds, "won": sum(code == 0 for code, _ in results),
        "lost (exit 1, one sentence)": sum(code != 0 for code, _ in results),
        "corrupted releases": len({m.split('/')[0] for m in seen.checksum_mismatches}),
        "latest.json valid": seen.latest_valid, "announcements missing": len(seen.missing_announcements),
        "duplicate announcements": len(seen.duplicate_announcements),
    })
