"""Large tables as several content-addressed files of about ``file_bytes`` each, by their declared widths: where
files start depends only on the rows around it, so a change to a few stations rewrites only their files, new events
only the events files at their log offsets, and the files read back as the table. A wide table and a narrow one
get files of about the same bytes, not rows."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.fold import fold
from pipelines.fold import tables as t
from pipelines.generator.synth import synthesize
from pipelines.release.parquet import (
    chunk_bounds,
    read_staged,
    smallest_within,
    tree_sha256,
    write_table,
    write_table_files,
)
from tests.support.factories import COUNTRY, Log, muni, station
from tests.support.synth_log import synth_records

STATIONS, PER_STATION = 60_000, 3
WIDTH = t.FileWidth(run=20.0, row=2.0)  # 26 bytes per station
FILE_BYTES = 1_700 * 26  # about 1,700 stations, 5,100 rows per file


def _results(stations: list[str], votes: np.ndarray, per_station: int = PER_STATION) -> pa.Table:
    ids = pa.array(np.repeat(stations, per_station)).dictionary_encode()
    return pa.table({"station_id": ids, "candidate": pa.array(np.tile(list("abcdefghijkl")[:per_station],
                                                                      len(stations))),
                     "votes": pa.array(votes)})


def _stations(n: int, region: int = 7) -> list[str]:
    """Station ids in key order, as the fold sorts them."""
    return sorted(f"ocd-division/country:xx/region:{i % region}/station:{i:06d}" for i in range(n))


def _write(table: pa.Table, directory: Path):
    return write_table_files("station_results", table, directory, split_column="station_id", width=WIDTH,
                             file_bytes=FILE_BYTES)


def _data_bytes(path: Path) -> int:
    """A Parquet file's column chunks: its bytes without the footer, which tiny test files would be made of."""
    meta = pq.read_metadata(path)
    return sum(meta.row_group(g).column(c).total_compressed_size
               for g in range(meta.num_row_groups) for c in range(meta.num_columns))


def test_files_start_only_where_the_station_changes_and_hold_about_file_bytes(tmp_path):
    table = _results(_stations(STATIONS), np.arange(STATIONS * PER_STATION))
    bounds = chunk_bounds(table, "station_id", WIDTH, FILE_BYTES)
    assert bounds[0] == 0 and all(b % PER_STATION == 0 for b in bounds)
    declared = np.diff([*bounds, table.num_rows]) // PER_STATION * (WIDTH.run + PER_STATION * WIDTH.row)
    assert 0.5 * FILE_BYTES < declared.mean() < 2 * FILE_BYTES
    staged = _write(table, tmp_path)
    assert len(staged.parts) == len(bounds) > 1
    assert staged.rows == table.num_rows == sum(p.rows for p in staged.parts)
    assert staged.sha256 == tree_sha256([p.sha256 for p in staged.parts])
    back = read_staged(staged)
    assert back.column("votes").to_pylist() == table.column("votes").to_pylist()
    assert back.column("station_id").to_pylist() == table.column("station_id").to_pylist()
    assert [pq.read_metadata(p.path).num_rows for p in staged.parts] == [p.rows for p in staged.parts]


