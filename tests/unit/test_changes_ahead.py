"""Changes counted beside the gate (``pipelines.release.changes.ChangesAhead``) are what the release step would
count, and are used only for the files and the previous release they were counted for."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.fold import tables as t
from pipelines.release.changes import ChangesAhead, count_changes
from pipelines.release.parquet import StagedFile, write_table


def _parties(directory: Path, names: list[str]) -> dict[str, StagedFile]:
    rows = [{"party_id": f"p{i}", "name": n, "abbreviation": None, "event_id": f"e{i}", "topic": "results",
             "partition": 0, "offset": i} for i, n in enumerate(names)]
    table = pa.Table.from_pylist(rows, schema=t.SCHEMAS[t.PARTIES])
    return {t.PARTIES: write_table(t.PARTIES, table, directory)}


def test_changes_counted_ahead_are_the_release_s_and_fit_only_their_files_and_release(tmp_path: Path) -> None:
    files = _parties(tmp_path / "a", ["Yeni", "Musavat"])
    counted = ChangesAhead(None, None, files, tmp_path / "kept").result()  # the first release: no store read
    assert counted is not None
    assert counted.changes == count_changes(None, None, files, tmp_path / "kept")[0]
    assert counted.changes["tables"][t.PARTIES] == {"added": 2, "changed": 0, "removed": 0}
    assert counted.timings["changes_files_local"] == 0 and counted.timings["changes_s"] >= 0
    assert counted.fits(None, files)
    assert not counted.fits({"release_id": "r1"}, files)  # another publisher released meanwhile
    assert not counted.fits(None, _parties(tmp_path / "b", ["Yeni", "Umid"]))  # re-staged (withheld units)


def test_a_count_that_failed_ahead_is_no_result(tmp_path: Path) -> None:
    gone = {t.PARTIES: StagedFile(t.PARTIES, tmp_path / "gone.parquet", 1, 1, "0" * 64)}
    assert ChangesAhead(None, None, gone, tmp_path / "kept").result() is None
