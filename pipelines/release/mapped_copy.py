"""The local copy of a checkpoint segment that a publish loads: uncompressed Arrow IPC, memory-mapped.

A segment travels as zstd Arrow IPC (``checkpoint``), checked against the sha256 its checkpoint lists when it is
downloaded. Loading that copy means decompressing every byte of it on every publish (about 1.3 GB at a million
stations), so each segment folder in the local cache also holds ``mapped/``: the same parts, uncompressed, which
the loader maps instead of reading; the fold then pages in what it touches from the page cache.

The copy is only ever made from bytes already trusted: at ``save_segment`` from the tables the zstd files were
just written from, later from zstd files whose sha256s were checked. It is written in a scratch folder and
renamed into place, so a publisher never sees half a copy, and one of two racing publishers' copies wins.

How it is trusted afterwards: ``crc32c.json``, written with the copy, holds each file's size and CRC32C, and
every load checks every file against it, on the very bytes it then reads (the mapped file). The check is there
for accidental damage (a disk error, a hand edit, a copy cut short), what re-hashing the cached zstd files with
sha256 guarded against; a CRC-32C catches every burst error of up to 32 bits and any other change but one in
2^32. It runs at about 15 GB/s (SSE4.2), against sha256's 1 GB/s, so the million-station copy is checked in about
0.1 s (plus mapping its pages in) rather than 1.3 s; the pages are let go of as they are checked, so that only
those the fold reads stay resident in the publisher. Trusting size and mtime instead would
cost nothing, but would miss damage that keeps both (a bit flipped on disk), and wrong data in the checkpoint
goes into every later release. Deliberate forgery is not what this defends against: whoever can write the
publisher's cache can write its staging folder and its code too. A copy that fails its check is never read: it
is made again from the zstd copy (``checkpoint.load_segments``).
"""

from __future__ import annotations

import json
import mmap
import shutil
import threading
import uuid
import weakref
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path

import crc32c
import pyarrow as pa

from pipelines.errors import BallotstreamError
from pipelines.fold.extract import Extracted
from pipelines.fold.extraction_files import load_extraction, save_extraction, save_part

# The copy's folder inside its segment's, so that removing the segment removes it (``Pending.prune_cache``).
COPY_FOLDER = "mapped"
RECORD = "crc32c.json"
RECORD_FORMAT = "ballotstream.segment-copy/1"


class CopyDamaged(BallotstreamError):
    """A segment's local copy is missing, incomplete, or not the bytes it was made with."""


# Checked a chunk at a time, each chunk's pages let go of once checked: only those the fold then reads stay
# resident in the process (a scoped publish reads a part of the 1.3 GB a million stations' copy holds).
CHUNK_BYTES = 4 << 20


# Every copy this process has mapped and still reads (a mapping goes when the last array on it does); a copy may be
# loaded in a thread (``load_ahead``) while another lets go of pages.
_MAPPED: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()
_MAPPED_LOCK = threading.Lock()


def let_go_of_pages() -> None:
    """Unmap the resident pages of every loaded copy. Safe at any time: the pages are clean and read-only, they stay
    in the kernel's page cache, and a page read again is mapped back from there (a minor fault, ~0.1 s a
    gigabyte). A scoped stage reads its columns one after another, each once: letting go of each column's pages
    once read keeps the process from holding the whole gigabyte of a million stations' copy at once."""
    with _MAPPED_LOCK:
        maps = list(_MAPPED)
    _let_go(maps)


def _let_go(maps: list[mmap.mmap]) -> None:
    # Also called as a copy is loaded: Arrow's IPC reader touches every record batch of a file it reads, and each
    # touch maps a page cache folio of up to 2 MB (a million stations' copy was 1.3 GB resident once loaded,
    # though the checksum had let go of it). The fold maps back in what it reads.
    for data in maps:
        try:
            data.madvise(mmap.MADV_DONTNEED)
        except (ValueError, OSError):  # closed meanwhile
            pass


def _checksum(data: mmap.mmap | bytes) -> tuple[int, int]:
    """(bytes, CRC32C) of ``data``."""
    view = memoryview(data)
    crc = 0
    for start in range(0, len(view), CHUNK_BYTES):
        crc = crc32c.crc32c(view[start:start + CHUNK_BYTES], crc)
        if isinstance(data, mmap.mmap):  # clean pages of a file: read again from the page cache if needed
            data.madvise(mmap.MADV_DONTNEED, start, min(CHUNK_BYTES, len(view) - start))
    return len(view), crc


def _write_record(directory: Path) -> None:
    """Record each file's size and CRC32C, read back from what was written."""
    parts = {}
    for path in sorted(directory.glob("*.arrow")):
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            size, crc = _checksum(data)
        parts[path.stem] = {"bytes": size, "crc32c": crc}
    (directory / RECORD).write_text(json.dumps({"format": RECORD_FORMAT, "parts": parts}, sort_keys=True))


def write(extracted: Extracted, directory: Path) -> None:
    """Write ``extracted`` as a copy in ``directory`` (which must not exist)."""
    save_extraction(extracted, directory)
    _write_record(directory)


