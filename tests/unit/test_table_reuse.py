"""Reusing the last release's table files (``pipelines.release.reuse``): a file whose data is unchanged is
linked from the local cache, not encoded again, and the staged files are byte for byte those a fresh write
gives; a changed row rewrites only its file, and a damaged kept copy or checkpoint entry means writing anew."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.fold.tables import FILE_WIDTHS, ORDER, STATION_RESULTS, STATION_TURNOUT
from pipelines.release import checkpoint, fingerprints, parquet, reuse, splice
from pipelines.release.parquet import StagedFile, write_table_files
from pipelines.settings import Settings

STATIONS, PER_STATION = 3_000, 3
WIDTH = FILE_WIDTHS[STATION_RESULTS]
FILE_STATIONS = 170  # about 510 rows per file
FILE_BYTES = round(FILE_STATIONS * (WIDTH.run + PER_STATION * WIDTH.row))


CANDIDATES = pa.array(["a", "b", "c", "d"])


def _results(votes: np.ndarray | None = None, candidates: np.ndarray | None = None) -> pa.Table:
    stations = sorted(f"ocd-division/country:xx/station:{i:05d}" for i in range(STATIONS))
    rows = STATIONS * PER_STATION
    candidates = np.tile(np.arange(PER_STATION, dtype=np.int32), STATIONS) if candidates is None else candidates
    return pa.table({
        # One dictionary per column for the whole table, as the fold builds them: each file keeps only its own
        # values.
        "station_id": pa.DictionaryArray.from_arrays(
            pa.array(np.repeat(np.arange(STATIONS, dtype=np.int32), PER_STATION)), pa.array(stations)),
        "candidate": pa.DictionaryArray.from_arrays(pa.array(candidates), CANDIDATES),
        "votes": pa.array(np.arange(rows) if votes is None else votes),
    })


class Encodes:
    """Counts Parquet encodes (``parquet._write`` calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls = 0
        write = parquet._write

        def counted(*args: object) -> None:
            self.calls += 1
            write(*args)

        monkeypatch.setattr(parquet, "_write", counted)


def _stage(table: pa.Table, directory: Path, cache: Path, kept: dict | None) -> tuple[StagedFile, reuse.TableFileCache]:
    files = reuse.TableFileCache(cache, reuse.kept_files(kept))
    staged = write_table_files("station_results", table, directory, split_column="station_id", width=WIDTH,
                               file_bytes=FILE_BYTES, write=files.write)
    return staged, files


def _fresh(table: pa.Table, directory: Path) -> StagedFile:
    return write_table_files("station_results", table, directory, split_column="station_id", width=WIDTH,
                             file_bytes=FILE_BYTES)


@pytest.mark.parametrize("row_group_rows", [parquet.ROW_GROUP_ROWS, 200])  # files of one or several row groups
def test_an_unchanged_table_is_linked_from_the_cache_not_encoded(row_group_rows, tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", row_group_rows)
    table = _results()
    fresh = _fresh(table, tmp_path / "fresh")
    assert len(fresh.parts) > 3
    first, cache = _stage(table, tmp_path / "first", tmp_path / "cache", None)
    assert (cache.written, cache.reused) == (len(fresh.parts), 0)

    encodes = Encodes(monkeypatch)
    again, cache = _stage(table, tmp_path / "again", tmp_path / "cache", _records(first, cache))
    assert encodes.calls == 0 and (cache.written, cache.reused) == (0, len(fresh.parts))
    assert again.sha256 == first.sha256 == fresh.sha256
    assert [p.sha256 for p in again.parts] == [p.sha256 for p in fresh.parts]
    assert [p.rows for p in again.parts] == [p.rows for p in fresh.parts]
    for staged, written in zip(again.paths(), fresh.paths(), strict=True):
        assert staged.read_bytes() == written.read_bytes()
        kept = tmp_path / "cache" / f"{parquet.file_sha256(written)}.parquet"
        assert os.path.samefile(staged, kept)  # a hard link, not a copy


def _records(staged: StagedFile, cache: reuse.TableFileCache) -> dict:
    return cache.records([staged])


def test_a_small_table_is_one_file_and_is_reused_too(tmp_path, monkeypatch):
    # Just under the bytes of a table kept as one file.
    table = _results().slice(0, (parquet.ONE_FILE_UP_TO * FILE_STATIONS - 10) * PER_STATION)
    first, cache = _stage(table, tmp_path / "first", tmp_path / "cache", None)
    assert first.parts == () and cache.written == 1
    encodes = Encodes(monkeypatch)
    again, cache = _stage(table, tmp_path / "again", tmp_path / "cache", _records(first, cache))
    assert encodes.calls == 0 and cache.reused == 1 and again.sha256 == first.sha256
    assert again.path.name == "station_results.parquet"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(0, STATIONS * PER_STATION - 1), column=st.sampled_from(["votes", "candidate"]),
       value=st.integers(0, 3))
def test_a_changed_row_rewrites_only_its_file(row, column, value, tmp_path_factory):
    root = tmp_path_factory.mktemp("reuse")
    before = _results()
    first, cache = _stage(before, root / "first", root / "cache", None)

    votes = np.arange(STATIONS * PER_STATION)
    candidates = np.tile(np.arange(PER_STATION, dtype=np.int32), STATIONS)
    (votes if column == "votes" else candidates)[row] = value
    after = _results(votes, candidates)
    changed = not after.equals(before)

    again, cache = _stage(after, root / "again", root / "cache", _records(first, cache))
    fresh = _fresh(after, root / "fresh")
    assert [p.sha256 for p in again.parts] == [p.sha256 for p in fresh.parts]
    starts = np.cumsum([0, *[p.rows for p in again.parts]])
    holding = int(np.searchsorted(starts, row, side="right")) - 1
    rewritten = [i for i, (a, b) in enumerate(zip(again.parts, first.parts, strict=True)) if a.sha256 != b.sha256]
    assert (cache.written, cache.reused) == (int(changed), len(again.parts) - int(changed))
    assert rewritten == ([holding] if changed else [])


@pytest.mark.parametrize("damage", ["truncated", "bytes changed", "removed"])
def test_a_damaged_kept_file_is_written_anew_and_kept_again(damage, tmp_path, monkeypatch):
    table = _results()
    first, cache = _stage(table, tmp_path / "first", tmp_path / "cache", None)
    victim = tmp_path / "cache" / f"{first.parts[2].sha256}.parquet"
    intact = victim.read_bytes()
    victim.unlink()  # its bytes are the staged file's too (a hard link): damage a copy of its own
    if damage == "truncated":
        victim.write_bytes(intact[:-10])
    elif damage == "bytes changed":
        victim.write_bytes(intact[:100] + bytes(b ^ 0xFF for b in intact[100:110]) + intact[110:])

    encodes = Encodes(monkeypatch)
    again, cache = _stage(table, tmp_path / "again", tmp_path / "cache", _records(first, cache))
    assert encodes.calls == 1 and (cache.written, cache.reused) == (1, len(first.parts) - 1)
    assert again.parts[2].path.read_bytes() == intact and again.sha256 == first.sha256
    assert victim.read_bytes() == intact  # kept again, intact


def test_malformed_checkpoint_entries_mean_writing_not_a_traceback(tmp_path, monkeypatch):
    table = _results()
    first, cache = _stage(table, tmp_path / "first", tmp_path / "cache", None)
    records = _records(first, cache)
    keys = list(records)
    good = records[keys[0]]
    broken = {keys[0]: {**good, "sha256": "../../" + good["sha256"][6:]}, keys[1]: {**records[keys[1]], "rows": True},
              keys[2]: {"sha256": records[keys[2]]["sha256"]}, keys[3]: "not an entry",
              keys[4]: {**records[keys[4]], "rows": records[keys[4]]["rows"] + 1}}
    assert set(reuse.kept_files({**records, **broken})) == set(records) - set(broken) | {keys[4]}
    assert reuse.kept_files(["not", "a", "dict"]) == {} and reuse.kept_files(None) == {}

    encodes = Encodes(monkeypatch)
    again, cache = _stage(table, tmp_path / "again", tmp_path / "cache", {**records, **broken})
    assert encodes.calls == len(broken) == cache.written
    assert again.sha256 == first.sha256


def test_the_fingerprint_follows_what_decides_the_bytes(monkeypatch):
    table = _results().slice(0, 900)
    same = fingerprints.fingerprint(table)
    # Unused values of a shared dictionary are dropped before writing: they do not count.
    ids = table["station_id"].combine_chunks()
    wider = pa.DictionaryArray.from_arrays(ids.indices, pa.concat_arrays([ids.dictionary, pa.array(["unused"])]))
    assert fingerprints.fingerprint(table.set_column(0, "station_id", wider)) == same
    assert fingerprints.fingerprint(table.replace_schema_metadata({"k": "v"})) != same
    assert fingerprints.fingerprint(table.set_column(2, "votes", table["votes"].cast(pa.int32()))) != same
    nulled = pa.array(table["votes"].to_pylist()[:-1] + [None], pa.int64())
    assert fingerprints.fingerprint(table.set_column(2, "votes", nulled)) != same
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 100)
    assert fingerprints.fingerprint(table) != same
    monkeypatch.undo()
    monkeypatch.setitem(parquet._WRITE_OPTIONS, "compression_level", 4)
    assert fingerprints.fingerprint(table) != same


