"""The incremental gate (``pipelines.gate.incremental``) gives the full gate's verdicts on random damage.

Each example stages a good election as many small files, gates it, then applies a random sequence of the gate's
mutations (one per rule, ``tests.support.gate_mutations``), re-stages and gates again from the kept outcomes,
and so on: at every step each check's success, failing rows and rows checked must equal ``run_gate``'s on the
same tables, and so must the sample whenever it holds every failing row.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.fold import fold
from pipelines.fold import tables as t
from pipelines.gate import incremental as incremental_gate
from pipelines.gate import names as n
from pipelines.gate import new_gx_context, run_gate
from pipelines.gate.checks import context_needs
from pipelines.gate.incremental import (
    AlignedTable,
    GateRun,
    TableFiles,
    aligned_digest,
    files_digest,
    gate_tables,
    groups_stay_in_files,
    key_ordered,
    key_range,
)
from pipelines.gate.report import MAX_SAMPLE_ROWS
from pipelines.release.parquet import write_table_files
from tests.support.factories import small_election
from tests.support.gate_mutations import MUTATIONS, Tables, append_row, edit

KEY_RANGE_EXAMPLES = 200

EXAMPLES = int(os.environ.get("INCREMENTAL_GATE_EXAMPLES", "25"))
FILE_BYTES = 64  # tiny files (a row or two of most tables), so the small election's tables are cut into several


@pytest.fixture(scope="module")
def good() -> Tables:
    return fold(small_election().records)


@pytest.fixture(scope="module")
def gx():
    return new_gx_context()


def stage(tables: Tables, folder: Path, file_bytes: dict[str, int] | None = None) -> list[TableFiles]:
    folder.mkdir(parents=True)
    out = []
    for name in t.TABLE_NAMES:
        staged = write_table_files(name, tables[name], folder, split_column=t.FILE_SPLIT_COLUMNS[name],
                                   width=t.FILE_WIDTHS[name], file_bytes=(file_bytes or {}).get(name, FILE_BYTES))
        paths = staged.paths()
        out.append(TableFiles(name, staged.sha256, tuple(p.sha256 for p in staged.parts) or (staged.sha256,),
                              lambda i, cols, paths=paths: pq.read_table(paths[i], columns=cols)))
    return out


def incremental(gx, tables: Tables, folder: Path, kept: dict | None, file_bytes: dict[str, int] | None = None
                ) -> GateRun:
    def context(name: str, skip: frozenset[str]) -> dict[str, pa.Table]:
        return {other: tables[other].select(list(cols)) for other, cols in context_needs(name).items()
                if other not in skip}

    return gate_tables(gx, stage(tables, folder, file_bytes), context, 0.01, kept)


def verdicts(checks) -> dict:
    return {(c.table, c.name): (c.success, c.failing_rows, c.checked_rows) for c in checks}


def assert_same(run: GateRun, tables: Tables) -> None:
    full = run_gate(tables, tolerance=0.01)
    assert verdicts(run.results) == verdicts(full.checks)
    mine = {(c.table, c.name): c.json_sample() for c in run.results}
    for c in full.checks:
        if c.failing_rows <= MAX_SAMPLE_ROWS:  # all failing rows are in both samples (order may differ)
            key = lambda row: repr(sorted(row.items()))  # noqa: E731
            assert sorted(mine[(c.table, c.name)], key=key) == sorted(c.json_sample(), key=key), c.qualified_name


def test_good_tables_are_cut_into_files_whose_groups_stay_in_them(good: Tables, gx, tmp_path: Path) -> None:
    run = incremental(gx, good, tmp_path / "a", None)
    assert_same(run, good)
    split = {name for name, entry in run.cache["tables"].items() if len(entry["files"]) > 1}
    assert {t.STATION_RESULTS, t.STATION_TURNOUT, t.CONTEST_RESULTS} <= split  # checked per file, not whole
    assert set(run.seconds) == set(good) and all(s > 0 for s in run.seconds.values())  # each table timed


def test_unchanged_files_are_not_checked_again(good: Tables, gx, tmp_path: Path) -> None:
    first = incremental(gx, good, tmp_path / "a", None)
    again = incremental(gx, good, tmp_path / "b", first.cache)
    assert again.checked_files == 0 and again.reused_files == first.checked_files
    assert verdicts(again.results) == verdicts(first.results)
    row = next(i for i, r in enumerate(good[t.OBSERVATIONS].to_pylist()) if r["count"] is not None)
    damaged = edit(good, t.OBSERVATIONS, row, count=-5)
    third = incremental(gx, damaged, tmp_path / "c", first.cache)
    assert 0 < third.checked_files < first.checked_files / 4
    assert_same(third, damaged)


def test_a_changed_context_table_rechecks_the_tables_that_read_it(good: Tables, gx, tmp_path: Path) -> None:
    first = incremental(gx, good, tmp_path / "a", None)
    candidates = good[t.CANDIDATES].to_pylist()
    ghost = next(i for i, r in enumerate(candidates) if r["candidate_id"] == "candidate:aysel")
    damaged = edit(good, t.CANDIDATES, ghost, candidate_id="candidate:renamed")  # results now name a ghost
    run = incremental(gx, damaged, tmp_path / "b", first.cache)
    assert not verdicts(run.results)[(t.STATION_RESULTS, n.CANDIDATE_RESOLVES)][0]
    assert_same(run, damaged)


def test_a_damaged_cache_means_checking_again_not_a_traceback(good: Tables, gx, tmp_path: Path) -> None:
    first = incremental(gx, good, tmp_path / "a", None)
    damaged = json.loads(json.dumps(first.cache))
    results = damaged["tables"][t.STATION_RESULTS]["files"]
    del results[0]["checks"]  # one file's outcome cut short
    results[1]["rows"] = "many"  # another's of the wrong type
    results[2]["range"] = [["only one end"]]
    damaged["tables"][t.EVENTS] = "not a table entry"
    run = incremental(gx, good, tmp_path / "b", damaged)
    assert run.checked_files == 3 + len(first.cache["tables"][t.EVENTS]["files"])
    assert_same(run, good)
    for cache in (None, {}, {"format": "other"}, {"format": first.cache["format"], "tables": []}):
        assert incremental(gx, good, tmp_path / f"c{len(str(cache))}", cache).reused_files == 0


def test_a_table_in_log_order_is_gated_per_file_while_no_key_is_in_two_rows(good: Tables, gx, tmp_path: Path
                                                                           ) -> None:
    # events is in log order: its files' key ranges overlap, so only its keys' uniqueness keeps it per file.
    assert not key_ordered(t.EVENTS) and key_ordered(t.STATION_RESULTS)
    first = incremental(gx, good, tmp_path / "a", None)
    files = first.cache["tables"][t.EVENTS]["files"]
    assert len(files) > 1 and all(f["range"] is None for f in files)
    copied = append_row(good, t.EVENTS, 0)  # the first event once more, in the last file: a key in two files
    run = incremental(gx, copied, tmp_path / "b", first.cache)
    assert t.EVENTS not in run.cache["tables"]  # gated whole, nothing kept
    assert verdicts(run.results)[(t.EVENTS, n.KEY_UNIQUE)] == (False, 2, good[t.EVENTS].num_rows + 1)
    assert_same(run, copied)


def test_key_range_and_locality() -> None:
    table = pa.table({"a": ["x", "x", "y"], "b": ["2", "3", "1"]})
    assert key_range(table, ("a", "b")) == [["x", "2"], ["y", "1"]]
    assert key_range(table, ("b",)) is None  # not sorted
    assert key_range(pa.table({"a": ["x", None]}), ("a",)) is None  # a null key cannot be located
    assert groups_stay_in_files([[["a"], ["b"]], [], [["c"], ["d"]]])
    assert not groups_stay_in_files([[["a"], ["c"]], [["c"], ["d"]]])  # a group in two files
    assert not groups_stay_in_files([[["c"], ["d"]], [["a"], ["b"]]])  # out of order
    assert not groups_stay_in_files([[["a"], ["b"]], None])
    assert not groups_stay_in_files([[["a"], ["b"]], [[1], [2]]])  # keys that cannot be compared


TEXT = st.sampled_from(["", "a", "ab", "b", "B", "é", "a\x00", "10", "9"])
ROWS = st.lists(st.tuples(TEXT, st.one_of(st.none(), TEXT), st.integers(-2, 2)), min_size=1, max_size=12)


@settings(max_examples=KEY_RANGE_EXAMPLES, deadline=None)
@given(rows=ROWS, sort=st.booleans(), chunks=st.integers(1, 3), shuffled=st.randoms(use_true_random=False))
def test_key_range_of_dictionary_columns_is_that_of_their_values(rows, sort, chunks, shuffled) -> None:
    """Files are read with text as dictionaries, whose order is not the values' (nor the same in every chunk):
    the range and the sortedness found through the values' ranks are those of the plain values."""
    rows = sorted(rows, key=lambda r: (r[0], r[1] is None, r[1] or "", r[2])) if sort else rows
    plain = pa.table({"a": [r[0] for r in rows], "b": [r[1] for r in rows], "n": [r[2] for r in rows]})

    def encoded(values: list) -> pa.ChunkedArray:
        cut = sorted({0, len(values), *(shuffled.randrange(len(values) + 1) for _ in range(chunks - 1))})
        parts = []
        for lo, hi in zip(cut, cut[1:], strict=False):
            distinct = sorted({v for v in values if v is not None})
            shuffled.shuffle(distinct)  # a dictionary in no particular order, one per chunk
            at = {v: i for i, v in enumerate(distinct)}
            codes = [at.get(v) for v in values[lo:hi]]
            if distinct:  # a value twice in the dictionary, both entries used: equal values, different codes
                distinct.append(distinct[0])
                codes = [len(distinct) - 1 if c == 0 and i % 2 else c for i, c in enumerate(codes)]
            parts.append(pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(distinct, pa.string())))
        return pa.chunked_array(parts, pa.dictionary(pa.int32(), pa.string()))

    as_dictionaries = pa.table({"a": encoded(plain["a"].to_pylist()), "b": encoded(plain["b"].to_pylist()),
                                "n": plain["n"]})
    for columns in (("a",), ("a", "b"), ("a", "n"), ("b", "a", "n")):
        assert key_range(as_dictionaries, columns) == key_range(plain, columns), columns


