"""Splicing a scope's rows into a table's files (``pipelines.release.splice``) writes, byte for byte, the files a
write of the whole new table writes, and reads only the files around the scope's rows.

Hypothesis draws tables of many small files (station_results with its dictionary columns, station_turnout, and
events in log order), a scope (contests, or log positions), and new rows for it: changed, added and removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.fold import tables as t
from pipelines.fold.build import dict_column, sorted_dictionary
from pipelines.release import splice
from pipelines.release.parquet import StagedFile, write_file, write_table_files

FILE_BYTES = 2_000  # a few dozen rows a file


def _plain(table: pa.Table) -> pa.Table:
    fields = [pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def _table(name: str, rows: list[dict]) -> pa.Table:
    schema = t.SCHEMAS[name]
    plain = _plain(schema.empty_table())
    table = pa.Table.from_pylist(rows, schema=plain.schema) if rows else plain
    table = table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in t.ORDER[name]]))
    cols = []
    for f in schema:  # dictionaries sorted, as the fold makes them
        col = table[f.name].combine_chunks()
        cols.append(dict_column(*sorted_dictionary(col)) if pa.types.is_dictionary(f.type) else col)
    return pa.Table.from_arrays(cols, schema=schema)


def _write(name: str, table: pa.Table, directory: Path) -> StagedFile:
    return write_table_files(name, table, directory, split_column=t.FILE_SPLIT_COLUMNS[name],
                             width=t.FILE_WIDTHS[name], file_bytes=FILE_BYTES)


def _station_rows(contests: range, stations: int, seed: int) -> list[dict]:
    return [{"election_id": "e", "contest_id": f"c{c:03d}", "station_id": f"s{s:03d}", "municipality_id": f"m{c}",
             "candidate_id": f"k{k}", "selection_kind": "CANDIDATE", "party_id": None if k % 3 else "p",
             "votes": (seed * 7 + c * 13 + s * 3 + k) % 101, "event_id": f"ev-{c}-{s}-{seed}", "topic": "results",
             "partition": 0, "offset": c * 1000 + s}
            for c in contests for s in range(stations) if (c + s + seed) % 5 for k in range(1 + (c + s) % 3)]


def _event_rows(positions: range, seed: int) -> list[dict]:
    return [{"event_id": f"ev{o}-{p}", "record_type": "StationTally", "key": f"k{o % 17}", "topic": "results",
             "partition": p, "offset": o, "deliveries": 1 + (o + seed) % 2}
            for o in positions for p in range(2) if (o + p) % 3]


def check(name: str, before: pa.Table, after: pa.Table, prefixes: set, inside, tmp: Path) -> tuple[int, int]:
    """Splice ``after``'s scope rows into ``before``'s files; compare with a whole write of ``after``.
    Returns (files read and written again rather than linked, files in all)."""
    old = _write(name, before, tmp / "old")
    paths = list(old.paths())
    keys = splice.first_keys(name, paths)
    old_files = [splice.OldFile(p, f.sha256, f.rows, k)
                 for p, f, k in zip(paths, old.parts or (old,), keys, strict=True)]
    scoped = after.filter(inside(after))
    linked: dict[Path, bool] = {}  # by path, whether the file there was last linked (a refused span's are undone)

    def link(table_name: str, f: splice.OldFile, path: Path) -> StagedFile:
        linked[path] = True
        shutil.copyfile(f.path, path)
        return StagedFile(table_name, path, f.rows, path.stat().st_size, f.sha256)

    def write(table_name: str, table: pa.Table, path: Path) -> StagedFile:
        linked[path] = False
        return write_file(table_name, table, path)

    spliced_one = splice.Splice(name, old_files, scoped, prefixes, inside)
    spliced = splice.splice_table(spliced_one, tmp / "new", split_column=t.FILE_SPLIT_COLUMNS[name],
                                  width=t.FILE_WIDTHS[name], file_bytes=FILE_BYTES, write=write, link=link)
    whole = _write(name, after, tmp / "whole")
    assert [p.sha256 for p in spliced.parts or (spliced,)] == [p.sha256 for p in whole.parts or (whole,)]
    assert spliced.sha256 == whole.sha256 and spliced.rows == whole.rows
    # The old rows of the scope, each once and in order, are what the splice read of them (the changes' count).
    replaced = splice.replaced_rows(spliced_one)
    written = pq.read_table([str(p) for p in old.paths()])
    expected = written.filter(inside(written))
    assert (replaced.to_pylist() if replaced is not None else []) == expected.to_pylist()
    return len(old_files) - sum(linked.get(p.path, False) for p in spliced.parts or (spliced,)), len(old_files)


def _contests_inside(scope: list[str]):
    return lambda table: pc.is_in(_plain(table.select(["contest_id"]))["contest_id"].combine_chunks(),
                                  value_set=pa.array(scope, pa.string()))


@settings(max_examples=60, deadline=None)
@given(contests=st.integers(5, 60), scope=st.sets(st.integers(0, 70), min_size=1, max_size=4),
       seed=st.integers(1, 50), table=st.sampled_from([t.STATION_RESULTS, t.STATION_TURNOUT]),
       window=st.sampled_from([1, 60, 150, splice.WINDOW_ROWS]))
def test_a_scope_s_rows_spliced_in_equal_a_whole_write(contests, scope, seed, table, window,
                                                       tmp_path_factory) -> None:
    rows = _station_rows(range(contests), 12, 0)
    if table == t.STATION_TURNOUT:
        rows = [{k: r[k] for k in ("election_id", "contest_id", "station_id", "municipality_id", "event_id",
                                   "topic", "partition", "offset")} | {"registered_voters": r["votes"]}
                for r in rows if r["candidate_id"] == "k0"]
    names = [f"c{c:03d}" for c in scope]
    new = _station_rows(range(71), 12 + seed % 3, seed)
    new = [r for r in new if r["contest_id"] in names]
    if table == t.STATION_TURNOUT:
        new = [{k: r[k] for k in ("election_id", "contest_id", "station_id", "municipality_id", "event_id",
                                  "topic", "partition", "offset")} | {"registered_voters": r["votes"]}
               for r in new if r["candidate_id"] == "k0"]
    before = _table(table, rows)
    inside = _contests_inside(names)
    after = _table(table, [r for r in rows if r["contest_id"] not in names] + new)
    with pytest.MonkeyPatch.context() as patch:  # spans read a file, a few, or all at a time
        patch.setattr(splice, "WINDOW_ROWS", window)
        check(table, before, after, {("e", c) for c in names}, inside, tmp_path_factory.mktemp("splice"))


@settings(max_examples=40, deadline=None)
@given(events=st.integers(50, 600), changed=st.sets(st.integers(0, 700), min_size=1, max_size=5),
       added=st.integers(0, 40), seed=st.integers(1, 9), sorted_keys=st.booleans())
def test_events_spliced_by_log_position_equal_a_whole_write(events, changed, added, seed, sorted_keys,
                                                            tmp_path_factory) -> None:
    before, after, inside, prefixes = _events_changed(events, added, seed, lambda offset: offset in changed)
    if sorted_keys:  # as the scoped stage hands the scope's log positions over
        prefixes = _sorted_keys(prefixes)
    check(t.EVENTS, before, after, prefixes, inside, tmp_path_factory.mktemp("events"))


def _events_changed(events: int, added: int, seed: int, changed: Callable[[int], bool]
                    ) -> tuple[pa.Table, pa.Table, Callable[[pa.Table], pa.Array], set]:
    """An events table of ``events`` log positions before and after the events at the ``changed`` ones changed and
    ``added`` were added; which rows are the changed events'; and their log positions."""
    rows = _event_rows(range(events), 0)
    changed_rows = [r for r in _event_rows(range(events + added), seed) if changed(r["offset"])
                    or r["offset"] >= events]
    ids = {r["event_id"] for r in changed_rows}
    before = _table(t.EVENTS, rows)
    after = _table(t.EVENTS, [r for r in rows if r["event_id"] not in ids] + changed_rows)

    def inside(table: pa.Table) -> pa.Array:
        return pc.is_in(table["event_id"].combine_chunks(), value_set=pa.array(sorted(ids), pa.string()))

    return before, after, inside, {tuple(r[c] for c in t.LOG_ORDER) for r in changed_rows}


