"""Election night against the real services: `publish --watch` publishes when new events arrive and only then,
reports a blocked publish and goes on, stops on Ctrl-C with exit 0; `status` measures the lag from the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from dagster_project.run import run_publish
from pipelines.generator.synth import synthesize
from pipelines.ingest.run import ingest
from pipelines.release.status import status
from pipelines.release.store import ReleaseStore
from pipelines.release.watch import watch
from pipelines.settings import Settings
from tests.support.services import env_of

ROOT = Path(__file__).resolve().parents[2]


def _election(directory: Path, *, stations: int = 10, seed: int = 2) -> list[Path]:
    synthesize(directory, stations=stations, seed=seed)
    return [p for p in sorted(directory.iterdir()) if p.name != "faults.jsonl"]


def _cli(settings: Settings, *args: str, **popen: object) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}, **env_of(settings),
           "PYTHONPATH": str(ROOT)}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=env, text=True,
                            **streams)  # type: ignore[call-overload]


def _cast_above_registered(source: Path, out: Path) -> Path:
    """One station's rows again, with more ballots cast than registered voters: a blocking gate failure."""
    header, first, *_ = source.read_text().splitlines()
    cols, values = header.split(","), first.split(",")
    values[cols.index("ballots_cast")] = str(int(values[cols.index("registered_voters")]) + 500)
    out.write_text("\n".join([header, ",".join(values)]) + "\n")
    return out


def test_watch_publishes_when_offsets_move_and_status_measures_the_lag(isolated, tmp_path):
    before = status(isolated)
    assert (before.events_behind, before.seconds_behind, before.last_release) == (0, 0.0, None)
    assert before.withheld_units == 0 and before.withholding == "withholding not configured"

    started = datetime.now(UTC)
    report = ingest(_election(tmp_path / "a"), isolated)
    assert report.rejected_total == 0
    behind = status(isolated)
    assert behind.events_behind == sum(behind.end_offsets.values()) > 0 and behind.last_release is None
    assert behind.oldest_unreleased_at is not None and behind.oldest_unreleased_at >= started.replace(microsecond=0)
    assert behind.seconds_behind is not None and 0 <= behind.seconds_behind < 300

    more = _election(tmp_path / "b", stations=3, seed=9)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # between checks: new results arrive once, then nothing
        sleeps.append(seconds)
        if len(sleeps) == 1:
            assert ingest([p for p in more if p.name == "news.jsonl"], isolated).rejected_total == 0

    lines: list[str] = []
    summary = watch(isolated, lambda: run_publish(isolated).manifest, interval_s=7, echo=lines.append,
                    max_checks=3, sleep=sleep)
    assert (summary.checks, summary.published, summary.failed) == (3, 2, 0)
    assert sleeps == [7, 7]
    releases = [i.release_id for i in ReleaseStore(isolated).list()]
    assert len(releases) == 2 and len(lines) == 2  # the third check found nothing new: no line, no release
    assert all(f"published release {r}" in line for r, line in zip(reversed(releases), lines))

    after = status(isolated)
    assert (after.events_behind, after.seconds_behind, after.behind) == (0, 0.0, {})
    latest = ReleaseStore(isolated).manifest(releases[0])
    assert after.last_release is not None and after.last_release.release_id == releases[0]
    assert after.last_release.rows == sum(t["rows"] for t in latest["tables"].values())
    assert after.last_release.gate_passed and after.last_release.checks_passed == after.last_release.checks
    assert after.last_failure is None


def test_watch_reports_a_blocked_publish_goes_on_and_status_shows_it(isolated, tmp_path):
    files = _election(tmp_path / "a")
    assert ingest(files, isolated).rejected_total == 0
    good = run_publish(isolated).manifest
    assert good is not None
    bad = _cast_above_registered(tmp_path / "a" / "results.csv", tmp_path / "bad.csv")
    assert ingest([bad], isolated).rejected_total == 0

    lines: list[str] = []
    summary = watch(isolated, lambda: run_publish(isolated).manifest, interval_s=0, echo=lines.append,
                    max_checks=2, sleep=lambda s: None)
    # Blocked once, reported on one line; the second check does not retry the same events.
    assert (summary.checks, summary.published, summary.failed) == (2, 0, 1)
    [line] = lines
    assert "publish failed (waiting for new events)" in line and "station_turnout.cast_le_registered" in line
    assert ReleaseStore(isolated).latest()[0]["release_id"] == good["release_id"]

    st = status(isolated)
    assert st.events_behind == 1  # the one bad tally
    assert st.last_release is not None and st.last_release.release_id == good["release_id"]
    assert st.last_failure is not None and "station_turnout.cast_le_registered" in st.last_failure.blocking_failed
    assert st.last_failure.url in line


def test_cli_watch_publishes_status_prints_and_ctrl_c_stops_with_exit_0(isolated, tmp_path):
    assert ingest(_election(tmp_path / "a"), isolated).rejected_total == 0
    bounded = _cli(isolated, "publish", "--watch", "--interval", "1s", "--max-publishes", "1")
    out, err = bounded.communicate(timeout=300)
    assert bounded.returncode == 0, err
    assert out.count("published release ") == 1 and "stopped after 1 checks: 1 published, 0 failed" in out

    shown = _cli(isolated, "status")
    out, err = shown.communicate(timeout=120)
    assert shown.returncode == 0, err
    latest = ReleaseStore(isolated).latest()[0]["release_id"]
    assert "lag:          0 events, 0 s behind" in out and f"last release: {latest} at " in out
    assert "last failure: none since the last release" in out
    assert "withheld:     0 units (withholding not configured)" in out

    # Output to files, not pipes: the exit is what is measured, not when every process that may have inherited
    # the pipe (a helper Dagster starts beside a run) lets go of it.
    out_path, err_path = tmp_path / "watch.out", tmp_path / "watch.err"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        # SIGINT as a terminal's Ctrl-C delivers it, even when this suite itself runs in the background (a shell
        # starts background jobs with SIGINT ignored, children inherit that, and Python then never raises
        # KeyboardInterrupt).
        watching = _cli(isolated, "publish", "--watch", "--interval", "60s", stdout=out_file, stderr=err_file,
                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 120
            while "watching" not in out_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(5)  # through the first check (nothing new) into the sleep
            watching.send_signal(signal.SIGINT)
            assert watching.wait(timeout=120) == 0, err_path.read_text()
        finally:
            watching.kill()  # never left running when the test fails
    lines = out_path.read_text().strip().splitlines()
    assert lines[0].startswith("watching") and lines[-1] == "stopped", lines
    assert len(lines) == 2 and "Traceback" not in err_path.read_text()
