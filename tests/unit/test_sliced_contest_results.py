"""contest_results assembled a slice at a time: the same table, and the same files, however it is sliced."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.fold import contest_results as cr
from pipelines.fold import tables as t
from pipelines.fold.core import extract_all, fold_extracted, fold_tables
from pipelines.kafka.snapshot import Snapshot
from pipelines.release.pipeline import stage_tables
from pipelines.settings import Settings
from tests.support.factories import generate_election

SNAPSHOT = Snapshot(start={("results", 0): 0}, end={("results", 0): 1})


@pytest.mark.parametrize(("slice_rows", "many_runs"), [(1, 1 << 16), (7, 1 << 16), (50, 0), (1 << 20, 0)])
def test_slices_make_the_whole_table_and_its_files(tmp_path: Path, monkeypatch, slice_rows, many_runs):
    whole = fold_extracted(extract_all(generate_election(stations=300, candidates_per_station=4)), "x")
    whole_staged = stage_tables(Settings(staging_dir=str(tmp_path / "a"), table_file_bytes=500), SNAPSHOT, whole,
                                run_id="whole")
    monkeypatch.setattr(cr, "SLICE_ROWS", slice_rows)
    monkeypatch.setattr(cr._Place, "MANY_RUNS", many_runs)  # 0: every slice places its rows by a gather
    sliced = fold_extracted(extract_all(generate_election(stations=300, candidates_per_station=4)), "x")
    assert whole[t.CONTEST_RESULTS].num_rows > 20 * slice_rows or slice_rows > 1000
    assert sliced[t.CONTEST_RESULTS].equals(whole[t.CONTEST_RESULTS], check_metadata=True)
    streamed = stage_tables(Settings(staging_dir=str(tmp_path / "b"), table_file_bytes=500), SNAPSHOT,
                            fold_tables(extract_all(generate_election(stations=300, candidates_per_station=4)), "x"), run_id="streamed")
    assert len(whole_staged.files[t.CONTEST_RESULTS].parts) > 1
    assert {n: f.sha256 for n, f in streamed.files.items()} == {n: f.sha256 for n, f in whole_staged.files.items()}