def write_from(source: Path, parts: Iterable[str], directory: Path) -> None:
    """Write the copy of the (compressed) ``parts`` in folder ``source`` in ``directory`` (which must not exist),
    one part in memory at a time."""
    directory.mkdir(parents=True)
    for part in parts:
        table = pa.ipc.open_file(pa.memory_map(str(source / f"{part}.arrow"))).read_all()
        save_part(table, directory / f"{part}.arrow")
        del table
    _write_record(directory)


def install(scratch: Path, folder: Path) -> None:
    """Rename the copy written in ``scratch`` to ``folder``'s; when another publisher's copy is there first (or
    the folder is gone), drop ``scratch``: a copy found there is checked like any other when it is loaded."""
    try:
        scratch.rename(folder / COPY_FOLDER)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)


def discard(folder: Path) -> None:
    """Remove ``folder``'s copy: renamed away first, so that nobody opens a file of it half removed (a
    publisher that has it mapped keeps reading the bytes it checked)."""
    gone = folder.parent / f".discarded-{folder.name}-{uuid.uuid4().hex[:8]}"
    try:
        (folder / COPY_FOLDER).rename(gone)
    except OSError:
        return  # not there, or removed by another publisher meanwhile
    shutil.rmtree(gone, ignore_errors=True)


def _record(folder: Path) -> dict[str, dict[str, int]]:
    try:
        body = json.loads((folder / COPY_FOLDER / RECORD).read_text())
        if body.get("format") != RECORD_FORMAT:
            raise CopyDamaged(f"{folder / COPY_FOLDER / RECORD}: format {body.get('format')!r}")
        return {str(k): {"bytes": int(p["bytes"]), "crc32c": int(p["crc32c"])} for k, p in body["parts"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CopyDamaged(f"{folder / COPY_FOLDER / RECORD} is missing or unreadable ({exc})") from exc


def listed(folder: Path, parts: Iterable[str]) -> bool:
    """Whether ``folder`` has a copy of exactly ``parts``, each file of the size recorded for it (what a publish
    checks before it loads: the bytes themselves are checked as they are loaded, ``load``)."""
    try:
        record = _record(folder)
        return set(record) == set(parts) and all(
            (folder / COPY_FOLDER / f"{part}.arrow").stat().st_size == r["bytes"] for part, r in record.items())
    except (CopyDamaged, OSError):
        return False


def load(folder: Path) -> Extracted:
    """``folder``'s copy, memory-mapped, each file checked against its recorded size and CRC32C first.

    Raises:
        CopyDamaged: the copy is missing, a file is missing or extra, or a file's bytes are not those recorded.
    """
    record = _record(folder)
    seen = set()
    mapped: list[mmap.mmap] = []

    def check(part: str, data: mmap.mmap | bytes) -> None:
        expected = record.get(part)
        if expected is None or _checksum(data) != (expected["bytes"], expected["crc32c"]):
            raise CopyDamaged(f"{folder / COPY_FOLDER / part}.arrow is not the file recorded when the copy was made")
        seen.add(part)
        _let_go(mapped)  # the parts before this one are read
        if isinstance(data, mmap.mmap):
            with _MAPPED_LOCK:
                _MAPPED.add(data)
            mapped.append(data)

    try:
        extracted = load_extraction(folder / COPY_FOLDER, check)
    except OSError as exc:  # pyarrow's IO errors are OSErrors: a file missing, or removed meanwhile
        raise CopyDamaged(f"{folder / COPY_FOLDER} cannot be read ({exc})") from exc
    _let_go(mapped)
    if seen != set(record):
        raise CopyDamaged(f"{folder / COPY_FOLDER} lacks {', '.join(sorted(set(record) - seen))}")
    return extracted


# The one load started ahead and not yet taken: (its folders, its result).
_ahead: tuple[tuple[Path, ...], Future[list[Extracted]]] | None = None
_AHEAD_LOCK = threading.Lock()


def load_ahead(folders: list[Path]) -> None:
    """Start ``load`` of each of ``folders`` in a thread of its own, for ``loaded_ahead`` of the same folders to
    take. A new load ahead replaces one that was not taken.

    The check of a million stations' copy reads 1.3 GB (0.6-0.9 s of an election-night publish on a slow machine,
    most of its checkpoint load) and lets go of the interpreter, so it can run while the publish reads the new
    events from Kafka. The thread only reads: a process that ends before the load is taken leaves nothing behind.
    """
    global _ahead
    future: Future[list[Extracted]] = Future()

    def run() -> None:
        try:
            future.set_result([load(folder) for folder in folders])
        except BaseException as exc:  # noqa: BLE001 (handed to whoever takes the load: ``loaded_ahead``)
            future.set_exception(exc)

    with _AHEAD_LOCK:
        _ahead = (tuple(folders), future)
    threading.Thread(target=run, name="copy-load-ahead", daemon=True).start()


def loaded_ahead(folders: list[Path]) -> list[Extracted] | None:
    """What ``load_ahead`` of exactly ``folders`` loaded, once it has (taken once). None when no such load was
    started, or it failed: the caller then loads the folders itself, which is where a damaged copy is dealt with."""
    global _ahead
    with _AHEAD_LOCK:
        if _ahead is None or _ahead[0] != tuple(folders):
            return None
        future, _ahead = _ahead[1], None
    try:
        return future.result()
    except Exception:  # noqa: BLE001 (loaded again by the caller, which raises what it finds)
        return None
