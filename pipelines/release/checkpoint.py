"""The private checkpoint a release leaves for the next publish: its extraction and the offsets it covers.

A publish that finds the latest release's checkpoint reads only the offsets after it, merges their extraction
with the checkpoint's and folds the whole; the tables are those of a full rebuild at the same end offsets,
because the fold does not depend on record order (``pipelines.fold.extract.merge``). What is kept is the
extraction, not the tables: every publish folds afresh, so a changed fold needs no rebuild, while a changed
extraction (``extraction_version``) does.

Layout in the release bucket, beside the releases (the bucket policy keeps ``checkpoints/`` from the public)::

    <dataset>/checkpoints/<release_id>.json             which segments, which offsets, which extraction version
    <dataset>/checkpoints/segments/<segment id>/<part>.arrow   one extraction per offset range (zstd Arrow IPC)

and in the publisher's local cache (``cache_folder``), each segment's files as in the bucket, beside the copy of
them a publish loads (``mapped_copy``: uncompressed, memory-mapped)::

    <segment id>/<part>.arrow   <segment id>/mapped/<part>.arrow   <segment id>/mapped/crc32c.json

A checkpoint lists the segments of every offset range read so far; a publish adds one segment per range of its
new offsets, so what it uploads grows with the change, not with the election. Past ``MAX_SEGMENTS`` the merged
extraction is written as one segment instead. Segments are named by their content, so two publishers that
read the same range write the same objects.

The read is three functions, so that the publish job can run it as one step per range, on other machines:
``plan_ranges`` splits the new offsets into ranges of whole partitions, ``read_range`` reads one and saves
(and uploads) its segment, and ``combine`` merges the base's segments with the ranges'. ``extend`` runs the
three in one call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import BallotstreamError
from pipelines.fold.extract import Extracted, merge
from pipelines.fold.extraction_files import extraction_version, load_extraction, save_extraction
from pipelines.fold.read import ReadResult, read_snapshot, split
from pipelines.kafka.snapshot import Snapshot
from pipelines.release import later, mapped_copy
from pipelines.release.parquet import StagedFile, file_sha256
from pipelines.release.s3 import ARROW_TYPE
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings

CHECKPOINT_FORMAT = "ballotstream.checkpoint/1"
# Segments downloaded or saved are kept between runs (by content id) in ``cache_folder``.
CACHE_FOLDER = ".checkpoint-segments"


def cache_folder(settings: Settings) -> Path:
    """``<staging>/.checkpoint-segments/<dataset>``: beside the runs' staging folders, not among them (a run's
    folder goes when it ends; the segments stay for the next run)."""
    return Path(settings.staging_dir) / CACHE_FOLDER / settings.dataset


# The latest release's table files, by sha256 (``pipelines.release.reuse``): in ``cache_folder``, beside the
# segments, and never pruned as one.
TABLE_FILES_FOLDER = "tables"


def table_files_folder(settings: Settings) -> Path:
    return cache_folder(settings) / TABLE_FILES_FOLDER


# The NIST documents' blocks of contests, by what each is built from (``pipelines.release.cdf_blocks``): in
# ``cache_folder`` too.
DOCUMENT_BLOCKS_FOLDER = "documents"


def document_blocks_folder(settings: Settings) -> Path:
    return cache_folder(settings) / DOCUMENT_BLOCKS_FOLDER


# The latest release's table files' key fingerprints, by sha256 (``pipelines.gate.keyprints``): in
# ``cache_folder`` too.
KEY_PRINTS_FOLDER = "keyprints"


def key_prints_folder(settings: Settings) -> Path:
    return cache_folder(settings) / KEY_PRINTS_FOLDER


# The latest release's station_turnout files' national figures, by sha256 (``pipelines.release.part_figures``):
# in ``cache_folder`` too.
FIGURES_FOLDER = "figures"


def figures_folder(settings: Settings) -> Path:
    return cache_folder(settings) / FIGURES_FOLDER


# More segments than this and the next publish compacts them into one (each segment costs a download and a
# merge step; one segment per publish all night long would be thousands).
MAX_SEGMENTS = 16

TopicPartition = tuple[str, int]


class CheckpointUnusable(BallotstreamError):
    """The checkpoint cannot be resumed from; the message says why (the publish rebuilds in full)."""


def _offsets_to_json(offsets: dict[TopicPartition, int]) -> list[list[Any]]:
    return [[t, p, o] for (t, p), o in sorted(offsets.items())]


def _offsets_from_json(rows: list[list[Any]]) -> dict[TopicPartition, int]:
    return {(str(t), int(p)): int(o) for t, p, o in rows}


@dataclass(frozen=True)
class Segment:
    """One saved extraction: its id (from its content) and its files' checksums and sizes, by part."""

    segment_id: str
    files: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.segment_id, "files": self.files}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Segment:
        return cls(str(body["id"]), {str(k): {"sha256": str(f["sha256"]), "bytes": int(f["bytes"])}
                                     for k, f in body["files"].items()})


