"""The incremental gate checks a table's files in batches (``CHECK_BATCH_ROWS``), smaller for a table whose files
bring the rows of an aligned context table along (station_turnout: each tally's station_results rows). A file's
outcome does not depend on the batch it was checked in."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.fold import fold
from pipelines.fold import tables as t
from pipelines.gate import GateReport
from pipelines.gate import incremental as inc
from pipelines.gate import names as n
from pipelines.gate.incremental import AlignedTable, TableFiles, batch_rows
from pipelines.kafka.snapshot import Snapshot
from pipelines.release.gating import gate_staged
from pipelines.release.parquet import StagedFile
from pipelines.release.pipeline import stage_tables
from pipelines.settings import DEFAULT_GATE_TOLERANCE, Settings
from tests.support.factories import small_election
from tests.support.gate_mutations import MUTATIONS

SNAPSHOT = Snapshot(start={("results", 0): 0}, end={("results", 0): 1})
BROKEN = [(t.CONTEST_RESULTS, n.COUNTS_NON_NEGATIVE), (t.STATION_TURNOUT, n.CAST_LE_REGISTERED),
          (t.STATION_RESULTS, n.CANDIDATE_RESOLVES)]


def _files(name: str, rows: tuple[int, ...]) -> TableFiles:
    return TableFiles(name, "sha", tuple(f"f{i}" for i in range(len(rows))), lambda i, cols: pa.table({}), rows)


def test_a_batch_leaves_room_for_the_aligned_rows_its_files_bring():
    results = AlignedTable(t.STATION_RESULTS, "sha", ("r0",), [None], rows=12_000)
    assert batch_rows(_files(t.STATION_TURNOUT, (600, 400)), [results]) == inc.CHECK_BATCH_ROWS * 1_000 // 13_000
    assert batch_rows(_files(t.STATION_TURNOUT, (600, 400)), []) == inc.CHECK_BATCH_ROWS
    assert batch_rows(_files(t.STATION_TURNOUT, ()), [results]) == inc.CHECK_BATCH_ROWS  # rows not known
    assert batch_rows(_files(t.STATION_TURNOUT, (1,)), [results]) >= 1


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StagedFile]:
    tables = fold(small_election().records)
    for target in BROKEN:
        tables = MUTATIONS[target](tables)
    folder = tmp_path_factory.mktemp("staged")
    return stage_tables(Settings(staging_dir=str(folder), table_file_bytes=120), SNAPSHOT, tables, run_id="r").files


def test_a_files_outcome_is_the_same_in_any_batch(staged: dict[str, StagedFile], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(staged[t.STATION_TURNOUT].parts) > 2
    whole = gate_staged(staged, DEFAULT_GATE_TOLERANCE, None, tmp_path / "a")
    monkeypatch.setattr(inc, "CHECK_BATCH_ROWS", 2)  # a file or two per batch
    small = gate_staged(staged, DEFAULT_GATE_TOLERANCE, None, tmp_path / "b")
    report = GateReport(checks=small.results, tolerance=DEFAULT_GATE_TOLERANCE)
    assert report.to_dict() == GateReport(checks=whole.results, tolerance=DEFAULT_GATE_TOLERANCE).to_dict()
    assert small.cache == whole.cache and small.checked_files == whole.checked_files
    assert {(c.table, c.name) for c in report.checks if not c.success} == set(BROKEN)