@pytest.mark.parametrize("wanted", [["b"], ["z"]])
def test_a_table_of_many_files_read_with_a_filter_a_file_at_a_time_keeps_what_one_scan_keeps(wanted, tmp_path):
    table = _results(_stations(STATIONS // 10), np.arange(STATIONS // 10 * PER_STATION))
    staged = _write(table, tmp_path)
    assert len(staged.parts) > 1
    kept = read_staged(staged, ["station_id", "candidate", "votes"], [("candidate", "in", wanted)])
    scan = pq.read_table([str(p) for p in staged.paths()], columns=["station_id", "candidate", "votes"],
                         filters=[("candidate", "in", wanted)])
    assert kept.schema == scan.schema and kept.num_rows == scan.num_rows == (STATIONS // 10 if wanted == ["b"] else 0)
    assert kept.to_pylist() == scan.to_pylist()


def test_files_are_alike_in_size_so_a_change_seldom_lands_in_a_large_one():
    # A change lands in a file with odds by its size: the mean size of the file a change rewrites is
    # E[size^2] / E[size]. Cut wherever a hash falls below a threshold, sizes are exponential and it is twice the
    # mean; cut at the smallest key within half a file, it stays near the mean.
    table = _results(_stations(STATIONS), np.arange(STATIONS * PER_STATION))
    bounds = chunk_bounds(table, "station_id", WIDTH, 200 * 26)
    sizes = np.diff([*bounds, table.num_rows]).astype(float)
    assert len(sizes) > 200
    assert (sizes ** 2).sum() / sizes.sum() < 1.4 * sizes.mean()
    assert np.quantile(sizes, 0.1) > 0.3 * sizes.mean() and sizes.max() < 5 * sizes.mean()


@given(at=st.lists(st.integers(0, 5_000), min_size=1, max_size=200), half=st.integers(0, 1_000),
       seed=st.integers(0, 2**32 - 1))
def test_the_smallest_key_within_half_a_file_is_found_as_a_scan_finds_it(at, half, seed):
    positions = np.sort(np.array(at, dtype=np.int64))
    keys = np.random.default_rng(seed).random(len(positions))
    expected = [keys[i] == keys[np.abs(positions - positions[i]) <= half].min() for i in range(len(keys))]
    assert smallest_within(positions, keys, half).tolist() == expected


def test_a_small_table_is_one_file(tmp_path):
    table = _results(_stations(100), np.zeros(100 * PER_STATION, dtype=np.int64))
    staged = _write(table, tmp_path)
    assert staged.parts == () and staged.path.name == "station_results.parquet"
    assert chunk_bounds(table, "station_id", WIDTH, FILE_BYTES) == [0]


def test_a_table_of_one_station_is_one_file_however_large():
    table = pa.table({"station_id": pa.array(_stations(1) * 100_000).dictionary_encode(),
                      "votes": pa.array(np.arange(100_000))})
    assert table.num_rows * WIDTH.row > 2 * FILE_BYTES
    assert chunk_bounds(table, "station_id", WIDTH, FILE_BYTES) == [0]


def test_where_files_start_depends_on_the_stations_around_not_on_the_rest_of_the_table():
    # Stations of a region reporting four times the candidates per tally, then half the table gone: neither the
    # rows per station nor the table's size moves a cut more than a file away from where the table changed (a
    # figure of the whole table, as rows per station, would move them all).
    first = _stations(STATIONS)
    table = _results(first, np.arange(STATIONS * PER_STATION))
    bounds = chunk_bounds(table, "station_id", WIDTH, FILE_BYTES)
    file_rows = FILE_BYTES // 26 * PER_STATION
    wide = [s.replace("region:", "region:z") for s in _stations(STATIONS // 2)]  # sorts after every first one
    longer = pa.concat_tables([table, _results(wide, np.zeros(len(wide) * 12, np.int64), per_station=12)])
    longer = longer.cast(table.schema).combine_chunks()
    assert longer.num_rows > 2 * table.num_rows
    grown = chunk_bounds(longer, "station_id", WIDTH, FILE_BYTES)
    far = [b for b in bounds if b < table.num_rows - file_rows]
    assert len(far) > 20 and grown[:len(far)] == far
    half = table.slice(0, table.num_rows // 2)
    far = [b for b in bounds if b < half.num_rows - file_rows]
    assert chunk_bounds(half, "station_id", WIDTH, FILE_BYTES)[:len(far)] == far


def test_corrections_and_new_stations_rewrite_only_their_files(tmp_path):
    stations = _stations(STATIONS)
    votes = np.arange(STATIONS * PER_STATION)
    before = _write(_results(stations, votes), tmp_path / "before")

    # Three stations corrected, and 50 new stations of one region (their ids sort together).
    changed = votes.copy()
    for s in (10, 29_000, 55_500):
        changed[s * PER_STATION] += 1
    new = [f"ocd-division/country:xx/region:3/station:new{i:03d}" for i in range(50)]
    merged = sorted(stations + new)
    by_id = dict(zip(stations, changed.reshape(-1, PER_STATION), strict=True))
    after_votes = np.concatenate([by_id.get(s, np.array([7, 8, 9])) for s in merged])
    after = _write(_results(merged, after_votes), tmp_path / "after")

    old = {p.sha256 for p in before.parts}
    rewritten = [p for p in after.parts if p.sha256 not in old]
    assert 1 <= len(rewritten) <= 3 + 2, (len(rewritten), len(after.parts))
    assert sum(p.bytes for p in rewritten) < 0.25 * after.bytes
    assert after.sha256 != before.sha256


def _election_night(stations: int, reported: int, seed: int = 5) -> list:
    """Every station declared (3 reference partitions), ``reported`` of them with a tally (6 results partitions),
    each event with a random id as producers give them."""
    rnd = random.Random(seed)
    log = Log()

    def ids() -> dict:
        return {"event_id": str(uuid.UUID(int=rnd.getrandbits(128)))}

    log.election(**ids())
    for s in range(stations):
        log.division(station(s), "POLLING_STATION", COUNTRY, municipality_id=muni("a"), partition=s % 3, **ids())
    for s in range(reported):
        log.tally(station(s), muni("a"), {"candidate:a": s % 50, "candidate:b": 7}, partition=s % 6, **ids())
    return log.records


def test_new_events_rewrite_only_the_events_files_at_their_log_offsets(tmp_path):
    # Events are in log order, cut where the offset's hash says: tallies arriving on every results partition land
    # at the offsets after each partition's last, side by side, so one or two files change, not every file.
    stations, file_bytes = 4_000, 4_000  # about 160 events per file
    before = fold(_election_night(stations, 3_000))[t.EVENTS]
    after = fold(_election_night(stations, 3_060))[t.EVENTS]
    assert after.num_rows == before.num_rows + 60

    def write(table: pa.Table, folder: str):
        return write_table_files(t.EVENTS, table, tmp_path / folder, split_column=t.FILE_SPLIT_COLUMNS[t.EVENTS],
                                 width=t.FILE_WIDTHS[t.EVENTS], file_bytes=file_bytes)

    old, new = write(before, "before"), write(after, "after")
    assert len(new.parts) > 20
    kept = {p.sha256 for p in old.parts}
    rewritten = [i for i, p in enumerate(new.parts) if p.sha256 not in kept]
    assert 1 <= len(rewritten) <= 2 and rewritten == list(range(rewritten[0], rewritten[-1] + 1)), rewritten
    assert len(kept - {p.sha256 for p in new.parts}) <= 2  # the files they replace; every other file stays


def test_an_integer_column_is_cut_like_any_other_where_its_hash_says():
    # Offsets: one value per row, hashed in numpy; a null starts a file, as in a string column.
    offsets = pa.array([None if i in (10_000, 40_000) else i for i in range(60_000)], pa.int64())
    one_byte = t.FileWidth(run=0, row=1)
    bounds = chunk_bounds(pa.table({"offset": offsets}), "offset", one_byte, 5_000)
    sizes = np.diff([*bounds, len(offsets)])
    assert 2_500 < sizes.mean() < 10_000
    assert {10_000, 40_000} <= set(bounds)
    grown = pa.table({"offset": pa.concat_arrays([offsets, pa.array(range(60_000, 61_000), pa.int64())])})
    far = [b for b in bounds if b < len(offsets) - 5_000]  # rows appended move no cut a file before them
    assert chunk_bounds(grown, "offset", one_byte, 5_000)[:len(far)] == far


@pytest.fixture(scope="module")
def synth_tables(tmp_path_factory) -> dict[str, pa.Table]:
    """A generated election's tables (3,000 stations, 3 contests each, a few faults): real widths, random ids."""
    folder = tmp_path_factory.mktemp("synth")
    synthesize(folder, 3_000, seed=3, faults=0.02, contests=3)
    return fold(list(synth_records(folder, rejected=[])))


def test_a_wide_and_a_narrow_table_get_files_of_about_the_same_bytes_not_rows(synth_tables, tmp_path):
    # station_turnout: one wide row per tally; station_results: a few narrow rows per tally, 6x as many rows of
    # about the same bytes. Cut by rows, a turnout file would hold 5x a results file's bytes; by declared bytes,
    # their files are alike and hold very different numbers of rows.
    file_bytes, files = 12_000, {}
    for name in (t.STATION_TURNOUT, t.STATION_RESULTS):
        staged = write_table_files(name, synth_tables[name], tmp_path, split_column=t.FILE_SPLIT_COLUMNS[name],
                                   width=t.FILE_WIDTHS[name], file_bytes=file_bytes)
        assert len(staged.parts) > 20, name
        files[name] = (np.mean([_data_bytes(p.path) for p in staged.parts]), np.mean([p.rows for p in staged.parts]))
        assert 0.5 * file_bytes < files[name][0] < 2 * file_bytes, (name, files[name])
    (wide_bytes, wide_rows), (narrow_bytes, narrow_rows) = files[t.STATION_TURNOUT], files[t.STATION_RESULTS]
    assert 0.6 < wide_bytes / narrow_bytes < 1.6 and narrow_rows > 3 * wide_rows, files


def test_the_declared_widths_give_each_large_tables_parquet_bytes_within_a_factor_of_two(synth_tables, tmp_path):
    # A width gone stale (a new column, a longer id) makes that table's files miss the size the setting asks for.
    checked = []
    for name, table in synth_tables.items():
        col = table.column(t.FILE_SPLIT_COLUMNS[name])
        runs = 1 + int(np.count_nonzero(np.diff(pa.array(col).dictionary_encode().indices.to_numpy(
            zero_copy_only=False)))) if table.num_rows else 0
        declared = runs * t.FILE_WIDTHS[name].run + table.num_rows * t.FILE_WIDTHS[name].row
        if declared < 50_000:
            continue  # a small table's bytes are mostly its footer and dictionaries; it stays one file
        actual = _data_bytes(write_table(name, table, tmp_path).path)
        checked.append(name)
        assert 0.5 < actual / declared < 2, (name, actual, declared)
    assert {t.EVENTS, t.STATION_RESULTS, t.STATION_TURNOUT, t.CONTEST_RESULTS} <= set(checked), checked