@dataclass(frozen=True)
class Checkpoint:
    """The extraction of the offsets ``start``..``end`` (per partition), saved as ``segments``."""

    version: str
    start: dict[TopicPartition, int]
    end: dict[TopicPartition, int]
    segments: list[Segment]
    schema_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    # What the gate found in each table file of the release (``pipelines.gate.incremental``): the next gate
    # re-checks only the files it does not cover.
    gate: dict[str, Any] | None = None
    # Each table file of the release by the fingerprint of its data (``pipelines.release.reuse``): the next
    # publish links a file with the same fingerprint from its local cache instead of encoding it again.
    table_files: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "extraction_version": self.version,
                "start": _offsets_to_json(self.start), "end": _offsets_to_json(self.end),
                "segments": [s.to_json() for s in self.segments],
                "schema_ids": [[t, rt, i] for (t, rt), i in sorted(self.schema_ids.items())],
                **({"gate": self.gate} if self.gate is not None else {}),
                **({"table_files": self.table_files} if self.table_files is not None else {})}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Checkpoint:
        if body.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {body.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        return cls(str(body["extraction_version"]), _offsets_from_json(body["start"]),
                   _offsets_from_json(body["end"]), [Segment.from_json(s) for s in body["segments"]],
                   {(str(t), str(rt)): int(i) for t, rt, i in body["schema_ids"]},
                   body.get("gate") if isinstance(body.get("gate"), dict) else None,
                   body.get("table_files") if isinstance(body.get("table_files"), dict) else None)


def checkpoints_prefix(store: ReleaseStore) -> str:
    return f"{store.dataset}/checkpoints/"


def checkpoint_key(store: ReleaseStore, release_id: str) -> str:
    return f"{checkpoints_prefix(store)}{release_id}.json"


def segments_prefix(store: ReleaseStore) -> str:
    return f"{checkpoints_prefix(store)}segments/"


def segment_prefix(store: ReleaseStore, segment_id: str) -> str:
    return f"{segments_prefix(store)}{segment_id}/"


@dataclass
class Base:
    """Where a publish starts: from ``checkpoint`` (incremental), or from offset 0 (``checkpoint`` None).

    ``reason`` says which and why, for the run's metadata and the console.
    """

    checkpoint: Checkpoint | None
    reason: str
    release_id: str | None = None

    def delta(self, snap: Snapshot) -> Snapshot:
        """The part of ``snap`` the checkpoint does not cover (all of it for a full rebuild)."""
        done = self.checkpoint.end if self.checkpoint else {}
        return Snapshot(start={tp: done.get(tp, snap.start[tp]) for tp in snap.end}, end=dict(snap.end))


def _usable(ckpt: Checkpoint, snap: Snapshot) -> str | None:
    """Why ``ckpt`` cannot be extended to ``snap``, or None when it can."""
    if ckpt.version != extraction_version():
        return f"the extraction changed since the checkpoint (version {ckpt.version}, now {extraction_version()})"
    for tp, offset in ckpt.end.items():
        if tp not in snap.end:
            return f"partition {tp[0]}[{tp[1]}] of the checkpoint is gone from the log"
        if offset > snap.end[tp]:
            return f"{tp[0]}[{tp[1]}] ends at {snap.end[tp]}, before the checkpoint's {offset} (topic recreated?)"
        if ckpt.start[tp] != snap.start[tp]:
            return (f"{tp[0]}[{tp[1]}] now starts at {snap.start[tp]}, the checkpoint at {ckpt.start[tp]} "
                    "(retention removed events)")
    return None


def base_for(store: ReleaseStore, latest_manifest: dict[str, Any] | None, snap: Snapshot, *,
             full: bool = False) -> Base:
    """Decide where a publish of ``snap`` starts: the latest release's checkpoint when it is usable."""
    if full:
        return Base(None, "full rebuild (requested)")
    if latest_manifest is None:
        return Base(None, "full rebuild (no earlier release)")
    release_id = latest_manifest["release_id"]
    if not latest_manifest.get("checkpoint"):
        return Base(None, f"full rebuild (release {release_id} has no checkpoint)")
    try:
        body, _ = store.get_json(latest_manifest["checkpoint"])
        if body is None:
            return Base(None, f"full rebuild (the checkpoint of release {release_id} is missing)")
        ckpt = Checkpoint.from_json(body)
    except (BallotstreamError, ValueError, KeyError, TypeError) as exc:
        return Base(None, f"full rebuild (the checkpoint of release {release_id} is unreadable: {exc})")
    why = _usable(ckpt, snap)
    if why:
        return Base(None, f"full rebuild ({why})")
    return Base(ckpt, f"incremental from release {release_id}", release_id)


def fetch_segments(store: ReleaseStore | None, segments: list[Segment], cache: Path) -> list[Path]:
    """Each segment as a local folder in ``cache`` holding its memory-mappable copy (``mapped_copy``), for
    ``load_segments``.

    A folder whose copy lists the segment's parts, each at its recorded size, is taken as it is: the copy's bytes
    are checked as they are loaded. Otherwise the zstd files are checked against the checkpoint's sha256s and
    sizes, downloaded (again) when they are not here intact, and the copy is made from them.

    Raises:
        CheckpointUnusable: a file is missing (or not here intact, without ``store``), or its bytes do not match.
    """
    folders = []
    for segment in segments:
        folder = cache / segment.segment_id
        if not mapped_copy.listed(folder, segment.files):
            _fetch_compressed(store, segment, cache)
            _make_copy(folder, segment.files)
        folder.touch()  # in use: not pruned for another hour (``Pending.prune_cache``)
        folders.append(folder)
    return folders


def _fetch_compressed(store: ReleaseStore | None, segment: Segment, cache: Path) -> None:
    """Have ``segment``'s zstd files in ``cache`` intact: checked against their checksums, else downloaded."""
    folder = cache / segment.segment_id
    damage = _damage(folder, segment) if folder.is_dir() else None
    if damage:
        # Changed since it was saved or verified (a disk error, a hand edit): fetched again, like a download
        # with a bad checksum; without a bucket, the checkpoint cannot be used (and a rebuild saves it anew).
        shutil.rmtree(folder, ignore_errors=True)
        if store is None:
            raise CheckpointUnusable(f"cached segment {segment.segment_id}: {damage}")
    if folder.is_dir():
        return
    if store is None:
        raise CheckpointUnusable(f"segment {segment.segment_id} is not in {cache} (and no bucket to fetch it from)")
    partial = cache / f".{segment.segment_id}-{uuid.uuid4().hex[:8]}"
    partial.mkdir(parents=True)
    try:
        for part, expected in segment.files.items():
            key = segment_prefix(store, segment.segment_id) + f"{part}.arrow"
            sha256, size = store.get_file(key, partial / f"{part}.arrow")
            if (sha256, size) != (expected["sha256"], expected["bytes"]):
                raise CheckpointUnusable(f"{key}: downloaded {size:,} bytes with sha256 {sha256}, the "
                                         f"checkpoint says {expected['bytes']:,} with {expected['sha256']}")
        # A rename, so a concurrent publisher never sees a half-downloaded segment.
        partial.rename(folder)
    except FileNotFoundError as exc:
        raise CheckpointUnusable(f"segment {segment.segment_id} is incomplete: {exc}") from exc
    except OSError:
        if not folder.is_dir():  # another publisher's rename won: its copy is as good
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _make_copy(folder: Path, parts: Iterable[str]) -> None:
    """Make ``folder``'s memory-mappable copy anew from its zstd files (checked by the caller). The copy only
    saves time: when it cannot be written (a full disk), the zstd files are loaded instead (``load_segments``)."""
    mapped_copy.discard(folder)  # one there is damaged or incomplete
    scratch = folder.parent / f".copy-{folder.name}-{uuid.uuid4().hex[:8]}"
    try:
        mapped_copy.write_from(folder, parts, scratch)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        return
    mapped_copy.install(scratch, folder)


def _damage(folder: Path, segment: Segment) -> str | None:
    """What differs between a cached segment's files and the checksums and sizes the checkpoint lists, if any."""
    for part, expected in segment.files.items():
        path = folder / f"{part}.arrow"
        try:
            size = path.stat().st_size
            if size != expected["bytes"]:
                return f"{path} has {size:,} bytes, the checkpoint says {expected['bytes']:,}"
            if file_sha256(path) != expected["sha256"]:
                return f"{path} does not have the sha256 the checkpoint lists"
        except OSError as exc:
            return f"{path} cannot be read ({exc.strerror or exc})"
    return None


def load_segments(folders: list[Path]) -> list[Extracted]:
    """The extraction of each segment folder of ``fetch_segments``, memory-mapped from its copy.

    Raises:
        CheckpointUnusable: the copy is damaged (or gone) and so are the zstd files.
    """
    return [_load_segment(f) for f in folders]


def _load_segment(folder: Path) -> Extracted:
    try:
        return mapped_copy.load(folder)
    except mapped_copy.CopyDamaged as exc:
        damage = exc
    # Damaged or gone since ``fetch_segments`` looked (a disk error, another publisher's pruning): the zstd files
    # are loaded instead when they are still those the segment was saved as, and the copy is made from them
    # again for the next publish.
    files = _saved_files(folder)
    if files is None:
        raise CheckpointUnusable(f"segment {folder.name}: {damage}; and its zstd files are not those it was "
                                 "saved with")
    _make_copy(folder, files)
    return load_extraction(folder)


def open_segments(store: ReleaseStore | None, segments: list[Segment], cache: Path
                  ) -> tuple[list[Path], list[Extracted], bool]:
    """``fetch_segments``, then ``load_segments``; a copy found damaged as it is loaded is dealt with as
    ``fetch_segments`` deals with a damaged file: the segment is fetched again (downloaded when its zstd files
    are not here intact) and its copy made anew. The copies ``load_ahead`` has loaded are taken as they are;
    the third value says whether they were.

    Raises:
        CheckpointUnusable: as ``fetch_segments``.
    """
    folders = fetch_segments(store, segments, cache)
    ahead = mapped_copy.loaded_ahead(folders)
    if ahead is not None:
        return folders, ahead, True
    parts = []
    for segment, folder in zip(segments, folders, strict=True):
        try:
            parts.append(mapped_copy.load(folder))
        except mapped_copy.CopyDamaged:
            mapped_copy.discard(folder)
            fetch_segments(store, [segment], cache)
            parts.append(_load_segment(folder))
    return folders, parts, False


def load_ahead(segments: list[Segment], cache: Path) -> bool:
    """Start loading ``segments``' local copies in a thread (``mapped_copy.load_ahead``), for the ``open_segments``
    of the same segments that follows; only when every copy is here at its recorded size, so that the thread
    never downloads or writes. Returns whether it started."""
    folders = [cache / s.segment_id for s in segments]
    if not segments or not all(mapped_copy.listed(f, s.files) for f, s in zip(folders, segments, strict=True)):
        return False
    mapped_copy.load_ahead(folders)
    return True


def _segment_id(files: dict[str, dict[str, Any]]) -> str:
    """A segment's id: from its files' checksums and sizes, so that the same content gets the same name."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:24]


def _saved_files(folder: Path) -> dict[str, dict[str, Any]] | None:
    """The checksums and sizes of the zstd files in ``folder``, when they give its name (the segment's id);
    None when they do not (a file changed, missing or added) or cannot be read."""
    try:
        files = {p.stem: {"sha256": file_sha256(p), "bytes": p.stat().st_size} for p in folder.glob("*.arrow")}
    except OSError:
        return None
    return files if _segment_id(files) == folder.name else None


def save_segment(extracted: Extracted, directory: Path) -> tuple[Segment, Path]:
    """Save ``extracted`` as a segment under ``directory`` (zstd Arrow IPC), with the memory-mappable copy a
    publish loads (``mapped_copy``); returns it and its folder."""
    scratch = directory / f".segment-{uuid.uuid4().hex[:12]}"
    paths = save_extraction(extracted, scratch, compression="zstd")
    mapped_copy.write(extracted, scratch / mapped_copy.COPY_FOLDER)
    files = {part: {"sha256": file_sha256(p), "bytes": p.stat().st_size} for part, p in sorted(paths.items())}
    segment_id = _segment_id(files)
    folder = directory / segment_id
    try:
        scratch.rename(folder)
    except OSError:
        # The same content already there (an earlier run, or another publisher that read the same offsets);
        # given this copy when it has none of its own (saved before copies were kept, or pruned since).
        if not folder.is_dir():
            raise
        if not mapped_copy.listed(folder, files):
            mapped_copy.discard(folder)
            mapped_copy.install(scratch / mapped_copy.COPY_FOLDER, folder)
        shutil.rmtree(scratch, ignore_errors=True)
    return Segment(segment_id, files), folder


def upload_segment(store: ReleaseStore, segment: Segment, folder: Path) -> None:
    """Upload one segment's files from ``folder`` (checksums taken from the uploaded bytes)."""
    for part, expected in segment.files.items():
        staged = StagedFile(part, folder / f"{part}.arrow", 0, expected["bytes"], expected["sha256"])
        store.put_verified(segment_prefix(store, segment.segment_id) + f"{part}.arrow", staged,
                           content_type=ARROW_TYPE)


@dataclass
class Pending:
    """The checkpoint a publish will leave when its release is written, with the local folders of its segments
    (those it read from its base and those it saved itself, which it uploads)."""

    checkpoint: Checkpoint
    local: dict[str, Path]  # segment id -> local folder, every segment of ``checkpoint``
    new: frozenset[str]  # ids of the segments this run saved (to upload)

    def folders(self) -> list[Path]:
        """The segments' local folders in merge order."""
        return [self.local[s.segment_id] for s in self.checkpoint.segments]

    def upload(self, store: ReleaseStore, release_id: str) -> str:
        """Upload the new segments (checksums taken from the uploaded bytes), then the checkpoint document;
        returns the document's key."""
        for segment in self.checkpoint.segments:
            if segment.segment_id in self.new and not later.finish(segment.segment_id):
                upload_segment(store, segment, self.local[segment.segment_id])
        key = checkpoint_key(store, release_id)
        store.put_json(key, self.checkpoint.to_json())
        return key

    def prune_cache(self, min_age_s: float = 3600.0, copy_min_age_s: float = 600.0) -> None:
        """Remove cached segments this checkpoint does not use (after its release is published), once unused for
        ``min_age_s``: another publish on this machine may still be loading one it started from. Their
        memory-mappable copies, most of the bytes (1.3 GB at a million stations, a new one at every compaction),
        go sooner, once unused for ``copy_min_age_s``: a publish that has one mapped keeps reading it, and one
        that has not loads the zstd files instead, only slower. The table files and key fingerprints kept beside
        them are ``reuse.prune``'s, the document blocks ``cdf_blocks.prune``'s."""
        keep = set(self.local.values())
        for root in {folder.parent for folder in keep}:
            for folder in root.iterdir():
                if folder in keep or folder.name in (TABLE_FILES_FOLDER, DOCUMENT_BLOCKS_FOLDER, KEY_PRINTS_FOLDER):
                    continue
                try:
                    seen = folder.stat()
                    if time.time() - seen.st_mtime > min_age_s:
                        shutil.rmtree(folder, ignore_errors=True)
                    elif time.time() - seen.st_mtime > copy_min_age_s and not folder.name.startswith("."):
                        # A segment (not a scratch folder): its copy goes, the zstd files stay.
                        mapped_copy.discard(folder)
                        os.utime(folder, ns=(seen.st_atime_ns, seen.st_mtime_ns))  # still unused since then
                except OSError:
                    pass  # removed by another publish meanwhile


@dataclass
class Extension:
    """A snapshot's whole extraction, made from a base checkpoint and the offsets read after it."""

    extracted: Extracted | None
    pending: Pending
    reason: str
    events_read: int
    timings: dict[str, float]
    # The first envelope row of the events read after the base checkpoint (None: a full rebuild): the
    # extraction holds the checkpoint's events first.
    new_from: int | None = None


@dataclass(frozen=True)
class RangeRead:
    """What reading one range of offsets leaves for the step that combines the ranges: where the events went
    (segments, by id and checksums: one per read worker), never the events themselves."""

    offsets: Snapshot
    segments: tuple[Segment, ...]  # in merge order; none: the range held no events
    uploaded: bool  # the segments are in the bucket already: a step on another machine can fetch them
    schema_ids: dict[tuple[str, str], int]
    timings: dict[str, float]
    workers: int
    started: float = 0.0  # wall-clock time (``time.time()``) the read began and ended: the ranges' read
    ended: float = 0.0  # stage spans from the first start to the last end, one after another or side by side

    @property
    def events(self) -> int:
        return self.offsets.total()


# How a range is read: ``read_snapshot``'s call, each share's extraction handed to ``keep`` where it was read.
Read = Callable[..., ReadResult]


def plan_ranges(settings: Settings, snap: Snapshot, base: Base) -> list[Snapshot]:
    """The offsets ``base`` lacks of ``snap``, as up to ``settings.read_ranges`` ranges of whole partitions with
    about equal event counts, each of at least ``settings.read_range_min_events`` events where possible.

    Never empty: with nothing to read it is one empty range, so that the step combining the ranges still runs.
    """
    delta = base.delta(snap)
    wanted = max(1, min(settings.read_ranges, delta.total() // settings.read_range_min_events))
    return split(delta, wanted) or [delta]


def read_range(settings: Settings, offsets: Snapshot, cache: Path, *, store: ReleaseStore | None = None,
               read: Read = read_snapshot, upload_later: bool = False) -> RangeRead:
    """``read`` one range, each read worker saving its share's extraction as a segment in ``cache`` (side by side,
    where the share was read: no copy of the events passes through this process); with ``store``, upload them
    too (for a combining step on another machine; the release then does not upload them again).
    ``upload_later``: the run's later steps share this process, and the upload runs in a thread that the release
    waits for (``pipelines.release.later``)."""
    started = time.time()
    if not offsets.total():
        return RangeRead(offsets, (), False, {}, {}, 0, started, started)
    result = read(settings, offsets, keep=functools.partial(save_segment, directory=cache))
    timings = result.timings()
    timings["checkpoint_save_s"] = max(w.get("keep_s", 0.0) for w in result.worker_seconds)
    saved: list[tuple[Segment, Path]] = list(result.kept)
    if len(saved) != result.workers:  # a reader that ignored ``keep``: its events would be in no segment
        raise ValueError(f"the read of {offsets.total()} events kept {len(saved)} shares of {result.workers}")
    schema_ids, workers = dict(result.schema_ids), result.workers
    del result
    t0 = time.perf_counter()
    for segment, folder in saved:
        if store is not None and upload_later:
            later.start(segment.segment_id, functools.partial(upload_segment, store, segment, folder))
        elif store is not None:
            upload_segment(store, segment, folder)
    if store is not None and not upload_later:
        timings["segment_upload_s"] = time.perf_counter() - t0
    uploaded = store is not None and not upload_later
    return RangeRead(offsets, tuple(segment for segment, _ in saved), uploaded, schema_ids, timings, workers,
                     started, time.time())


def read_timings(reads: list[RangeRead]) -> dict[str, float]:
    """The ranges' read figures for the publish report: the slowest range's per stage, the totals of work done
    once per range, and the wall time from the first range's start to the last one's end."""
    done = [r for r in reads if r.segments]
    if not done:
        return {"read_wall_s": 0.0, "read_ranges": 0}
    timings: dict[str, float] = {k: max(r.timings.get(k, 0.0) for r in done)
                                 for k in ("consume_decode_s", "extract_s", "merge_s")}
    for key in ("checkpoint_save_s", "segment_upload_s"):
        timings[key] = sum(r.timings.get(key, 0.0) for r in done)
    timings["read_wall_s"] = max(r.ended for r in done) - min(r.started for r in done)
    timings.update({"read_workers": sum(r.workers for r in done), "read_ranges": len(done)})
    return timings


def _covered(snap: Snapshot, ckpt: Checkpoint) -> Snapshot:
    """The offsets of ``snap`` that ``ckpt`` holds (what a full rebuild reads besides the delta)."""
    return Snapshot(start={tp: snap.start[tp] for tp in ckpt.end}, end=dict(ckpt.end))


def combine(settings: Settings, snap: Snapshot, base: Base, reads: list[RangeRead], store: ReleaseStore | None,
            cache: Path, *, read: Read = read_snapshot,
            max_segments: int = MAX_SEGMENTS) -> Extension:
    """Merge ``base``'s segments and the segments of ``reads`` (the ranges of ``plan_ranges``) into the
    extraction of the whole snapshot, with the checkpoint it leaves.

    A base whose segments cannot be fetched becomes a full rebuild (``reason`` says why): the offsets it held
    are read here. Past ``max_segments`` the merged extraction is saved as the checkpoint's only segment.

    Raises:
        CheckpointUnusable: a range's segment is neither in ``cache`` nor in the bucket.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    segments = list(base.checkpoint.segments) if base.checkpoint else []
    try:
        folders, parts, ahead = open_segments(store, segments, cache)
        timings["checkpoint_loaded_ahead"] = float(ahead)
    except CheckpointUnusable as exc:
        reads = [read_range(settings, _covered(snap, base.checkpoint), cache, read=read), *reads]
        t0 += reads[0].ended - reads[0].started  # that read is in ``read_wall_s``, not in the load time
        base = Base(None, f"full rebuild (the checkpoint of release {base.release_id}: {exc})")
        segments, folders, parts = [], [], []
    new = [segment for r in reads for segment in r.segments]
    new_from = sum(p.envelope.num_rows for p in parts) if base.checkpoint is not None else None
    new_folders, new_parts, _ = open_segments(store, new, cache)
    folders, parts, segments = folders + new_folders, parts + new_parts, segments + new
    local = dict(zip((s.segment_id for s in segments), folders, strict=True))
    timings["checkpoint_load_s"] = time.perf_counter() - t0
    timings.update(read_timings(reads))
    schema_ids = dict(base.checkpoint.schema_ids) if base.checkpoint else {}
    for r in reads:
        schema_ids.update(r.schema_ids)
    t0 = time.perf_counter()
    merged = merge(parts)
    del parts
    timings["checkpoint_merge_s"] = time.perf_counter() - t0
    upload = {segment.segment_id for r in reads if not r.uploaded for segment in r.segments}
    # Past the limit, the merge of everything is saved as the only segment (each one costs a download and a merge).
    if new and len(segments) >= max_segments:
        t0 = time.perf_counter()
        segment, folder = save_segment(merged, cache)
        segments, local, upload = [segment], {segment.segment_id: folder}, {segment.segment_id}
        timings["checkpoint_save_s"] = timings.get("checkpoint_save_s", 0.0) + time.perf_counter() - t0
    pending = Pending(Checkpoint(extraction_version(), dict(snap.start), dict(snap.end), segments, schema_ids),
                      local, frozenset(upload))
    return Extension(merged, pending, base.reason, sum(r.events for r in reads), timings, new_from)


def extend(settings: Settings, snap: Snapshot, base: Base, store: ReleaseStore | None, cache: Path, *,
           read: Read = read_snapshot, max_segments: int = MAX_SEGMENTS
           ) -> Extension:
    """``plan_ranges``, ``read_range`` each one here (one after another), ``combine``: what the publish job does
    with one step per range, in one call."""
    reads = [read_range(settings, r, cache, read=read) for r in plan_ranges(settings, snap, base)]
    return combine(settings, snap, base, reads, store, cache, read=read, max_segments=max_segments)
