"""diff_tables counts rows added, changed and removed by key, ignoring trace columns, for every column type the
fold writes (plain and dictionary strings, numbers, nulls, lists), and stays vectorised on big tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.fold.tables import KEYS, SCHEMAS, STATION_RESULTS
from pipelines.release import diff as release_diff
from pipelines.release.diff import diff_releases, diff_tables

KEY = ["election_id", "station_id"]


def _turnout(rows: list[tuple[str, int | None, str, int]]) -> pa.Table:
    return pa.table({
        "election_id": ["e"] * len(rows),
        "station_id": [r[0] for r in rows],
        "ballots_cast": pa.array([r[1] for r in rows], pa.int64()),
        "event_id": [r[2] for r in rows],
        "offset": pa.array([r[3] for r in rows], pa.int64()),
    })


def test_first_release_is_all_added():
    new = _turnout([("s1", 1, "a", 0), ("s2", 2, "b", 1)])
    assert diff_tables(None, new, KEY) == {"added": 2, "changed": 0, "removed": 0}


def test_added_changed_removed_by_key():
    old = _turnout([("s1", 10, "a", 0), ("s2", 20, "b", 1), ("s3", 30, "c", 2)])
    new = _turnout([("s2", 21, "b2", 5), ("s3", 30, "c", 2), ("s4", 40, "d", 6)])
    assert diff_tables(old, new, KEY) == {"added": 1, "changed": 1, "removed": 1}


def test_a_key_that_changed_between_releases_counts_everything_removed_and_added():
    # The previous release was folded before the key gained a column (e.g. contest_id): rows cannot be matched.
    old = _turnout([("s1", 10, "a", 0), ("s2", 20, "b", 1)])
    new = _turnout([("s1", 10, "a", 0), ("s2", 20, "b", 1), ("s3", 5, "c", 2)]).append_column(
        "contest_id", pa.array(["c1", "c1", "c1"]))
    assert diff_tables(old, new, [*KEY, "contest_id"]) == {"added": 3, "changed": 0, "removed": 2}


def test_trace_columns_alone_do_not_make_a_change():
    old = _turnout([("s1", 10, "a", 0)])
    new = _turnout([("s1", 10, "a-reingested", 99)])
    assert diff_tables(old, new, KEY) == {"added": 0, "changed": 0, "removed": 0}


def test_null_equals_null_and_null_differs_from_value():
    old = _turnout([("s1", None, "a", 0), ("s2", None, "b", 1), ("s3", 3, "c", 2)])
    new = _turnout([("s1", None, "a", 0), ("s2", 2, "b", 1), ("s3", None, "c", 2)])
    assert diff_tables(old, new, KEY)["changed"] == 2


def test_row_order_does_not_matter():
    old = _turnout([("s1", 1, "a", 0), ("s2", 2, "b", 1), ("s3", 3, "c", 2)])
    new = _turnout([("s3", 3, "c", 2), ("s1", 1, "a", 0), ("s2", 5, "b", 1)])
    assert diff_tables(old, new, KEY) == {"added": 0, "changed": 1, "removed": 0}


def test_dictionary_columns_with_different_dictionaries():
    schema = SCHEMAS[STATION_RESULTS]
    old = pa.table({
        "election_id": ["e", "e"], "contest_id": ["e", "e"], "station_id": ["s1", "s2"],
        "municipality_id": ["m", "m"], "candidate_id": ["c1", "c1"], "selection_kind": ["CANDIDATE"] * 2,
        "party_id": ["p1", "p2"], "votes": [5, 6],
        "event_id": ["x", "y"], "topic": ["t", "t"], "partition": [0, 0], "offset": [0, 1],
    }).cast(schema)
    # Rows in another order, so every dictionary is built in another order too.
    new = pa.table({
        "election_id": ["e", "e", "e"], "contest_id": ["e", "e", "e"], "station_id": ["s3", "s2", "s1"],
        "municipality_id": ["m", "m", "m"], "candidate_id": ["c1", "c1", "c1"],
        "selection_kind": ["CANDIDATE"] * 3, "party_id": [None, "p1", "p1"], "votes": [1, 6, 5],
        "event_id": ["z", "y2", "x"], "topic": ["t", "t", "t"], "partition": [0, 0, 0], "offset": [2, 3, 0],
    }).cast(schema)
    assert diff_tables(old, new, list(KEYS[STATION_RESULTS])) == {"added": 1, "changed": 1, "removed": 0}


def test_list_columns_compare_by_content():
    def table(urls: list[list[str] | None]) -> pa.Table:
        return pa.table({"incident_id": [f"i{n}" for n in range(len(urls))],
                         "evidence_urls": pa.array(urls, pa.list_(pa.string()))})

    old = table([["a", "b"], [], [""], None, ["x"]])
    new = table([["a", "b"], [""], [""], None, ["x", "y"]])
    assert diff_tables(old, new, ["incident_id"])["changed"] == 2


def test_hash_join_fallback_gives_the_same_answer(monkeypatch):
    old = _turnout([("s1", 10, "a", 0), ("s2", 20, "b", 1), ("s3", 30, "c", 2)])
    new = _turnout([("s2", 21, "b2", 5), ("s3", 30, "c", 2), ("s4", 40, "d", 6)])
    monkeypatch.setattr(release_diff, "_PACKED_LIMIT", 0)
    assert diff_tables(old, new, KEY) == {"added": 1, "changed": 1, "removed": 1}


def test_diff_releases_counts_a_new_table_as_added():
    old = {"t": _turnout([("s1", 1, "a", 0)])}
    new = {"t": _turnout([("s1", 2, "a", 0)]), "u": _turnout([("s1", 1, "a", 0)])}
    assert diff_releases(old, new, {"t": KEY, "u": KEY}) == {
        "t": {"added": 0, "changed": 1, "removed": 0}, "u": {"added": 1, "changed": 0, "removed": 0}}


def test_two_million_rows_diff():
    # A sixth of the 12.5M-row station_results (its speed is bench_publish's to measure, not a test's).
    n = 2_000_000
    rng = np.random.default_rng(7)
    stations = pa.array([f"polling_station:{i}" for i in range(n // 10)])
    codes = pa.array(np.repeat(np.arange(n // 10, dtype=np.int32), 10))
    candidates = pa.array(np.tile(np.arange(10, dtype=np.int32), n // 10))
    votes = rng.integers(0, 500, n)

    def table(v: np.ndarray, rows: int) -> pa.Table:
        return pa.table({
            "station_id": pa.DictionaryArray.from_arrays(codes[:rows], stations),
            "candidate_id": candidates[:rows], "votes": v[:rows],
        })

    changed_votes = votes.copy()
    changed_votes[::1000] += 1
    result = diff_tables(table(votes, n), table(changed_votes, n - 10), ["station_id", "candidate_id"])
    assert result == {"added": 0, "changed": n // 1000, "removed": 10}


@pytest.mark.parametrize("table", list(KEYS))
def test_every_declared_table_diffs_against_itself(table):
    empty = SCHEMAS[table].empty_table()
    assert diff_tables(empty, empty, list(KEYS[table])) == {"added": 0, "changed": 0, "removed": 0}


def test_parquet_file_sources_give_the_same_counts_without_reading_trace_columns(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    old = _turnout([("s1", 10, "a", 0), ("s2", 20, "b", 1), ("s3", 30, "c", 2)])
    new = _turnout([("s2", 21, "b2", 5), ("s3", 30, "c", 2), ("s4", 40, "d", 6)])
    pq.write_table(old, tmp_path / "old.parquet")
    pq.write_table(new, tmp_path / "new.parquet")
    read: list[str] = []
    real = release_diff._column

    def spy(src, name):
        read.append(name)
        return real(src, name)

    monkeypatch.setattr(release_diff, "_column", spy)
    files = pq.ParquetFile(tmp_path / "old.parquet"), pq.ParquetFile(tmp_path / "new.parquet")
    assert diff_tables(*files, KEY) == diff_tables(old, new, KEY) == {"added": 1, "changed": 1, "removed": 1}
    assert "event_id" not in read and "offset" not in read and "ballots_cast" in read


_TEXT = st.sampled_from(["a", "b", "ä", "", None])


@settings(max_examples=60, deadline=None)
@given(old=st.dictionaries(st.integers(0, 30), st.tuples(_TEXT, st.integers(0, 3)), max_size=25),
       new=st.dictionaries(st.integers(0, 30), st.tuples(_TEXT, st.integers(0, 3)), max_size=25),
       cuts=st.tuples(st.integers(1, 3), st.integers(1, 3)))
def test_text_read_as_dictionaries_from_several_files_counts_as_the_tables_do(tmp_path_factory, old, new, cuts):
    # Each file has dictionaries of its own: the codes must still be equal exactly when the text is.
    import pyarrow.parquet as pq

    from pipelines.release.parquet import ParquetParts

    folder = tmp_path_factory.mktemp("parts")

    def table(rows: dict[int, tuple[str | None, int]]) -> pa.Table:
        keys = sorted(rows)
        return pa.table({"election_id": ["e"] * len(keys), "station_id": [f"s{k}" for k in keys],
                         "label": pa.array([rows[k][0] for k in keys], pa.string()),
                         "ballots_cast": pa.array([rows[k][1] for k in keys], pa.int64())})

    def parts(tab: pa.Table, files: int, side: str) -> ParquetParts:
        paths = []
        for i in range(files):
            step = -(-tab.num_rows // files) or 1
            pq.write_table(tab.slice(i * step, step), folder / f"{side}-{i}.parquet")
            paths.append(folder / f"{side}-{i}.parquet")
        return ParquetParts(paths, text_as_dictionary=True)

    expected = diff_tables(table(old), table(new), KEY)
    assert diff_tables(parts(table(old), cuts[0], "old"), parts(table(new), cuts[1], "new"), KEY) == expected