def test_writing_over_a_linked_file_leaves_the_kept_copy_alone(tmp_path):
    table = _results()
    first, cache = _stage(table, tmp_path / "first", tmp_path / "cache", None)
    kept = tmp_path / "cache" / f"{first.parts[0].sha256}.parquet"
    intact = kept.read_bytes()
    # What the gate's withholding does: the same folder staged again, with other rows.
    parquet.write_file("station_results", table.slice(0, 10), first.parts[0].path)
    assert kept.read_bytes() == intact and first.parts[0].path.read_bytes() != intact


def test_prune_keeps_the_latest_release_files_and_young_partial_copies(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    for name in ("a" * 64, "b" * 64):
        (folder / f"{name}.parquet").write_bytes(b"x")
    (folder / ".young-partial").write_bytes(b"x")
    old = folder / ".old-partial"
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    assert reuse.prune(folder, {"a" * 64}) == 2
    assert sorted(p.name for p in folder.iterdir()) == [".young-partial", f"{'a' * 64}.parquet"]
    assert reuse.prune(tmp_path / "absent", set()) == 0


def _turnout(stations: int) -> pa.Table:
    return pa.table({"election_id": ["e"] * stations, "contest_id": [f"c{i // 50:02d}" for i in range(stations)],
                     "station_id": [f"s{i:04d}" for i in range(stations)], "registered_voters": list(range(stations))})


def test_each_kept_file_s_first_key_is_noted_beside_it_and_read_from_the_file_without_a_good_note(tmp_path):
    table = _turnout(2_000)
    cache = reuse.TableFileCache(tmp_path / "cache", {})
    staged = write_table_files(STATION_TURNOUT, table, tmp_path / "staged", split_column="station_id",
                               width=FILE_WIDTHS[STATION_TURNOUT], file_bytes=4_000, write=cache.write)
    kept = [cache.kept_path(p.sha256) for p in staged.parts]
    assert len(kept) > 3
    notes = [k.with_name(f"{k.stem}.first.json") for k in kept]
    assert all(n.is_file() for n in notes)
    read = [tuple(pq.read_table(p, columns=list(ORDER[STATION_TURNOUT])).slice(0, 1).to_pylist()[0].values())
            for p in staged.paths()]
    assert read[1] != read[0] and splice.first_keys(STATION_TURNOUT, kept) == read

    # A note cut short, one naming another file, one gone, one with a key of the wrong width: each is read from
    # its file, and noted again.
    notes[0].write_text('{"sha256": "')
    notes[1].write_text(notes[2].read_text())
    notes[2].unlink()
    notes[3].write_text(json.dumps({"sha256": kept[3].stem, "first": ["e", "c00"]}))
    assert splice.first_keys(STATION_TURNOUT, kept) == read
    assert [reuse.kept_first_key(k, 3) for k in kept] == read

    # A note that says another key is what the splice uses: it is trusted as the kept file is.
    notes[0].write_text(json.dumps({"sha256": kept[0].stem, "first": ["e", "c99", "s9999"]}))
    assert splice.first_keys(STATION_TURNOUT, kept)[0] == ("e", "c99", "s9999")

    assert reuse.prune(tmp_path / "cache", {staged.parts[0].sha256}) == 2 * (len(kept) - 1)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([kept[0].name, notes[0].name])


def test_kept_bytes_are_returned_only_when_intact(tmp_path):
    data = b"parquet bytes"
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / f"{sha}.parquet").write_bytes(data)
    assert reuse.kept_bytes(tmp_path, sha) == data
    (tmp_path / f"{sha}.parquet").write_bytes(b"parquet bytez")
    assert reuse.kept_bytes(tmp_path, sha) is None
    assert reuse.kept_bytes(tmp_path, "f" * 64) is None and reuse.kept_bytes(tmp_path, "../x") is None


def test_the_checkpoint_keeps_the_records_and_the_segment_pruning_leaves_them(tmp_path):
    ckpt = checkpoint.Checkpoint("v", {("t", 0): 0}, {("t", 0): 1}, [], table_files={"fp": {"sha256": "a"}})
    assert checkpoint.Checkpoint.from_json(ckpt.to_json()).table_files == {"fp": {"sha256": "a"}}
    assert checkpoint.Checkpoint.from_json({**ckpt.to_json(), "table_files": [1]}).table_files is None

    settings = Settings(staging_dir=str(tmp_path), dataset="d")
    tables = checkpoint.table_files_folder(settings)
    tables.mkdir(parents=True)
    segment = checkpoint.cache_folder(settings) / "segment"
    segment.mkdir()
    os.utime(tables, (0, 0))
    checkpoint.Pending(ckpt, {"segment": segment}, frozenset()).prune_cache(min_age_s=0)
    assert tables.is_dir()
