"""A publish staged from its new tallies' scope (``pipelines.release.scoped``) writes, table by table and file by
file, what a fold of the whole snapshot writes; a delta of more than tallies is refused with the reason.

Hypothesis draws a history and a delta (``test_fold_scope``'s municipal election); the last release is staged in
full, the next one from the checkpoint's extraction and the files the last one left in the cache. Files are a
few hundred bytes, so that every table of size is many files and the splice runs on spans of them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from pipelines.fold import TABLE_NAMES
from pipelines.fold import tables as t
from pipelines.fold.core import fold, fold_tables
from pipelines.fold.scope import SCOPED_BY, UNSCOPED
from pipelines.fold.sliced import SlicedTable
from pipelines.fold.summary import SUMMARY_TURNOUT_COLUMNS, part_figures
from pipelines.fold.tables import KEYS, MUNICIPALITY_RESULTS, STATION_TURNOUT, file_layout
from pipelines.release import cdf, checkpoint, reuse, scoped
from pipelines.release.diff import diff_tables
from pipelines.release.parquet import ParquetParts, StagedFile, write_table_files
from pipelines.release.part_figures import FiguresCache
from pipelines.settings import Settings
from tests.support.factories import Log
from tests.support.log_reads import log_reader, snapshot_of
from tests.support.municipal import DELTA, HISTORY, apply_delta, apply_history, municipal_election, tally

FILE_BYTES = 120
DATASET = "test-scoped"


def _write_all(tables, directory: Path, cache: reuse.TableFileCache) -> dict[str, StagedFile]:
    out = {}
    for name, table in tables:
        table = table.table() if isinstance(table, SlicedTable) else table
        out[name] = write_table_files(name, table, directory, **file_layout(name, FILE_BYTES), write=cache.write)
    return out


def _manifest(release_id: str, files: dict[str, StagedFile], file_bytes: int = FILE_BYTES) -> dict:
    return {"release_id": release_id, "write": {"cutting": scoped.cutting(file_bytes)}, "tables": {
        name: {"path": None if f.parts else f"tables/{name}.parquet",
               "files": [{"sha256": p.sha256, "rows": p.rows} for p in f.parts or (f,)]}
        for name, f in files.items()}}


def _shas(files: dict[str, StagedFile]) -> dict[str, list[str]]:
    return {name: [p.sha256 for p in f.parts or (f,)] for name, f in files.items()}


def publish_twice(log, upto: int, tmp: Path, staged=scoped.Writing.staged
                  ) -> tuple[scoped.ScopedStage, dict[str, StagedFile], reuse.TableFileCache, dict[str, StagedFile]]:
    """Stage ``log.records[:upto]`` in full, then the whole log from its scope (``staged``: told the files staged
    so far after each table); and a full write of the whole; and the first stage's files."""
    config = Settings(read_ranges=1, read_range_min_events=1)
    cache_dir = tmp / "cache"
    first = checkpoint.extend(config, snapshot_of(log.records[:upto]), checkpoint.Base(None, "full"), None,
                              cache_dir, read=log_reader(log))
    kept = reuse.TableFileCache(cache_dir / checkpoint.TABLE_FILES_FOLDER, {})
    last = _write_all(fold_tables(first.extracted, DATASET), tmp / "first", kept)
    ckpt = dataclasses.replace(first.pending.checkpoint, table_files=kept.records(last.values()))
    second = checkpoint.extend(config, snapshot_of(log.records), checkpoint.Base(ckpt, "incremental", "r1"), None,
                               cache_dir, read=log_reader(log))
    assert second.new_from == first.extracted.envelope.num_rows
    cache = reuse.TableFileCache(cache_dir / checkpoint.TABLE_FILES_FOLDER, reuse.kept_files(ckpt.table_files))
    figures = cache_dir / checkpoint.FIGURES_FOLDER
    # What the last publish kept of its station_turnout files: the scope's unchanged files are summed from it.
    turnout = last[STATION_TURNOUT]
    for part in turnout.parts or (turnout,):
        FiguresCache(figures).of(part.sha256, lambda part=part: pq.read_table(part.path, columns=list(
            SUMMARY_TURNOUT_COLUMNS)))
    done = scoped.stage_scoped(second, _manifest("r1", last), "r1", DATASET,
                               scoped.Writing(tmp / "second", FILE_BYTES, cache, staged, figures))
    assert second.extracted is None  # handed over, and let go of
    whole = fold(log.records, DATASET)
    full = _write_all(whole.items(), tmp / "full", reuse.TableFileCache(tmp / "unused", {}))
    return done, full, cache, last


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=HISTORY, delta=DELTA)
def test_a_scoped_publish_writes_the_files_of_a_full_one(history, delta, tmp_path_factory) -> None:
    log = municipal_election()
    for n in range(16):  # every station reports: tables of many files
        apply_history(log, "tally", n * 7)
    for op, n in history:
        apply_history(log, op, n)
    upto = len(log.records)
    for op, n in delta:
        apply_delta(log, op, n)
    try:
        done, full, _, last = publish_twice(log, upto, tmp_path_factory.mktemp("scoped"))
    except scoped.NotScoped as exc:
        assert "not tallies alone" in str(exc) or "of the tallies" in str(exc)
        return
    assert list(done.files) == list(TABLE_NAMES)
    assert _shas(done.files) == _shas(full)
    assert {n: f.rows for n, f in done.files.items()} == {n: f.rows for n, f in full.items()}
    # The changes counted beside the splices are those of the whole tables, file against file.
    assert set(done.changes) == set(SCOPED_BY)
    assert done.changes == {name: diff_tables(ParquetParts(list(last[name].paths())),
                                              ParquetParts(list(full[name].paths())), list(KEYS[name]))
                            for name in SCOPED_BY}