def _sorted_keys(keys: set) -> splice.SortedKeys:
    rows = sorted(keys)
    return splice.SortedKeys(pa.table({c: [k[i] for k in rows] for i, c in enumerate(t.LOG_ORDER)}))


_OFFSETS = st.integers(0, 40)
_POSITION = {"offset": _OFFSETS, "topic": st.sampled_from(["news", "results", "résultats"]),
             "partition": st.integers(0, 2)}
_KEYS = st.tuples(*(_POSITION[c] for c in t.LOG_ORDER))


@settings(max_examples=300, deadline=None)
@given(heads=st.lists(_KEYS, min_size=1, max_size=12), keys=st.sets(_KEYS, max_size=30),
       among=st.lists(st.integers(0, 11), max_size=4))
def test_sorted_keys_touch_the_files_each_key_touches(heads, keys, among) -> None:
    # Runs of equal first keys, and keys equal to some of them, beside keys below, between and above.
    heads = sorted(heads + [heads[i % len(heads)] for i in among])
    keys |= {heads[i % len(heads)] for i in among}
    old = [splice.OldFile(Path(f"f{i}"), "", 1, h) for i, h in enumerate(heads)]
    assert splice.touched(t.EVENTS, old, _sorted_keys(keys)) == splice.touched(t.EVENTS, old, keys)


