"""Large tables as several content-addressed files: where files start depends only on the rows around it, so a
change to a few stations rewrites only their files, new events only the events files at their log offsets, and
the files read back as the table."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.fold import fold
from pipelines.fold import tables as t
from pipelines.release.parquet import chunk_bounds, read_staged, tree_sha256, write_table_files
from tests.support.factories import COUNTRY, Log, muni, station

STATIONS, PER_STATION, FILE_ROWS = 60_000, 3, 5_000


def _results(stations: list[str], votes: np.ndarray) -> pa.Table:
    ids = pa.array(np.repeat(stations, PER_STATION)).dictionary_encode()
    return pa.table({"station_id": ids, "candidate": pa.array(np.tile(["a", "b", "c"], len(stations))),
                     "votes": pa.array(votes)})


def _stations(n: int) -> list[str]:
    """Station ids in key order, as the fold sorts them."""
    return sorted(f"ocd-division/country:xx/region:{i % 7}/station:{i:06d}" for i in range(n))


def _write(table: pa.Table, directory: Path):
    return write_table_files("station_results", table, directory, split_column="station_id", file_rows=FILE_ROWS)


def test_files_start_only_where_the_station_changes_and_hold_about_file_rows(tmp_path):
    table = _results(_stations(STATIONS), np.arange(STATIONS * PER_STATION))
    bounds = chunk_bounds(table, "station_id", FILE_ROWS)
    assert bounds[0] == 0 and all(b % PER_STATION == 0 for b in bounds)
    sizes = np.diff([*bounds, table.num_rows])
    assert 0.5 * FILE_ROWS < sizes.mean() < 2 * FILE_ROWS
    staged = _write(table, tmp_path)
    assert len(staged.parts) == len(bounds) > 1
    assert staged.rows == table.num_rows == sum(p.rows for p in staged.parts)
    assert staged.sha256 == tree_sha256([p.sha256 for p in staged.parts])
    back = read_staged(staged)
    assert back.column("votes").to_pylist() == table.column("votes").to_pylist()
    assert back.column("station_id").to_pylist() == table.column("station_id").to_pylist()
    assert [pq.read_metadata(p.path).num_rows for p in staged.parts] == [p.rows for p in staged.parts]


def test_a_small_table_is_one_file(tmp_path):
    table = _results(_stations(100), np.zeros(100 * PER_STATION, dtype=np.int64))
    staged = _write(table, tmp_path)
    assert staged.parts == () and staged.path.name == "station_results.parquet"
    assert chunk_bounds(table, "station_id", FILE_ROWS) == [0]


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
    stations, rows = 4_000, 150
    before = fold(_election_night(stations, 3_000))[t.EVENTS]
    after = fold(_election_night(stations, 3_060))[t.EVENTS]
    assert after.num_rows == before.num_rows + 60

    def write(table: pa.Table, folder: str):
        return write_table_files(t.EVENTS, table, tmp_path / folder, split_column=t.FILE_SPLIT_COLUMNS[t.EVENTS],
                                 file_rows=rows)

    old, new = write(before, "before"), write(after, "after")
    assert len(new.parts) > 20
    kept = {p.sha256 for p in old.parts}
    rewritten = [i for i, p in enumerate(new.parts) if p.sha256 not in kept]
    assert 1 <= len(rewritten) <= 2 and rewritten == list(range(rewritten[0], rewritten[-1] + 1)), rewritten
    assert len(kept - {p.sha256 for p in new.parts}) <= 2  # the files they replace; every other file stays


def test_an_integer_column_is_cut_like_any_other_where_its_hash_says():
    # Offsets: one value per row, hashed in numpy; a null starts a file, as in a string column.
    offsets = pa.array([None if i in (10_000, 40_000) else i for i in range(60_000)], pa.int64())
    bounds = chunk_bounds(pa.table({"offset": offsets}), "offset", FILE_ROWS)
    sizes = np.diff([*bounds, len(offsets)])
    assert 0.5 * FILE_ROWS < sizes.mean() < 2 * FILE_ROWS
    assert {10_000, 40_000} <= set(bounds)
    grown = pa.table({"offset": pa.concat_arrays([offsets, pa.array(range(60_000, 61_000), pa.int64())])})
    assert chunk_bounds(grown, "offset", FILE_ROWS)[:len(bounds)] == bounds  # rows appended move no earlier cut
