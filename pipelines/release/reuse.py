"""Table files reused from the last release: a publish encodes as Parquet only the files whose content changed.

Every publish folds the whole snapshot and cuts each large table into content-defined files
(``parquet.chunk_bounds``); after a few tallies most files hold the rows they held in the last release, and
encoding them again (dictionary pages, zstd) costs far more than hashing the Arrow data they are made from. So
each file gets a *fingerprint* of that data, taken before encoding (``pipelines.release.fingerprints``). The
release's checkpoint keeps, per fingerprint, the sha256, rows and bytes of the file it gave
(``Checkpoint.table_files``), and the publisher keeps each file it stages in its local cache under its sha256
(``checkpoint.table_files_folder``). A file whose
fingerprint the last release lists, and whose kept copy has that size and sha256, is linked into the staging
folder instead of written: the same bytes a fresh write gives. Anything else (a fingerprint not listed, a kept
copy missing or damaged, a malformed checkpoint entry) means writing the file, as without the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.fold.tables import ORDER
from pipelines.release import fingerprints, parquet
from pipelines.release.parquet import StagedFile, file_sha256

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class KeptFile:
    """A staged file as the checkpoint lists it under its fingerprint."""

    sha256: str
    rows: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "rows": self.rows, "bytes": self.bytes}


def kept_files(raw: Any) -> dict[str, KeptFile]:
    """The checkpoint's ``table_files`` by fingerprint, leaving out entries that are not well formed (the
    checkpoint is a document in the bucket: one edited by hand or cut short means writing those files, not a
    traceback). A sha256 must be 64 lower-case hex digits: it names a file in the cache."""
    if not isinstance(raw, dict):
        return {}
    out = {}
    for key, entry in raw.items():
        try:
            sha256, rows, size = entry["sha256"], entry["rows"], entry["bytes"]
        except (KeyError, TypeError):
            continue
        if (isinstance(key, str) and isinstance(sha256, str) and _SHA256.fullmatch(sha256)
                and type(rows) is int and type(size) is int and rows >= 0 and size > 0):
            out[key] = KeptFile(sha256, rows, size)
    return out


def _kept_path(folder: Path, sha256: str) -> Path:
    return folder / f"{sha256}.parquet"


Key = tuple


def first_key(name: str, table: pa.Table) -> Key | None:
    """The ``tables.ORDER`` key of ``table``'s first row (None for a table without rows or order)."""
    if name not in ORDER or table.num_rows == 0 or not set(ORDER[name]) <= set(table.column_names):
        return None
    return tuple(table[c][0].as_py() for c in ORDER[name])


def _first_key_path(kept: Path) -> Path:
    return kept.with_name(kept.name.removesuffix(".parquet") + ".first.json")


def kept_first_key(kept: Path, width: int) -> Key | None:
    """The first row's order key noted beside the kept file ``kept`` (``keep_first_key``), or None when there is
    no note or it is not one: the caller reads the file. A note is trusted as the file is (the cache is this
    machine's own); it names the file's sha256 so that a note copied beside another file is not."""
    try:
        note = json.loads(_first_key_path(kept).read_text())
        key = note["first"]
        if note["sha256"] != kept.name.removesuffix(".parquet") or not isinstance(key, list) or len(key) != width:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # Keys are ids and log positions: strings and integers, never null.
    if not all(isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in key):
        return None
    return tuple(key)


def keep_first_key(kept: Path, key: Key) -> None:
    """Note ``key``, the first row's order key of the kept file ``kept``, beside it (written whole by a rename,
    or not at all: a note missing only means reading the file's first row)."""
    if not all(isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in key):
        return  # not a value a note holds as it is: read from the file each time
    target = _first_key_path(kept)
    partial = kept.with_name(f".{target.name}-{uuid.uuid4().hex[:8]}")
    try:
        partial.write_text(json.dumps({"sha256": kept.name.removesuffix(".parquet"), "first": list(key)}))
        partial.replace(target)
    except OSError:
        partial.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        if not source.exists():
            raise
        shutil.copyfile(source, target)  # no hard links here (another file system, or one without them)