def _one_contest_changed(tmp_path: Path) -> tuple[int, int]:
    rows = _station_rows(range(200), 12, 0)
    new = [r for r in _station_rows(range(200), 12, 3) if r["contest_id"] == "c100"]
    before = _table(t.STATION_RESULTS, rows)
    after = _table(t.STATION_RESULTS, [r for r in rows if r["contest_id"] != "c100"] + new)
    return check(t.STATION_RESULTS, before, after, {("e", "c100")}, _contests_inside(["c100"]), tmp_path)


def test_a_small_change_reads_a_few_files_of_many(tmp_path: Path) -> None:
    read, files = _one_contest_changed(tmp_path)
    # Only the touched files are read and written again; their neighbours, context for the cuts beside them, only
    # have their split column read, and are linked as they are.
    assert files > 50 and read <= 2


def _refusing_last_windows(monkeypatch: pytest.MonkeyPatch, refusals: int) -> list[bool]:
    """``_Cutter.cuts`` refusing the first ``refusals`` last windows of a span (their tail's start would not stay a
    cut); the ``last`` of every call, in order."""
    real = splice._Cutter.cuts
    calls: list[bool] = []

    def refused(self, rows, *, last):
        calls.append(last)
        return None if last and calls.count(True) <= refusals else real(self, rows, last=last)

    monkeypatch.setattr(splice._Cutter, "cuts", refused)
    return calls


def test_a_span_whose_near_neighbours_stop_being_cuts_reads_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The right neighbour's start would not stay a cut with the touched files' rows alone: the files written are
    # forgotten and the span staged again with its nearer neighbours read, the farther ones linked.
    calls = _refusing_last_windows(monkeypatch, 1)
    monkeypatch.setattr(splice, "WINDOW_ROWS", 1)  # a file a window: files written before the refusal, forgotten
    read, files = _one_contest_changed(tmp_path)
    assert calls.count(True) == 2 and files > 50
    assert 2 < read <= 2 * (splice.NEIGHBOURS - 1) + 2


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.integers(-5, 5), st.integers(0, 2**40)), max_size=60),
       first=st.integers(0, 60), huge=st.booleans(), shuffled=st.booleans())
def test_two_runs_are_merged_as_a_stable_sort_orders_them(rows, first, huge, shuffled) -> None:
    first = min(first, len(rows))
    old, new = sorted(rows[:first]), sorted(rows[first:])
    if shuffled:  # a part out of order is sorted, not merged
        old = old[::-1]
    codes = [np.array([r[i] * (2**22 if huge and i == 2 else 1) for r in old + new], np.int64) for i in range(3)]
    if not rows:
        return
    assert splice._merge_order(codes, len(old)).tolist() == np.lexsort(codes[::-1]).tolist()


