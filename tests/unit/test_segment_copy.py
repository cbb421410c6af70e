"""The uncompressed local copy of a checkpoint segment (``pipelines.release.mapped_copy``): a publish memory-maps it
instead of decompressing the segment, and a copy damaged in any way (cut short, bytes changed with its size and
mtime kept, a file or its record gone, not writable at all) is never read: the publish loads what the zstd files
hold, makes the copy again, and its tables equal a full rebuild's. Pruning removes copies with their segments.
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.fold import extraction_files, fold
from pipelines.fold.core import extract_all, fold_extracted
from pipelines.fold.extraction_files import load_extraction, save_part
from pipelines.release import checkpoint, mapped_copy
from pipelines.release.parquet import write_table
from pipelines.settings import Settings
from tests.support.factories import Log, muni, small_election, station
from tests.support.log_reads import log_reader, snapshot_of

SETTINGS = Settings(read_range_min_events=1)


def _copy(folder: Path) -> Path:
    return folder / mapped_copy.COPY_FOLDER


def _flip(path: Path) -> None:
    """Change 8 bytes in the middle of ``path`` (its data, not its header), keeping its size and mtime."""
    seen = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    path.write_bytes(bytes(data))
    os.utime(path, ns=(seen.st_atime_ns, seen.st_mtime_ns))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def _publish(log: Log, cache: Path, base: checkpoint.Checkpoint | None = None) -> checkpoint.Extension:
    """A publish of the whole log without a bucket, from ``base`` (incremental) or from offset 0."""
    start = checkpoint.Base(base, "incremental", "r1") if base else checkpoint.Base(None, "full rebuild")
    return checkpoint.extend(SETTINGS, snapshot_of(log.records), start, None, cache, read=log_reader(log))


def _first(tmp_path: Path) -> tuple[Log, checkpoint.Checkpoint, Path]:
    """The small election published once: its log, the checkpoint it left, and that one segment's folder."""
    log = small_election()
    ckpt = _publish(log, tmp_path / "cache").pending.checkpoint
    assert len(ckpt.segments) == 1
    log.tally(station(1), muni("a"), {"candidate:aysel": 5, "candidate:babek": 6})
    return log, ckpt, tmp_path / "cache" / ckpt.segments[0].segment_id


def _shas(tables: dict[str, pa.Table], directory: Path) -> dict[str, str]:
    return {name: write_table(name, table, directory).sha256 for name, table in tables.items()}


def _equals_full_rebuild(ext: checkpoint.Extension, log: Log, tmp_path: Path) -> bool:
    return _shas(fold_extracted(ext.extracted), tmp_path / "inc") == _shas(fold(log.records), tmp_path / "full")


def _copy_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(_copy(folder).iterdir())}


def test_a_saved_segment_is_loaded_from_its_copy_without_allocating_its_data(tmp_path: Path) -> None:
    extraction = extract_all(small_election().records)
    _, folder = checkpoint.save_segment(extraction, tmp_path)
    assert mapped_copy.listed(folder, [p.stem for p in folder.glob("*.arrow")])

    allocated = pa.total_allocated_bytes()
    loaded = checkpoint.load_segments([folder])[0]
    assert pa.total_allocated_bytes() == allocated  # mapped: the tables' buffers are the file's pages
    assert loaded.envelope.equals(extraction.envelope) and loaded.content.keys() == extraction.content.keys()
    assert all(loaded.content[t].equals(table) for t, table in extraction.content.items())
    zstd = load_extraction(folder)  # what a publish read before: decompressed into memory Arrow allocates
    assert pa.total_allocated_bytes() > allocated and zstd.envelope.equals(loaded.envelope)