class TableFileCache:
    """Stages a table's files (a ``parquet.FileWriter``): each one linked from ``folder`` when ``kept`` lists its
    fingerprint and the kept copy is intact, else written and kept in ``folder`` for the next publish.

    Safe to use from several threads (a publish writes its tables side by side). ``written`` and ``reused`` count
    the files staged each way.
    """

    def __init__(self, folder: Path, kept: dict[str, KeptFile]):
        self.folder = folder
        self.kept = kept
        self.written = 0
        self.reused = 0
        self._staged: dict[Path, tuple[str, KeptFile]] = {}
        self._by_sha256: dict[str, str] | None = None
        self._lock = threading.Lock()

    def write(self, name: str, table: pa.Table, path: Path) -> StagedFile:
        # A file of one row group (the usual) is compacted once, for its fingerprint and its write; a larger one
        # twice, so that only one row group's copy is held at a time (``parquet._row_groups``).
        groups = list(parquet._row_groups(table)) if table.num_rows <= parquet.ROW_GROUP_ROWS else None
        key = fingerprints.fingerprint(table, groups)
        kept = self.kept.get(key)
        staged = self._link(name, table, path, kept) if kept is not None else None
        reused = staged is not None
        if staged is None:
            staged = parquet.write_file(name, table, path, groups)
            self._keep(staged, first_key(name, table))
        with self._lock:
            self._staged[path] = (key, KeptFile(staged.sha256, staged.rows, staged.bytes))
            if reused:
                self.reused += 1
            else:
                self.written += 1
        return staged

    def link_kept(self, name: str, sha256: str, rows: int, path: Path) -> StagedFile | None:
        """Stage the kept file with ``sha256`` (a file of the last release, unchanged) at ``path`` without reading
        its data; None when the last release's checkpoint does not list it or the kept copy is missing or
        damaged."""
        with self._lock:
            if self._by_sha256 is None:
                self._by_sha256 = {k.sha256: key for key, k in self.kept.items()}
        key = self._by_sha256.get(sha256)
        if key is None or self.kept[key].rows != rows:
            return None
        staged = self._link_file(name, rows, path, self.kept[key])
        if staged is not None:
            with self._lock:
                self._staged[path] = (key, self.kept[key])
                self.reused += 1
        return staged

    def kept_path(self, sha256: str) -> Path:
        """Where the cache keeps the file with ``sha256`` (which may be missing)."""
        return _kept_path(self.folder, sha256)

    def records(self, files: Iterable[StagedFile]) -> dict[str, dict[str, Any]]:
        """Fingerprint -> sha256, rows and bytes of every file of ``files`` (staged here): what the checkpoint
        keeps for the next publish."""
        out = {}
        for staged in files:
            for part in staged.parts or (staged,):
                key, kept = self._staged[part.path]
                out[key] = kept.to_json()
        return dict(sorted(out.items()))

    def _link(self, name: str, table: pa.Table, path: Path, kept: KeptFile) -> StagedFile | None:
        """``path`` as a link to (or copy of) the kept file when that is intact; None (and nothing at ``path``)
        when it is missing or damaged."""
        if kept.rows != table.num_rows:
            return None
        return self._link_file(name, table.num_rows, path, kept)

    def _link_file(self, name: str, rows: int, path: Path, kept: KeptFile) -> StagedFile | None:
        source = _kept_path(self.folder, kept.sha256)
        if not source.is_file():
            return None
        try:
            _link_or_copy(source, path)
            # Hashed again, though that is a fraction of encoding: a kept copy changed on disk (a disk error, a
            # hand edit) must not be staged, hence uploaded, under the sha256 the checkpoint lists.
            if path.stat().st_size == kept.bytes and file_sha256(path) == kept.sha256:
                return StagedFile(name, path, rows, kept.bytes, kept.sha256)
            source.unlink(missing_ok=True)  # damaged: the write that follows keeps a good copy
        except OSError:
            pass  # gone meanwhile (pruned by another publish): written instead
        path.unlink(missing_ok=True)
        return None

    def _keep(self, staged: StagedFile, first: Key | None) -> None:
        """Keep ``staged`` in the cache (a hard link: no copy of the bytes where the file system allows), with its
        first row's order key noted beside it (a splice finds the files around its rows by them)."""
        target = _kept_path(self.folder, staged.sha256)
        partial = self.folder / f".{staged.sha256}-{uuid.uuid4().hex[:8]}"
        try:
            if not (target.is_file() and target.stat().st_size == staged.bytes):
                self.folder.mkdir(parents=True, exist_ok=True)
                _link_or_copy(staged.path, partial)
                partial.replace(target)  # a rename: another publish never links a partial copy
        except OSError:
            partial.unlink(missing_ok=True)  # the cache only saves work: a file not kept is written next time
            return
        if first is not None and kept_first_key(target, len(first)) is None:
            keep_first_key(target, first)


def kept_bytes(folder: Path, sha256: str) -> bytes | None:
    """The bytes of the kept file with ``sha256``, when it is in ``folder`` and intact; else None."""
    if not _SHA256.fullmatch(sha256):
        return None
    try:
        data = _kept_path(folder, sha256).read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def prune(folder: Path, keep: set[str], min_age_s: float = 3600.0) -> int:
    """Remove the kept files whose sha256 is not in ``keep`` (the latest release's) with their first-key notes,
    and copies left partial longer than ``min_age_s`` (a publish that was killed); returns how many went. Any
    folder of files named ``<sha256>.<anything>`` is pruned so (the gate's key fingerprints too).

    A publish running beside this one may lose a file it meant to link or read: it writes or downloads it.
    """
    removed = 0
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        try:
            if path.name.startswith("."):
                if time.time() - path.stat().st_mtime <= min_age_s:
                    continue
            elif path.name.split(".", 1)[0] in keep:
                continue
            path.unlink()
            removed += 1
        except OSError:
            pass  # removed by another publish meanwhile
    return removed
