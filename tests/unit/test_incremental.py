"""Incremental publish: a chain of checkpoints gives, at every publish, the tables of a full rebuild, byte for byte,
with the table files it can reuse linked from the last publish's (``pipelines.release.reuse``), not written.

The chain runs the publish path's own ``checkpoint.extend`` (the new offsets split into partition ranges, each
range's segment saved and loaded as zstd Arrow IPC, merged, compacted past the segment limit) with the in-memory
log standing in for Kafka's read; the full rebuild is ``fold`` over every record up to the same offsets.
Hypothesis draws the event sequences: new tallies in two contests, corrections, retractions (also of corrections
and of retractions' targets twice), re-deliveries on another partition, incidents and their status changes, and
publishes between any two of them; and how many ranges a read may be split into.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.fold import TABLE_NAMES, fold
from pipelines.fold.core import extract_all, fold_extracted
from pipelines.release import checkpoint, mapped_copy, reuse
from pipelines.release.parquet import write_table
from pipelines.settings import Settings
from tests.support.factories import REFERENDUM, Log, muni, small_election, station
from tests.support.log_reads import log_reader, snapshot_of

# Low, so that a sequence of a few publishes goes through compaction too.
MAX_SEGMENTS = 3
EXAMPLES = 150

OPS = ("tally", "referendum", "correct", "retract", "redeliver", "incident", "status", "publish")
op_sequences = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1_000)), min_size=1, max_size=30)


def _apply(log: Log, op: str, n: int, publishes: list[int]) -> None:
    """Append the event(s) of one drawn operation to ``log`` (``publish`` marks a publish point)."""
    tallies = [r for r in log.records if r.record_type == "StationTally"]
    events = [r for r in log.records if r.record_type != "Retraction"]
    s, m = n % 6 + 1, "a" if n % 2 else "b"
    if op == "publish":
        publishes.append(len(log.records))
    elif op == "tally":
        log.tally(station(s), muni(m), {"candidate:aysel": n, "candidate:babek": 1000 - n})
    elif op == "referendum":
        log.tally2(station(s), REFERENDUM, {"option:yes": n, "option:no": 7}, municipality_id=muni(m))
    elif op == "correct" and tallies:
        target = tallies[n % len(tallies)]
        log.emit(target.record_type, target.key, {**{k: x for k, x in target.value.items()
                                                     if k not in ("event_id", "supersedes")},
                                                  "registered_voters": 2000 + n}, supersedes=target)
    elif op == "retract" and events:
        log.retract(events[n % len(events)])
    elif op == "redeliver" and log.records:
        log.again(log.records[n % len(log.records)], partition=n % 2)
    elif op == "incident":
        log.incident(f"incident:{n % 5}", muni(m), station_id=station(s), count=n % 4 or None)
    elif op == "status":
        log.status(f"incident:{n % 5}", ("VERIFIED", "REJECTED", "UNVERIFIED")[n % 3])




def _shas(tables: dict[str, pa.Table], directory: Path) -> dict[str, str]:
    return {name: write_table(name, table, directory).sha256 for name, table in tables.items()}


def _staged_shas(tables: dict[str, pa.Table], directory: Path, files: reuse.TableFileCache
                 ) -> tuple[dict[str, str], dict[str, dict]]:
    staged = {name: write_table(name, table, directory, files.write) for name, table in tables.items()}
    records = files.records(staged.values())
    assert len(records) == len(staged) == files.written + files.reused
    return {name: f.sha256 for name, f in staged.items()}, records


def chain_and_rebuilds(log: Log, publishes: list[int], cache: Path, scratch: Path, ranges: int = 1
                       ) -> list[tuple[dict[str, str], dict[str, str], checkpoint.Extension]]:
    """At each publish point: (the incremental chain's table checksums, the full rebuild's, the extension), each
    read split into up to ``ranges`` ranges; the chain's files are staged reusing the last publish's."""
    settings = Settings(read_ranges=ranges, read_range_min_events=1)
    out = []
    previous: checkpoint.Checkpoint | None = None
    for i, upto in enumerate(publishes):
        snap = snapshot_of(log.records[:upto])
        base = checkpoint.Base(previous, "incremental") if previous else checkpoint.Base(None, "full")
        ext = checkpoint.extend(settings, snap, base, None, cache, read=log_reader(log), max_segments=MAX_SEGMENTS)
        files = reuse.TableFileCache(cache / checkpoint.TABLE_FILES_FOLDER,
                                     reuse.kept_files(previous.table_files if previous else None))
        incremental, records = _staged_shas(fold_extracted(ext.extracted), scratch / f"inc-{i}", files)
        assert files.reused > 0 or previous is None  # the elections, at least, are the same
        full = _shas(fold(log.records[:upto]), scratch / f"full-{i}")
        out.append((incremental, full, ext))
        previous = dataclasses.replace(ext.pending.checkpoint, table_files=records)
    return out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=op_sequences, ranges=st.integers(1, 4))
def test_every_incremental_publish_equals_a_full_rebuild(ops: list[tuple[str, int]], ranges: int,
                                                         tmp_path_factory) -> None:
    tmp = tmp_path_factory.mktemp("chain")
    log = small_election()
    publishes = [len(log.records)]
    for op, n in ops:
        _apply(log, op, n, publishes)
    publishes.append(len(log.records))
    publishes = sorted(set(publishes))
    for incremental, full, ext in chain_and_rebuilds(log, publishes, tmp / "cache", tmp / "tables", ranges):
        assert set(incremental) == set(TABLE_NAMES)
        assert incremental == full
        assert len(ext.pending.checkpoint.segments) < MAX_SEGMENTS


def test_a_chain_reads_only_new_offsets_and_compacts(tmp_path: Path) -> None:
    log = small_election()
    publishes = [len(log.records)]
    for n in range(5):
        log.tally(station(n % 4 + 1), muni("a"), {"candidate:aysel": n, "candidate:babek": 1})
        publishes.append(len(log.records))
    results = chain_and_rebuilds(log, publishes, tmp_path / "cache", tmp_path / "tables")
    assert [ext.events_read for _, _, ext in results] == [publishes[0], 1, 1, 1, 1, 1]
    # 1 segment, 2, then the merge of 3 as one, 2, then one again.
    assert [len(ext.pending.checkpoint.segments) for _, _, ext in results] == [1, 2, 1, 2, 1, 2]
    assert all(inc == full for inc, full, _ in results)


def test_saving_the_same_extraction_twice_names_one_segment_and_leaves_no_scratch(tmp_path: Path) -> None:
    extraction = extract_all(small_election().records)
    first, folder = checkpoint.save_segment(extraction, tmp_path)
    again, same = checkpoint.save_segment(extraction, tmp_path)
    assert first == again and folder == same
    assert [p.name for p in tmp_path.iterdir()] == [first.segment_id]
    loaded = checkpoint.load_segments([folder])[0]
    assert loaded.envelope.equals(extraction.envelope)


def test_a_cached_segment_changed_on_disk_is_not_used_the_publish_rebuilds_and_says_why(tmp_path: Path) -> None:
    log = small_election()
    cache = tmp_path / "cache"
    ckpt = chain_and_rebuilds(log, [len(log.records)], cache, tmp_path / "first")[0][2].pending.checkpoint
    path = cache / ckpt.segments[0].segment_id / "envelope.arrow"
    path.write_bytes(path.read_bytes()[:-10])  # truncated after it was saved
    mapped_copy.discard(path.parent)  # and no copy to load instead (tests/unit/test_segment_copy.py)
    log.tally(station(1), muni("a"), {"candidate:aysel": 5, "candidate:babek": 6})

    settings = Settings(read_range_min_events=1)
    base = checkpoint.Base(ckpt, "incremental", "r1")
    ext = checkpoint.extend(settings, snapshot_of(log.records), base, None, cache, read=log_reader(log))
    assert ext.reason.startswith(f"full rebuild (the checkpoint of release r1: cached segment "
                                 f"{ckpt.segments[0].segment_id}: {path} has ")
    assert ext.events_read == len(log.records)
    assert _shas(fold_extracted(ext.extracted), tmp_path / "inc") == _shas(fold(log.records), tmp_path / "full")
    # The rebuild saved the segment again, intact: the next publish resumes from it.
    assert checkpoint.fetch_segments(None, ckpt.segments, cache) == [cache / ckpt.segments[0].segment_id]