def _reported(tallies: int) -> tuple[Log, int]:
    """The municipal election with ``tallies`` tallies, and its length."""
    log = municipal_election()
    for n in range(tallies):
        apply_history(log, "tally", n)
    return log, len(log.records)


def test_one_council_s_new_tally_reuses_the_other_files(tmp_path: Path) -> None:
    log, upto = _reported(60)
    apply_delta(log, "tally", 1000)
    done, full, cache, _ = publish_twice(log, upto, tmp_path)
    assert _shas(done.files) == _shas(full)
    files = sum(len(f.parts) or 1 for f in done.files.values())
    assert files > 25 and cache.reused > 0.7 * files, (files, cache.reused)
    assert done.note.startswith("the new tallies' scope: 1 contests")


def test_national_summary_sums_the_files_the_scope_left_from_the_figures_kept_of_them(tmp_path: Path) -> None:
    log = municipal_election()
    for n in [*range(6), 7, 14, *range(8, 14)]:  # every station's council alone: a station in one row each
        tally(log, n)
    upto = len(log.records)
    tally(log, 16)  # station 1's council again
    done, full, _, last = publish_twice(log, upto, tmp_path)
    assert _shas(done.files) == _shas(full)
    turnout = done.files[STATION_TURNOUT]
    parts = turnout.parts or (turnout,)
    kept = FiguresCache(tmp_path / "cache" / checkpoint.FIGURES_FOLDER)
    # Every file's figures are kept, and summable: national_summary summed them, none read whole.
    assert all(kept.of(p.sha256, _unread) is not None for p in parts)
    left = set(_shas(last)[STATION_TURNOUT])
    assert 0 < sum(p.sha256 in left for p in parts) < len(parts)


def _unread():
    raise AssertionError("a station_turnout file whose figures are kept was read")


