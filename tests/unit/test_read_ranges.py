"""The read split into partition ranges (one Dagster step each): how the ranges are planned from the snapshot and
the checkpoint base, and how their segments are combined into the checkpoint the release leaves."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.fold.extraction_files import extraction_version
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import checkpoint
from pipelines.settings import Settings
from tests.support.factories import Log, muni, small_election, station
from tests.support.log_reads import log_reader, snapshot_of

SIZES = {("results", 0): 500, ("results", 1): 300, ("results", 2): 0, ("reference", 0): 200, ("news", 0): 100}
SNAP = Snapshot(start={tp: 0 for tp in SIZES}, end=dict(SIZES))
FULL = checkpoint.Base(None, "full rebuild")


def _ranges(base: checkpoint.Base = FULL, snap: Snapshot = SNAP, **settings: int) -> list[Snapshot]:
    return checkpoint.plan_ranges(Settings(**{"read_range_min_events": 1, **settings}), snap, base)


def _assert_partition_of(ranges: list[Snapshot], whole: Snapshot) -> None:
    """Every non-empty partition of ``whole`` in exactly one range, with its offsets."""
    seen = [tp for r in ranges for tp in r.end]
    assert len(seen) == len(set(seen))
    assert set(seen) == {tp for tp in whole.end if whole.end[tp] > whole.start[tp]}
    for r in ranges:
        assert all((r.start[tp], r.end[tp]) == (whole.start[tp], whole.end[tp]) for tp in r.end)


def test_one_range_per_non_empty_partition_up_to_the_setting():
    every = _ranges(read_ranges=64)
    assert len(every) == 4 and all(len(r.end) == 1 for r in every)
    _assert_partition_of(every, SNAP)

    capped = _ranges(read_ranges=2)
    _assert_partition_of(capped, SNAP)
    # Largest partitions first, each to the lighter range: 500 | 300 + 200 + 100.
    assert sorted(r.total() for r in capped) == [500, 600]


def test_a_default_publish_reads_in_one_range():
    assert checkpoint.plan_ranges(Settings(), SNAP, FULL) == [Snapshot(
        start={tp: 0 for tp, n in SIZES.items() if n}, end={tp: n for tp, n in SIZES.items() if n})]


def test_fewer_new_events_than_the_minimum_per_range_mean_fewer_ranges():
    assert len(_ranges(read_ranges=64, read_range_min_events=400)) == 2  # 1100 events: 2 ranges of 400 or more
    assert len(_ranges(read_ranges=64, read_range_min_events=5000)) == 1


def test_ranges_start_where_the_checkpoint_ends():
    done = {("results", 0): 500, ("results", 1): 250, ("results", 2): 0, ("reference", 0): 200, ("news", 0): 40}
    ckpt = checkpoint.Checkpoint(extraction_version(), dict(SNAP.start), done, [])
    ranges = _ranges(checkpoint.Base(ckpt, "incremental from release r1", "r1"), read_ranges=64)
    assert {tp: (r.start[tp], r.end[tp]) for r in ranges for tp in r.end} == {
        ("results", 1): (250, 300), ("news", 0): (40, 100)}


def test_nothing_new_is_one_empty_range_so_the_combining_step_still_runs():
    ckpt = checkpoint.Checkpoint(extraction_version(), dict(SNAP.start), dict(SNAP.end), [])
    [only] = _ranges(checkpoint.Base(ckpt, "incremental", "r1"), read_ranges=8)
    assert only.total() == 0


def _log() -> Log:
    log = small_election()
    for n in range(4):
        log.tally(station(n + 1), muni("a"), {"candidate:aysel": n, "candidate:babek": 1}, partition=n % 2)
    return log




def _read_all(log: Log, cache: Path, ranges: int) -> tuple[Settings, Snapshot, list[checkpoint.RangeRead]]:
    settings = Settings(read_ranges=ranges, read_range_min_events=1)
    snap = snapshot_of(log.records)
    reads = [checkpoint.read_range(settings, r, cache, read=log_reader(log))
             for r in checkpoint.plan_ranges(settings, snap, FULL)]
    return settings, snap, reads


def test_each_range_leaves_a_segment_and_the_release_uploads_those_not_in_the_bucket_yet(tmp_path):
    log = _log()
    settings, snap, reads = _read_all(log, tmp_path, ranges=3)
    assert len(reads) == 3 and sum(r.events for r in reads) == snap.total()
    assert all(len(r.segments) == 1 and not r.uploaded for r in reads)
    # What a read step on another machine hands on: its segment is in the bucket already.
    reads[1] = replace(reads[1], uploaded=True)
    ext = checkpoint.combine(settings, snap, FULL, reads, None, tmp_path, read=log_reader(log))
    ids = [s.segment_id for r in reads for s in r.segments]
    assert [s.segment_id for s in ext.pending.checkpoint.segments] == ids
    assert ext.pending.new == {ids[0], ids[2]}
    assert ext.events_read == snap.total() and ext.timings["read_ranges"] == 3
    assert ext.extracted.envelope.num_rows == snap.total()


def test_the_read_stage_spans_the_ranges_whether_they_ran_in_turn_or_side_by_side(tmp_path):
    _, _, reads = _read_all(_log(), tmp_path, ranges=2)
    one_after_another = [replace(reads[0], started=10.0, ended=12.0), replace(reads[1], started=12.0, ended=15.0)]
    side_by_side = [replace(reads[0], started=10.0, ended=12.0), replace(reads[1], started=10.5, ended=13.0)]
    assert checkpoint.read_timings(one_after_another)["read_wall_s"] == 5.0
    assert checkpoint.read_timings(side_by_side)["read_wall_s"] == 3.0
    assert checkpoint.read_timings([])["read_wall_s"] == 0.0


def test_a_range_segment_neither_here_nor_in_a_bucket_is_an_error(tmp_path):
    log = _log()
    settings, snap, reads = _read_all(log, tmp_path / "read-step", ranges=2)
    # The combining step on another machine, its cache empty, and no bucket to fetch from.
    with pytest.raises(checkpoint.CheckpointUnusable, match="not in .*no bucket"):
        checkpoint.combine(settings, snap, FULL, reads, None, tmp_path / "fold-step", read=log_reader(log))


def test_past_the_segment_limit_the_ranges_are_compacted_into_one_segment(tmp_path):
    log = _log()
    settings, snap, reads = _read_all(log, tmp_path, ranges=3)
    ext = checkpoint.combine(settings, snap, FULL, reads, None, tmp_path, read=log_reader(log), max_segments=3)
    assert len(ext.pending.checkpoint.segments) == 1
    assert ext.pending.new == {ext.pending.checkpoint.segments[0].segment_id}


def test_a_forced_publish_without_new_events_reads_nothing_and_keeps_the_checkpoint(tmp_path):
    log = _log()
    settings, snap, reads = _read_all(log, tmp_path, ranges=2)
    first = checkpoint.combine(settings, snap, FULL, reads, None, tmp_path, read=log_reader(log))
    base = checkpoint.Base(first.pending.checkpoint, "incremental from release r1", "r1")
    again = checkpoint.extend(settings, snap, base, None, tmp_path, read=log_reader(log))
    assert again.events_read == 0 and again.timings["read_ranges"] == 0
    assert again.pending.checkpoint.segments == first.pending.checkpoint.segments and not again.pending.new
    assert again.extracted.envelope.num_rows == snap.total()


def test_a_read_that_keeps_no_segment_is_an_error_not_a_range_without_events(tmp_path):
    log = _log()

    def ignores_keep(settings, snap, keep=None):
        return log_reader(log)(settings, snap)  # the extraction handed back, nothing kept

    with pytest.raises(ValueError, match="kept 0 shares of 1"):
        checkpoint.read_range(Settings(), snapshot_of(log.records), tmp_path, read=ignores_keep)