def _resident_kib(path: Path) -> int:
    """This process's resident KiB of its mappings of ``path`` (Linux's ``/proc/self/smaps``)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):
            inside = len(fields) >= 6 and fields[5] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
@pytest.mark.parametrize("batches", ["one", "hundreds"])
def test_a_loaded_copy_is_checked_without_keeping_its_pages_resident(
        batches: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A scoped publish reads a part of the copy; the check reads all of it and lets go of what it read. Arrow's
    # reader touches every record batch it loads, and a copy written before parts had large batches has hundreds.
    extraction = extract_all(small_election().records)
    envelope = pa.concat_tables([extraction.envelope] * 400)
    if batches == "hundreds":
        monkeypatch.setattr(extraction_files, "BATCH_BYTES", 8192)
    _, folder = checkpoint.save_segment(dataclasses.replace(extraction, envelope=envelope), tmp_path)
    path = (_copy(folder) / "envelope.arrow").resolve()
    size_kib = path.stat().st_size // 1024
    assert size_kib > 2048 and pa.ipc.open_file(str(path)).num_record_batches >= (100 if batches == "hundreds" else 1)

    loaded = checkpoint.load_segments([folder])[0]
    assert _resident_kib(path) < size_kib / 4
    assert loaded.envelope.equals(envelope)  # reads every page: they are mapped in again
    assert _resident_kib(path) > size_kib / 2


def test_parts_are_written_in_batches_of_about_batch_bytes_whatever_their_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each column of a batch is one run of bytes: a mapped reader of one column maps in little else.
    envelope = pa.concat_tables([extract_all(small_election().records).envelope] * 400)
    path = tmp_path / "envelope.arrow"
    save_part(envelope, path)
    assert len(envelope.to_batches()) > 1 and pa.ipc.open_file(str(path)).num_record_batches == 1
    monkeypatch.setattr(extraction_files, "BATCH_BYTES", envelope.nbytes // 10)
    save_part(envelope, path, compression="zstd")
    reader = pa.ipc.open_file(str(path))
    assert 5 <= reader.num_record_batches <= 11
    assert reader.read_all().equals(envelope)  # the rows in order
    save_part(envelope.slice(0, 0), path)
    assert pa.ipc.open_file(str(path)).read_all().equals(envelope.slice(0, 0))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "cut short": lambda folder: _truncate(_copy(folder) / "envelope.arrow"),
    # Size and mtime as recorded: only the bytes themselves show it.
    "bytes changed": lambda folder: _flip(_copy(folder) / "envelope.arrow"),
    "bytes changed in a content part": lambda folder: _flip(_copy(folder) / "content.StationTally.arrow"),
    # The loader finds content parts by name: one missing must not load as "no such events".
    "a content part removed": lambda folder: (_copy(folder) / "content.StationTally.arrow").unlink(),
    "a stray part added": lambda folder: (_copy(folder) / "content.Stray.arrow").write_bytes(b"stray"),
    "its record removed": lambda folder: (_copy(folder) / mapped_copy.RECORD).unlink(),
    "the copy removed": mapped_copy.discard,  # a cache made before copies were kept
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_copy_is_made_again_from_the_zstd_files_and_never_read(damage: str, tmp_path: Path) -> None:
    log, ckpt, folder = _first(tmp_path)
    intact = _copy_files(folder)
    DAMAGE[damage](folder)

    ext = _publish(log, tmp_path / "cache", ckpt)
    assert ext.reason == "incremental" and ext.events_read == 1
    assert _equals_full_rebuild(ext, log, tmp_path)
    assert _copy_files(folder) == intact  # made again, byte for byte
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []  # no scratch left


@pytest.mark.parametrize("damage", ["bytes changed", "a content part removed"])
def test_a_copy_damaged_after_the_fetch_is_not_read_by_a_later_load(damage: str, tmp_path: Path) -> None:
    log, ckpt, folder = _first(tmp_path)
    assert checkpoint.fetch_segments(None, ckpt.segments, tmp_path / "cache") == [folder]
    intact = _copy_files(folder)
    DAMAGE[damage](folder)  # e.g. before the withholding step folds the extraction again

    loaded = checkpoint.load_segments([folder])[0]
    expected = extract_all(log.records[:-1])
    assert loaded.envelope.equals(expected.envelope) and loaded.content.keys() == expected.content.keys()
    assert all(loaded.content[t].equals(table) for t, table in expected.content.items())
    assert _copy_files(folder) == intact


def test_zstd_files_damaged_under_an_intact_copy_are_not_read_and_both_damaged_mean_a_full_rebuild(
        tmp_path: Path) -> None:
    log, ckpt, folder = _first(tmp_path)
    _truncate(folder / "envelope.arrow")
    # The copy is checked on its own bytes: the zstd files are read only to make it again.
    ext = _publish(log, tmp_path / "cache", ckpt)
    assert ext.reason == "incremental" and _equals_full_rebuild(ext, log, tmp_path / "a")

    _flip(_copy(folder) / "envelope.arrow")
    ext = _publish(log, tmp_path / "cache", ckpt)
    assert ext.reason.startswith(f"full rebuild (the checkpoint of release r1: cached segment "
                                 f"{ckpt.segments[0].segment_id}: {folder / 'envelope.arrow'} has ")
    assert ext.events_read == len(log.records) and _equals_full_rebuild(ext, log, tmp_path / "b")


def test_without_room_for_a_copy_the_zstd_files_are_loaded(tmp_path: Path, monkeypatch) -> None:
    log, ckpt, folder = _first(tmp_path)
    mapped_copy.discard(folder)

    def full_disk(source: Path, parts: object, directory: Path) -> None:
        directory.mkdir(parents=True)
        (directory / "envelope.arrow").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mapped_copy, "write_from", full_disk)
    ext = _publish(log, tmp_path / "cache", ckpt)
    assert ext.reason == "incremental" and _equals_full_rebuild(ext, log, tmp_path)
    assert not _copy(folder).exists()
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []


def test_a_second_copy_never_replaces_one_in_place(tmp_path: Path) -> None:
    extraction = extract_all(small_election().records)
    segment, folder = checkpoint.save_segment(extraction, tmp_path)
    first = _copy(folder).stat().st_ino
    # Another publisher saving the same content: its copy is dropped, the first one stays (a reader may have
    # it mapped), and nothing is left over.
    assert checkpoint.save_segment(extraction, tmp_path) == (segment, folder)
    assert _copy(folder).stat().st_ino == first
    assert [p.name for p in tmp_path.iterdir()] == [segment.segment_id]
    # Without a copy of its own, the folder takes the newcomer's.
    mapped_copy.discard(folder)
    checkpoint.save_segment(extraction, tmp_path)
    assert mapped_copy.listed(folder, segment.files) and [p.name for p in tmp_path.iterdir()] == [folder.name]


def test_pruning_removes_unused_copies_after_ten_minutes_and_unused_segments_after_an_hour(tmp_path: Path) -> None:
    log = small_election()
    cache = tmp_path / "cache"
    first = _publish(log, cache).pending
    log.tally(station(1), muni("a"), {"candidate:aysel": 5, "candidate:babek": 6})
    second = _publish(log, cache, first.checkpoint).pending
    log.tally(station(2), muni("a"), {"candidate:aysel": 7, "candidate:babek": 8})
    # Only the third segment: the first two are unused once its release is out.
    third = checkpoint.extend(SETTINGS, snapshot_of(log.records), checkpoint.Base(None, "full"), None, cache,
                              read=log_reader(log)).pending
    old, young = first.folders()[0], second.folders()[1]
    os.utime(old, (time.time() - 3700,) * 2)
    scratch = cache / ".copy-being-written"
    scratch.mkdir()
    os.utime(scratch, (time.time() - 700,) * 2)

    third.prune_cache()  # the second segment was just used: another publish may be about to load its copy
    assert not old.exists() and mapped_copy.listed(young, second.checkpoint.segments[1].files)
    os.utime(young, (time.time() - 700,) * 2)
    young_mtime = young.stat().st_mtime_ns
    third.prune_cache()
    assert young.is_dir() and not _copy(young).exists() and (young / "envelope.arrow").is_file()
    assert young.stat().st_mtime_ns == young_mtime  # unused since then, not since the copy went
    kept = third.folders()[0]
    assert mapped_copy.listed(kept, third.checkpoint.segments[0].files) and scratch.is_dir()


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_the_pages_a_publish_has_read_of_a_copy_can_be_let_go_of_and_read_again(tmp_path: Path) -> None:
    # A scoped stage reads its columns one after another and lets go of each one's pages once read.
    extraction = extract_all(small_election().records)
    envelope = pa.concat_tables([extraction.envelope] * 400).combine_chunks()
    _, folder = checkpoint.save_segment(dataclasses.replace(extraction, envelope=envelope), tmp_path)
    path = (_copy(folder) / "envelope.arrow").resolve()
    size_kib = path.stat().st_size // 1024

    loaded = checkpoint.load_segments([folder])[0]
    assert loaded.envelope.equals(envelope)
    assert _resident_kib(path) > size_kib / 2
    mapped_copy.let_go_of_pages()
    assert _resident_kib(path) < size_kib / 4
    assert loaded.envelope.equals(envelope)  # the same bytes, mapped in again from the page cache
    del loaded
    gc.collect()
    mapped_copy.let_go_of_pages()  # a copy no longer mapped is not touched


def test_a_copy_loaded_ahead_is_what_the_publish_takes_and_equals_a_full_rebuild(tmp_path: Path) -> None:
    log, ckpt, folder = _first(tmp_path)
    cache = tmp_path / "cache"
    assert _publish(log, cache, ckpt).timings["checkpoint_loaded_ahead"] == 0.0  # nothing loaded ahead

    assert checkpoint.load_ahead(ckpt.segments, cache)  # as the plan step does, before the read
    ext = _publish(log, cache, ckpt)
    assert ext.timings["checkpoint_loaded_ahead"] == 1.0 and ext.events_read == 1
    assert _equals_full_rebuild(ext, log, tmp_path)
    assert mapped_copy.loaded_ahead([folder]) is None  # taken once


def test_a_load_ahead_is_taken_only_by_a_load_of_the_same_folders(tmp_path: Path) -> None:
    _, ckpt, folder = _first(tmp_path)
    mapped_copy.load_ahead([folder])
    assert mapped_copy.loaded_ahead([tmp_path / "elsewhere"]) is None
    assert mapped_copy.loaded_ahead([]) is None
    taken = mapped_copy.loaded_ahead([folder])
    assert taken is not None and taken[0].envelope.equals(checkpoint.load_segments([folder])[0].envelope)


@pytest.mark.parametrize("damage", ["bytes changed", "a content part removed"])
def test_a_copy_damaged_before_its_load_ahead_is_made_again_and_never_read(damage: str, tmp_path: Path) -> None:
    log, ckpt, folder = _first(tmp_path)
    intact = _copy_files(folder)
    DAMAGE[damage](folder)  # not seen by its listing: the load ahead starts, and fails on the bytes

    assert checkpoint.load_ahead(ckpt.segments, tmp_path / "cache") == (damage == "bytes changed")
    ext = _publish(log, tmp_path / "cache", ckpt)
    assert ext.timings["checkpoint_loaded_ahead"] == 0.0 and ext.reason == "incremental"
    assert _equals_full_rebuild(ext, log, tmp_path)
    assert _copy_files(folder) == intact
