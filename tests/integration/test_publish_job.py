"""The publish job, run as the CLI runs it, against the real services: a failing WARN rule is recorded by Dagster
and publishes anyway; a failing ERROR rule stops the release and leaves latest unchanged; either way the run's
step outputs are removed when it ends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dagster_project.run import run_publish
from pipelines.errors import GateFailed
from pipelines.generator.sample import build_sample
from pipelines.ingest.run import ingest
from pipelines.release.store import ReleaseStore
from tests.support.sample_edits import cast_above_registered
from tests.support.services import env_of

RETRACTED = "ocd-division/country:az/region:nowhere"
DIVISION_EVENT = "6f1f3c2e-8d0a-4b7e-9a51-3c0d2b1e4f70"


def _incident_in_a_retracted_division(directory, sample_dir):
    """A division is declared, an observer reports an incident there, then the division is retracted: the
    incident's division reference no longer resolves, which the gate reports as a WARN (third-party data)."""
    source = {"organisation": "test", "kind": "OTHER", "url": None}
    division = {"type": "DivisionDeclared", "event_id": DIVISION_EVENT, "occurred_at": "2025-01-29T08:00:00+04:00",
                "source": source, "division_id": RETRACTED, "name": "Nowhere", "kind": "REGION",
                "parent_id": "ocd-division/country:az", "election_id": None, "municipality_id": None, "seats": None}
    incident = json.loads((sample_dir / "observations.jsonl").read_text().splitlines()[0])
    incident.update(incident_id="incident:test-retracted-division", division_id=RETRACTED)
    retraction = {"type": "Retraction", "occurred_at": "2025-01-30T08:00:00+04:00", "source": source,
                  "target_event_id": DIVISION_EVENT, "target_key": RETRACTED, "reason": "declared by mistake"}
    paths = []
    for name, record in (("a_division.jsonl", division), ("b_incident.jsonl", incident),
                         ("c_retraction.jsonl", retraction)):
        paths.append(directory / name)
        paths[-1].write_text(json.dumps(record) + "\n")
    return paths



def test_warn_rule_failure_publishes_and_error_rule_failure_blocks(isolated, tmp_path, monkeypatch):
    home = tmp_path / "dagster"  # an instance of its own: its runs' output folders are this test's alone
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    runs = home / "storage" / "runs"
    sample = tmp_path / "sample"
    build_sample(sample)
    assert ingest(sorted(sample.iterdir()), isolated).rejected_total == 0
    for path in _incident_in_a_retracted_division(tmp_path, sample):
        assert ingest([path], isolated).rejected_total == 0, path

    warned = run_publish(isolated)
    assert warned.manifest is not None
    assert warned.checks[("observations", "division_id_resolves")] == (False, "WARN")
    assert warned.checks[("station_turnout", "cast_le_registered")] == (True, "ERROR")
    assert all(passed for (passed, severity) in warned.checks.values() if severity == "ERROR")
    store = ReleaseStore(isolated)
    assert store.latest()[0]["release_id"] == warned.manifest["release_id"]
    assert runs.is_dir() and not any(runs.iterdir())  # the steps' outputs were kept there, and removed

    assert ingest([cast_above_registered(tmp_path / "bad.csv", sample)], isolated).rejected_total == 0
    with pytest.raises(GateFailed, match="station_turnout.cast_le_registered") as blocked:
        run_publish(isolated)
    assert store.latest()[0]["release_id"] == warned.manifest["release_id"]
    assert blocked.value.report.report_url and not blocked.value.report.passed
    assert [i.release_id for i in store.list()] == [warned.manifest["release_id"]]
    assert not any(runs.iterdir())


def test_a_blocked_publish_prints_the_gate_table_and_one_error_line(isolated, tmp_path):
    """What an operator sees in a terminal: the failing checks, samples, one Error line; no Dagster lines."""
    import os

    sample = tmp_path / "sample"
    build_sample(sample)
    assert ingest([*sorted(sample.iterdir()), cast_above_registered(tmp_path / "bad.csv", sample)],
                  isolated).rejected_total == 0
    env = {**os.environ, **env_of(isolated)}
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "publish"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 1
    lines = (run.stdout + run.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and "release blocked by the gate" in errors[0] and "report: http" in errors[0]
    assert "station_turnout.cast_le_registered" in errors[0]
    others = [line for line in lines if not line.startswith("Error:")]
    assert others and all(line.startswith(("FAIL ", "WARN ", "gate ", "  sample ")) for line in others), lines