# Besides each rule's own mutation: a copy of some row of a large table appended at its end, i.e. a key (or a
# station's tally) in two files, out of key order.
DUPLICATES = [("copy", name) for name in (t.STATION_RESULTS, t.STATION_TURNOUT, t.CONTEST_RESULTS, t.EVENTS)]
DAMAGE = st.one_of(st.sampled_from(sorted(MUTATIONS)), st.tuples(st.sampled_from(DUPLICATES), st.integers(0, 10**6)))


def damage(tables: Tables, what) -> Tables:
    if what in MUTATIONS:
        return MUTATIONS[what](tables)
    (_, name), row = what
    return append_row(tables, name, row % tables[name].num_rows)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.lists(DAMAGE, min_size=0, max_size=3), min_size=1, max_size=3),
       batch_rows=st.sampled_from([1, 4, incremental_gate.CHECK_BATCH_ROWS]))
def test_incremental_and_full_gates_agree_on_random_damage(good: Tables, gx, tmp_path_factory, monkeypatch, steps,
                                                           batch_rows) -> None:
    # Files are checked in batches of about batch_rows rows: a file a batch, a few, or all in one.
    monkeypatch.setattr(incremental_gate, "CHECK_BATCH_ROWS", batch_rows)
    root = tmp_path_factory.mktemp("gate")
    kept = incremental(gx, good, root / "0", None).cache
    tables, applied = good, set()
    for step, mutations in enumerate(steps, start=1):
        # A rule's mutation damages once: drawn again, the row it looks for is already changed.
        for what in mutations:
            if what not in applied:
                tables = damage(tables, what)
                applied.add(what if what in MUTATIONS else None)
        run = incremental(gx, tables, root / str(step), kept)
        assert_same(run, tables)
        kept = run.cache


