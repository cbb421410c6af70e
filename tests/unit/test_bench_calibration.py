"""The benchmarks' machine calibration: a fixed workload, timed; figures are compared only when it agrees."""

from __future__ import annotations

from benchmarks.calibration import calibrate


def test_calibration_times_each_run_and_reports_their_median():
    figures = calibrate(repeats=3, rows=20_000)
    runs = figures["runs_s"]
    assert len(runs) == 3 and all(r > 0 for r in runs)
    assert figures["calibration_s"] == sorted(runs)[1]
    assert figures["rows"] == 20_000