@pytest.mark.parametrize("threads", [1, 3])
def test_the_files_staged_so_far_are_told_as_each_table_is_the_documents_tables_before_the_history(
        threads: int, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(scoped, "SPLICE_THREADS", threads)
    log, upto = _reported(60)
    apply_delta(log, "tally", 1000)
    told: list[dict[str, StagedFile]] = []
    done, full, _, _ = publish_twice(log, upto, tmp_path, lambda files: told.append(dict(files)))
    assert _shas(done.files) == _shas(full)
    assert len(told) == len(TABLE_NAMES) and told[-1] == done.files  # one table more each time
    assert all(earlier.items() <= later.items() for earlier, later in zip(told, told[1:]))  # never re-staged
    if threads == 1:  # the splices end in the order the fold yields their tables (with more, in any order)
        ready = next(i for i, files in enumerate(told) if set(cdf.TABLES) <= set(files))
        assert "events" not in told[ready] and "corrections" not in told[ready]


def test_a_delta_with_an_incident_is_folded_whole(tmp_path: Path) -> None:
    log, upto = _reported(10)
    apply_history(log, "incident", 3)
    with pytest.raises(scoped.NotScoped, match="not tallies alone"):
        publish_twice(log, upto, tmp_path)


@pytest.mark.parametrize("damage", ["footer", "first row group"])
def test_a_damaged_file_in_the_cache_means_a_whole_fold(damage: str, tmp_path: Path, monkeypatch) -> None:
    log, upto = _reported(60)
    apply_delta(log, "tally", 1000)
    real = scoped.stage_scoped

    def damaging(source, manifest, release_id, dataset, writing):
        # Every kept events file has a byte changed: rows read from it would be wrong.
        for f in manifest["tables"]["events"]["files"]:
            path = writing.cache.kept_path(f["sha256"])
            data = bytearray(path.read_bytes())
            data[-1 if damage == "footer" else 8] ^= 0xFF
            path.write_bytes(bytes(data))
        return real(source, manifest, release_id, dataset, writing)

    monkeypatch.setattr(scoped, "stage_scoped", damaging)
    # Read by the splice (the files around the new events) or linked as they are (the others): damaged either way.
    with pytest.raises(scoped.NotScoped, match="events in the local cache is damaged|events in the last release "
                                               "is missing from the local cache or damaged"):
        publish_twice(log, upto, tmp_path)


def test_a_malformed_manifest_entry_means_a_whole_fold(tmp_path: Path, monkeypatch) -> None:
    log, upto = _reported(10)
    apply_delta(log, "tally", 1000)
    real = scoped.stage_scoped

    def malformed(source, manifest, release_id, dataset, writing):
        del manifest["tables"]["events"]["files"][0]["rows"]
        return real(source, manifest, release_id, dataset, writing)

    monkeypatch.setattr(scoped, "stage_scoped", malformed)
    with pytest.raises(scoped.NotScoped, match="entry for events is malformed"):
        publish_twice(log, upto, tmp_path)


def test_the_figures_of_the_files_the_splice_wrote_are_kept_from_their_rows_and_no_file_is_read_back(
        tmp_path: Path, monkeypatch) -> None:
    read_back: list[str] = []
    real = scoped.pq.read_table

    def counted(source, *args, **kwargs):  # noqa: ANN001, ANN202
        if isinstance(source, str | Path) and STATION_TURNOUT in str(source):
            read_back.append(str(source))
        return real(source, *args, **kwargs)

    log = municipal_election()
    for n in [*range(6), 7, 14, *range(8, 14)]:
        tally(log, n)
    upto = len(log.records)
    tally(log, 16)
    monkeypatch.setattr(scoped.pq, "read_table", counted)
    done, full, _, last = publish_twice(log, upto, tmp_path)
    monkeypatch.undo()
    assert _shas(done.files) == _shas(full)
    turnout = done.files[STATION_TURNOUT]
    written = [p for p in turnout.parts or (turnout,) if p.sha256 not in set(_shas(last)[STATION_TURNOUT])]
    assert written  # the scope changed a file: it was spliced, its figures kept as it was written
    kept = FiguresCache(tmp_path / "cache" / checkpoint.FIGURES_FOLDER)
    for part in written:
        got = kept.of(part.sha256, _unread)
        want = part_figures(pq.read_table(part.path, columns=list(SUMMARY_TURNOUT_COLUMNS)))
        assert got is not None and want is not None
        assert (got.election, got.totals, got.municipalities) == (want.election, want.totals, want.municipalities)
        assert got.prints.tolist() == want.prints.tolist()
    assert not [p for p in read_back if str(tmp_path / "second") in p]


@pytest.mark.parametrize(("write", "why"), [
    (None, "the last release does not say how its table files were cut"),
    ({"cutting": scoped.cutting(FILE_BYTES * 2)}, "the last release's table files were cut otherwise"),
    ({"cutting": {**scoped.cutting(FILE_BYTES), "rule": scoped.CUTS_VERSION - 1}}, "cut otherwise"),
])
def test_a_release_cut_otherwise_is_not_followed_by_a_scoped_stage(tmp_path, write, why):
    # Its untouched tables' files would be kept as they are, cut unlike a full rebuild's: the snapshot is folded
    # whole instead (the publish says why).
    manifest = {"release_id": "r1", "tables": {}, **({"write": write} if write else {})}
    source = dataclasses.make_dataclass("Source", ["extracted", "new_from"])(extracted=object(), new_from=1)
    writing = scoped.Writing(tmp_path, FILE_BYTES, reuse.TableFileCache(tmp_path / "cache", {}))
    with pytest.raises(scoped.NotScoped, match=why):
        scoped.stage_scoped(source, manifest, "r1", DATASET, writing)
    assert source.extracted is not None  # nothing cut out: the whole fold still has it


def test_a_table_cut_into_smaller_files_changes_the_record_of_how_files_are_cut(monkeypatch):
    before = scoped.cutting(FILE_BYTES)
    assert file_layout(MUNICIPALITY_RESULTS, 1000)["file_bytes"] == 250  # FILE_BYTES_SCALE
    assert file_layout(STATION_TURNOUT, 1000)["file_bytes"] == 1000
    monkeypatch.setitem(t.FILE_BYTES_SCALE, STATION_TURNOUT, 0.5)
    assert file_layout(STATION_TURNOUT, 1000)["file_bytes"] == 500
    assert scoped.cutting(FILE_BYTES)["widths"] != before["widths"]


def test_only_tables_a_batch_of_tallies_never_changes_are_cut_into_larger_files():
    assert file_layout(t.DIVISIONS, 1000)["file_bytes"] == 4000  # FILE_BYTES_SCALE
    larger = {name for name, scale in t.FILE_BYTES_SCALE.items() if scale > 1}
    assert t.DIVISIONS in larger and not larger & (set(SCOPED_BY) | UNSCOPED)


def test_a_table_in_another_row_order_changes_the_record_of_how_files_are_cut(monkeypatch):
    # A splice keeps the last release's files and places rows among theirs: in another order it would not give
    # a full rebuild's files, so such a release must not be staged from.
    before = scoped.cutting(FILE_BYTES)
    monkeypatch.setitem(t.ORDER, t.EVENTS, ("offset", "topic", "partition", "event_id"))
    assert scoped.cutting(FILE_BYTES)["widths"] != before["widths"]


def test_a_table_with_other_columns_changes_the_record_of_how_files_are_cut(monkeypatch):
    # The status that moved from events to noncurrent_events: a splice of the last release's events files would
    # have kept their status column beside new rows without it.
    before = scoped.cutting(FILE_BYTES)
    monkeypatch.setitem(t.SCHEMAS, t.EVENTS, t.SCHEMAS[t.EVENTS].append(pa.field("status", pa.string())))
    assert scoped.cutting(FILE_BYTES)["widths"] != before["widths"]