def test_a_changed_tally_rechecks_only_the_files_of_the_other_table_around_it(good: Tables, gx, tmp_path: Path
                                                                                ) -> None:
    first = incremental(gx, good, tmp_path / "a", None)
    turnout = good[t.STATION_TURNOUT].to_pylist()
    row = next(i for i, r in enumerate(turnout) if r["valid_ballots"] is not None)
    damaged = edit(good, t.STATION_TURNOUT, row, valid_ballots=turnout[row]["valid_ballots"] + 1)
    run = incremental(gx, damaged, tmp_path / "b", first.cache)
    results_files = len(first.cache["tables"][t.STATION_RESULTS]["files"])
    # The turnout file holding the tally, and the station_results files whose tallies reach it: not all of them.
    assert 2 <= run.checked_files <= 3 < results_files
    assert not verdicts(run.results)[(t.STATION_RESULTS, n.VOTES_SUM_EQ_VALID)][0]
    assert_same(run, damaged)


def test_aligned_digest_names_the_overlapping_context_files() -> None:
    ctx = AlignedTable("station_turnout", "whole-sha", ("f1", "f2", "f3"),
                       [[["e", "c", "s1"], ["e", "c", "s3"]], [], [["e", "c", "s4"], ["e", "c", "s6"]]])
    inside, touching = [["e", "c", "s2"], ["e", "c", "s2"]], [["e", "c", "s3"], ["e", "c", "s4"]]
    assert aligned_digest(inside, [ctx]) == aligned_digest(inside, [replace(ctx, file_shas=("f1", "x", "y"))])
    assert aligned_digest(inside, [ctx]) != aligned_digest(inside, [replace(ctx, file_shas=("z", "f2", "f3"))])
    assert aligned_digest(touching, [ctx]) != aligned_digest(touching, [replace(ctx, file_shas=("f1", "f2", "z"))])
    unsorted = replace(ctx, ranges=[ctx.ranges[2], [], ctx.ranges[0]])  # not located: the whole table counts
    assert aligned_digest(inside, [unsorted]) != aligned_digest(inside, [replace(unsorted, sha256="other")])
    assert aligned_digest([], [ctx]) == aligned_digest([], [replace(ctx, file_shas=("a", "b", "c"))])


