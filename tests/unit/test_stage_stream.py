"""The publish folds and writes at once: ``fold_tables`` hands over each table as soon as it is built, and
``stage_tables`` writes each while the rest is folded and lets it go once written, staging the same bytes as a
fold first, write after."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.fold import tables as t
from pipelines.fold.core import extract_all, fold_extracted, fold_tables
from pipelines.fold.sliced import SlicedTable
from pipelines.fold.summary import SUMMARY_TURNOUT_COLUMNS, part_figures
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import checkpoint, pipeline
from pipelines.release.part_figures import FiguresCache
from pipelines.release.pipeline import stage_tables
from pipelines.settings import Settings
from tests.support.factories import small_election
from tests.support.municipal import municipal_election, tally

SNAPSHOT = Snapshot(start={("results", 0): 0}, end={("results", 0): 1})


def test_fold_tables_gives_every_table_once_and_the_tables_fold_extracted_gives() -> None:
    log = small_election()
    streamed = list(fold_tables(extract_all(log.records), "x"))
    names = [name for name, _ in streamed]
    assert sorted(names) == sorted(t.TABLE_NAMES) and len(names) == len(set(names))
    whole = fold_extracted(extract_all(log.records), "x")
    for name, table in streamed:
        if isinstance(table, SlicedTable):  # contest_results: assembled as its slices are read
            assert name == t.CONTEST_RESULTS and table.schema.equals(whole[name].schema, check_metadata=True)
            table = table.table()
        assert table.equals(whole[name], check_metadata=True), name


def test_a_streamed_stage_writes_the_same_files_as_a_stage_of_the_whole_fold(tmp_path: Path) -> None:
    log = small_election()
    whole = stage_tables(Settings(staging_dir=str(tmp_path / "a")), SNAPSHOT,
                         fold_extracted(extract_all(log.records), "x"), run_id="whole")
    streamed = stage_tables(Settings(staging_dir=str(tmp_path / "b")), SNAPSHOT,
                            fold_tables(extract_all(log.records), "x"), run_id="streamed")
    assert list(streamed.files) == list(whole.files) == list(t.TABLE_NAMES)
    assert {n: f.sha256 for n, f in streamed.files.items()} == {n: f.sha256 for n, f in whole.files.items()}
    assert streamed.columns == whole.columns
    # A dict is folded already: only the stream has a fold to wait for.
    assert streamed.timings["fold_s"] > whole.timings["fold_s"]


def _let_go_before_next(tables: dict[str, pa.Table], seen: list[str]) -> Iterator[tuple[str, pa.Table]]:
    """Yield each table, then wait until the stage has let it go before yielding the next: a stage that holds
    tables until the stream ends never gets past the first (and the wait gives up, failing the test)."""
    for name in list(tables):
        table = tables.pop(name)
        gone = weakref.ref(table)
        yield name, table
        del table
        waited = time.monotonic()
        while gone() is not None and time.monotonic() - waited < 5:
            time.sleep(0.01)
        if gone() is None:
            seen.append(name)


def test_each_table_is_written_and_let_go_while_the_stream_goes_on(tmp_path: Path) -> None:
    seen: list[str] = []
    # The test keeps no other reference to the tables: the generator's dict is the only one.
    stream = _let_go_before_next(fold_extracted(extract_all(small_election().records), "x"), seen)
    staged = stage_tables(Settings(staging_dir=str(tmp_path)), SNAPSHOT, stream, run_id="r")
    assert seen == list(t.TABLE_NAMES)
    assert all(path.exists() for f in staged.files.values() for path in f.paths())


def test_past_the_write_backlog_the_next_table_is_built_only_once_the_queued_ones_are_written(
        tmp_path: Path, monkeypatch) -> None:
    written: set[str] = set()
    real = pipeline.write_table_files

    def slow(name, table, *args, **kwargs):
        time.sleep(0.05)  # writers behind the fold, as a million stations' are
        out = real(name, table, *args, **kwargs)
        written.add(name)
        return out

    monkeypatch.setattr(pipeline, "write_table_files", slow)
    monkeypatch.setattr(pipeline, "WRITE_BACKLOG_BYTES", 0)
    queued: list[str] = []

    def stream() -> Iterator[tuple[str, pa.Table]]:
        for name, table in fold_extracted(extract_all(small_election().records), "x").items():
            assert set(queued) <= written, f"{name} built while {sorted(set(queued) - written)} wait to be written"
            if table.nbytes:
                queued.append(name)
            yield name, table

    staged = stage_tables(Settings(staging_dir=str(tmp_path)), SNAPSHOT, stream(), run_id="r")
    assert list(staged.files) == list(t.TABLE_NAMES) and len(queued) > 10


def _addresses(table: pa.Table) -> set[int]:
    return {buf.address for column in table.columns for chunk in column.chunks for buf in chunk.buffers()
            if buf is not None and buf.size}


def test_the_fold_holds_no_table_it_handed_over_while_it_builds_the_history_tables() -> None:
    stream = fold_tables(extract_all(small_election().records), "x")
    handed: list[pa.Table] = []  # kept alive here, so that no buffer of theirs is freed and its address reused
    for name, table in stream:
        if name == t.NATIONAL_SUMMARY:  # what the fold built before it: the result and reference tables
            break
        if isinstance(table, pa.Table):
            handed.append(table)
    next(table for name, table in stream if name == t.EVENTS)  # the last: a copy of the whole log, the peak
    held: set[int] = set()
    for name, value in stream.gi_frame.f_locals.items():
        if name != "ex":  # the extraction is the fold's to read until the end
            for item in value.values() if isinstance(value, dict) else [value]:
                if isinstance(item, pa.Table):
                    held |= _addresses(item)
    assert len(handed) > 10 and not held & set().union(*map(_addresses, handed))


def test_the_fold_lets_go_of_a_mapped_extraction_between_its_long_steps() -> None:
    ex = extract_all(small_election().records)
    calls: list[int] = []
    ex.let_go = lambda: calls.append(1)  # as a publish sets it for a mapped extraction: let_go_of_pages
    names = [name for name, _ in fold_tables(ex, "x")]
    assert names[-1] == t.EVENTS and len(calls) >= 8  # after each reference table, the tallies and their votes


def test_a_full_stage_keeps_each_station_turnout_files_figures(tmp_path: Path) -> None:
    log = municipal_election()
    for n in range(16):  # every station reports
        tally(log, n)
    settings = Settings(staging_dir=str(tmp_path), table_file_bytes=120)  # station_turnout in several files
    staged = stage_tables(settings, SNAPSHOT, fold_tables(extract_all(log.records), "x"), run_id="r")
    turnout = staged.files[t.STATION_TURNOUT]
    parts = turnout.parts or (turnout,)
    assert len(parts) > 1
    kept = FiguresCache(checkpoint.figures_folder(settings))

    def unread() -> pa.Table:
        raise AssertionError("figures the stage kept were computed again")

    for part in parts:  # the next (election-night) publish sums these instead of reading the files
        got = kept.of(part.sha256, unread)
        want = part_figures(pq.read_table(part.path, columns=list(SUMMARY_TURNOUT_COLUMNS)))
        assert got is not None and want is not None
        assert (got.election, got.totals, got.municipalities) == (want.election, want.totals, want.municipalities)
        assert got.prints.tolist() == want.prints.tolist()