@settings(max_examples=60, deadline=None)
@given(contests=st.integers(1, 30), scope=st.sets(st.integers(0, 35), max_size=6), seed=st.integers(1, 50),
       sliced=st.booleans(), table=st.sampled_from([t.STATION_RESULTS, t.STATION_TURNOUT]))
def test_a_merge_gives_the_rows_in_order_whether_it_slices_runs_or_takes_rows(contests, scope, seed, sliced,
                                                                              table) -> None:
    names = {f"c{c:03d}" for c in scope}
    old = [r for r in _station_rows(range(contests), 12, 0) if r["contest_id"] not in names]
    new = [r for r in _station_rows(range(36), 12, seed) if r["contest_id"] in names]
    if table == t.STATION_TURNOUT:
        old, new = ([{k: r[k] for k in ("election_id", "contest_id", "station_id", "municipality_id", "event_id",
                                        "topic", "partition", "offset")} | {"registered_voters": r["votes"]}
                     for r in rows if r["candidate_id"] == "k0"] for rows in (old, new))
    with pytest.MonkeyPatch.context() as patch:  # every merge one way or the other
        patch.setattr(splice, "MAX_RUNS_PER_ROW", 1.0 if sliced else 0.0)
        merged = splice._merged(table, [_table(table, old), _table(table, new)], t.SCHEMAS[table])
    assert merged.schema == t.SCHEMAS[table]
    assert _plain(merged).to_pylist() == _plain(_table(table, old + new)).to_pylist()


def test_a_span_whose_far_neighbours_stop_being_cuts_is_read_whole(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # ``_far_linked`` finds out only at its last window that the right neighbour's start would not stay a cut, with
    # the nearer neighbours linked and then with the farther ones: the files it wrote are forgotten each time, the
    # splice reads the whole span, and the scope's old rows it had kept from the first reads must not be counted
    # twice.
    calls = _refusing_last_windows(monkeypatch, 2)
    monkeypatch.setattr(splice, "WINDOW_ROWS", 1)  # a file a window: files written before the refusal, forgotten
    read, files = _one_contest_changed(tmp_path)
    assert calls.count(True) == 2 and calls[-1] is True and len(calls) > 2  # windows written, then the refusals
    assert read > 2 * (splice.NEIGHBOURS - 1) + 2  # the farther neighbours were read too, not linked
    assert not [p for p in (tmp_path / "new" / t.STATION_RESULTS).iterdir() if p.name > f"part-{files:05d}"]


@settings(max_examples=40, deadline=None)
@given(events=st.integers(600, 1200), every=st.integers(5, 40), added=st.integers(0, 40), seed=st.integers(1, 9),
       window=st.sampled_from([1, 60, 150, splice.WINDOW_ROWS]))
def test_a_scope_spread_along_the_log_is_spliced_a_window_at_a_time(events, every, added, seed, window,
                                                                     tmp_path_factory) -> None:
    # Every file of the events table touched: one span of all of them, read, merged and written ``window`` rows
    # (at least a file) at a time, with the rows after the last settled cut carried over.
    before, after, inside, positions = _events_changed(events, added, seed,
                                                       lambda offset: offset % every == seed % every)
    prefixes = _sorted_keys(positions)
    held: list[int] = []
    refused: list[bool] = []
    real = splice._Cutter.cuts

    def cuts(self, window_rows, *, last):
        held.append(window_rows.num_rows)
        found = real(self, window_rows, last=last)
        refused.append(found is None)
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(splice, "WINDOW_ROWS", window)
        patch.setattr(splice._Cutter, "cuts", cuts)
        read, files = check(t.EVENTS, before, after, prefixes, inside, tmp_path_factory.mktemp("spread"))
    assert files >= splice.MIN_FILES and read >= files - 2
    # A span of every file has no far neighbour whose start could stop being a cut: no window is refused, and the
    # splice never falls back to reading the span whole.
    assert held and not any(refused)
    if window == 1 and files > 12:  # a window holds its files and the rows carried over, never the whole table
        assert max(held) < before.num_rows / 3