def test_a_changed_tally_rechecks_the_results_file_holding_it_not_those_beside_it(good: Tables, gx,
                                                                                  tmp_path: Path) -> None:
    one_turnout_file = {t.STATION_TURNOUT: 10**9}  # every results file overlaps it, as at a million stations
    first = incremental(gx, good, tmp_path / "a", None, one_turnout_file)
    turnout = good[t.STATION_TURNOUT].to_pylist()
    row = next(i for i, r in enumerate(turnout) if r["valid_ballots"] is not None)
    damaged = edit(good, t.STATION_TURNOUT, row, valid_ballots=turnout[row]["valid_ballots"] + 1)
    run = incremental(gx, damaged, tmp_path / "b", first.cache, one_turnout_file)
    assert len(first.cache["tables"][t.STATION_RESULTS]["files"]) >= 4
    assert run.checked_files == 2  # the turnout file, and the one results file holding the tally
    assert not verdicts(run.results)[(t.STATION_RESULTS, n.VOTES_SUM_EQ_VALID)][0]
    assert_same(run, damaged)


def _row_aligned(rows: pa.Table, ranges: list, shas: tuple[str, ...], reads: list[int] | None = None
                 ) -> AlignedTable:
    """station_turnout as ``rows`` cut into files of two rows each, ``reads`` told each file read."""
    def read(i: int, columns: list[str] | None) -> pa.Table:
        if reads is not None:
            reads.append(i)
        part = rows.slice(2 * i, 2)
        return part.select(columns) if columns is not None else part

    return AlignedTable(t.STATION_TURNOUT, "whole-sha", shas, ranges, read, tuple(rows.column_names))


