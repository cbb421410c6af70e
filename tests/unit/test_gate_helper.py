"""A gate of every file of a large snapshot runs in two processes (``gating.gate_staged``): the tables a helper
process gates come back with the results, samples and kept outcomes this process would have found."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import CheckError
from pipelines.fold import fold
from pipelines.fold import tables as t
from pipelines.gate import GateReport
from pipelines.gate import names as n
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import gating
from pipelines.release.parquet import StagedFile
from pipelines.release.pipeline import stage_tables
from pipelines.settings import DEFAULT_GATE_TOLERANCE, Settings
from tests.support.dying import exit_at_once
from tests.support.factories import small_election
from tests.support.gate_mutations import MUTATIONS

SNAPSHOT = Snapshot(start={("results", 0): 0}, end={("results", 0): 1})
# One failing rule in a table of each process: samples and counts must come back from both.
BROKEN = [(t.CONTEST_RESULTS, n.COUNTS_NON_NEGATIVE), (t.DIVISIONS, n.PARENT_RESOLVES),
          (t.STATION_RESULTS, n.CANDIDATE_RESOLVES)]


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StagedFile]:
    tables = fold(small_election().records)
    for target in BROKEN:
        tables = MUTATIONS[target](tables)
    folder = tmp_path_factory.mktemp("staged")
    # Small files: the helper's tables and this process's are each several files, gated file by file.
    return stage_tables(Settings(staging_dir=str(folder), table_file_bytes=120), SNAPSHOT, tables,
                        run_id="r").files


def _gate(files: dict[str, StagedFile], prints: Path, **how: object) -> tuple[dict, dict, int, dict[str, float]]:
    run, helper = gating.gate_staged(files, DEFAULT_GATE_TOLERANCE, None, prints, **how)  # type: ignore[arg-type]
    return GateReport(checks=run.results, tolerance=DEFAULT_GATE_TOLERANCE).to_dict(), run.cache, run.checked_files, helper


def test_a_helper_process_gates_its_tables_as_this_process_would(staged: dict[str, StagedFile],
                                                                  tmp_path: Path) -> None:
    assert any(len(staged[name].parts) > 1 for name in gating.HELPER_TABLES)
    alone = _gate(staged, tmp_path / "a", helped=())
    helped = _gate(staged, tmp_path / "b", helped=gating.HELPER_TABLES)
    assert alone[3] == {} and helped[3]["gate_helper_tables"] == len(gating.HELPER_TABLES)
    assert helped[:3] == alone[:3]
    failed = {(c["table"], c["name"]) for c in helped[0]["checks"] if not c["success"]}
    assert failed == set(BROKEN)
    assert all(c["sample"] for c in helped[0]["checks"] if not c["success"])
    assert list(helped[1]["tables"]) == [name for name in t.TABLE_NAMES if name in helped[1]["tables"]]


def test_only_a_gate_of_every_file_of_large_tables_has_a_helper(staged: dict[str, StagedFile],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert gating.helper_tables(staged, None) == ()  # a small election: the helper's start would cost more
    monkeypatch.setattr(gating, "HELPER_MIN_ROWS", 1)
    assert gating.helper_tables(staged, None) == gating.HELPER_TABLES
    assert gating.helper_tables(staged, {"format": "x", "tables": {}}) == ()  # outcomes kept: few files to check


def test_a_helper_that_dies_is_a_check_error_not_a_hang(staged: dict[str, StagedFile], tmp_path: Path) -> None:
    with pytest.raises(CheckError, match="helper process died"):
        gating.gate_staged(staged, DEFAULT_GATE_TOLERANCE, None, tmp_path, helped=(t.EVENTS,), job=exit_at_once)
