"""Changes counted beside the gate (``pipelines.release.changes.ChangesAhead``) are what the release step would
count, and are used only for the files and the previous release they were counted for."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa

from pipelines.fold import tables as t
from pipelines.release.changes import ChangesAhead, Known, count_changes
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


class _Store:
    """The previous release's one parties file, downloaded from here (counted as ``downloads``)."""

    bucket = "test"

    def __init__(self, body: bytes) -> None:
        self.body, self.downloads = body, 0
        self.s3 = self

    def table_keys(self, manifest: dict, name: str) -> list[str]:
        return [f["key"] for f in manifest["tables"][name]["files"]]

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 (boto3's names)
        self.downloads += 1
        return {"Body": io.BytesIO(self.body)}


def test_changes_known_from_the_stage_are_used_only_for_their_files_and_release(tmp_path: Path) -> None:
    # The scoped stage counted the parties' changes as it spliced them: the count reads neither side of them.
    before = _parties(tmp_path / "before", ["Yeni"])[t.PARTIES]
    files = _parties(tmp_path / "a", ["Yeni", "Musavat"])
    previous = {"release_id": "r1", "tables": {t.PARTIES: {"files": [{"sha256": before.sha256, "key": "k"}]}}}
    counted = {"added": 5, "changed": 5, "removed": 5}  # not what the files say: used only when it fits
    known = Known("r1", {t.PARTIES: (files[t.PARTIES].sha256, counted)})
    store = _Store(before.path.read_bytes())
    changes, timings = count_changes(store, previous, files, tmp_path / "kept", known)
    assert changes["tables"][t.PARTIES] == counted and timings["changes_tables_known"] == 1
    assert ChangesAhead(store, previous, files, tmp_path / "kept", known).result().changes == changes
    assert store.downloads == 0
    # Since another release, or of other files: counted from the files.
    for other in (Known("r0", known.tables), Known("r1", {t.PARTIES: ("0" * 64, counted)})):
        changes, timings = count_changes(store, previous, files, tmp_path / "kept", other)
        assert changes["tables"][t.PARTIES] == {"added": 1, "changed": 0, "removed": 0}
        assert timings["changes_tables_known"] == 0
    assert store.downloads == 2