def test_aligned_digest_of_a_row_aligned_table_covers_its_rows_in_the_range() -> None:
    rows = pa.table({"election_id": ["e"] * 4, "contest_id": ["c"] * 4, "station_id": ["s1", "s2", "s3", "s4"],
                     "valid_ballots": [10, 20, 30, 40]})
    ranges = [[["e", "c", "s1"], ["e", "c", "s2"]], [["e", "c", "s3"], ["e", "c", "s4"]]]
    ctx = _row_aligned(rows, ranges, ("f1", "f2"))

    def with_ballots(ballots: list[int]) -> AlignedTable:
        return _row_aligned(rows.set_column(3, "valid_ballots", pa.array(ballots)), ranges, ("g1", "g2"))

    own = [["e", "c", "s2"], ["e", "c", "s3"]]
    assert aligned_digest(own, [ctx]) == aligned_digest(own, [with_ballots([11, 20, 30, 41])])  # outside: same
    assert aligned_digest(own, [ctx]) != aligned_digest(own, [with_ballots([10, 20, 31, 40])])  # inside: not
    assert aligned_digest([["e", "c", "s5"], ["e", "c", "s6"]], [ctx]) == aligned_digest([], [ctx])  # none in it
    assert ctx.rows_in([["e", "c", "s0"], ["e", "c", "s9"]]).equals(rows)
    assert _row_aligned(rows, [ranges[1], ranges[0]], ("f1", "f2")).rows_in(own) is None  # not located


def test_rows_in_a_range_read_only_the_files_overlapping_it_each_once() -> None:
    rows = pa.table({"election_id": ["e"] * 6, "contest_id": ["c"] * 6,
                     "station_id": ["s1", "s2", "s3", "s4", "s5", "s6"], "valid_ballots": [1, 2, 3, 4, 5, 6]})
    ranges = [[["e", "c", f"s{2 * i + 1}"], ["e", "c", f"s{2 * i + 2}"]] for i in range(3)]
    reads: list[int] = []
    ctx = _row_aligned(rows, ranges, ("f1", "f2", "f3"), reads)
    assert ctx.rows_in([["e", "c", "s4"], ["e", "c", "s5"]]).equals(rows.slice(3, 2))
    assert ctx.rows_in([["e", "c", "s5"], ["e", "c", "s6"]]).equals(rows.slice(4, 2))
    assert sorted(reads) == [1, 2]
    # The same rows give the same digest whichever files they were read with.
    whole = _row_aligned(rows, [[["e", "c", "s1"], ["e", "c", "s6"]]], ("w",))
    whole = replace(whole, read=lambda i, columns: rows.select(columns))
    assert aligned_digest([["e", "c", "s4"], ["e", "c", "s5"]], [ctx]) \
        == aligned_digest([["e", "c", "s4"], ["e", "c", "s5"]], [whole])


def test_a_kept_results_outcome_stands_without_reading_turnout_files_that_did_not_change() -> None:
    rows = pa.table({"election_id": ["e"] * 4, "contest_id": ["c"] * 4, "station_id": ["s1", "s2", "s3", "s4"],
                     "valid_ballots": [10, 20, 30, 40]})
    ranges = [[["e", "c", "s1"], ["e", "c", "s2"]], [["e", "c", "s3"], ["e", "c", "s4"]]]
    own = [["e", "c", "s1"], ["e", "c", "s2"]]
    entry = {"range": own, "aligned": aligned_digest(own, [_row_aligned(rows, ranges, ("f1", "f2"))]),
             "aligned_files": files_digest(own, [_row_aligned(rows, ranges, ("f1", "f2"))])}
    reads: list[int] = []
    assert incremental_gate._still_aligned(entry, [_row_aligned(rows, ranges, ("f1", "g2"), reads)]) == entry
    assert reads == []  # its file is the same: nothing read
    # Its file changed but not its rows in the range: it stands, read once, and next time needs no read.
    moved = incremental_gate._still_aligned({**entry, "aligned_files": "old"},
                                            [_row_aligned(rows, ranges, ("f1", "g2"), reads)])
    assert moved is not None and moved["aligned_files"] == entry["aligned_files"] and reads == [0]
    changed = rows.set_column(3, "valid_ballots", pa.array([11, 20, 30, 40]))
    assert incremental_gate._still_aligned(entry, [_row_aligned(changed, ranges, ("h1", "f2"))]) is None
