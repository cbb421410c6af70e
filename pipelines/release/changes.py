"""The manifest's ``changes``: rows added, changed and removed per table since the previous release, and the
corrections applied; counted beside the gate (``ChangesAhead``) so that the release step does not wait for them.

The count reads only the table files the two releases do not share, and those mostly with Arrow's and numpy's
kernels, which let go of the interpreter: in a thread it runs on the second core while Great Expectations, which
does not, holds the first. The release uses what was counted ahead only when it is about the same files and the
same previous release (a withheld unit re-stages the tables; another publisher may have moved ``latest.json``);
else it counts again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.fold.tables import KEYS
from pipelines.release import reuse
from pipelines.release.diff import diff_tables
from pipelines.release.parquet import ParquetParts, StagedFile
from pipelines.release.store import ReleaseStore

# The columns of corrections that the manifest lists for each correction applied.
_CORRECTION_COLUMNS = ["correction_event_id", "target_event_id", "kind", "reason", "key"]


def differing_rows(store: ReleaseStore, previous: dict[str, Any], name: str, staged_file: StagedFile,
                   kept: Path, counts: Counter[str]) -> tuple[Any, Any]:
    """(old, new) sources of the rows of table ``name`` that may differ between the releases.

    A file both releases list (same sha256) holds the same rows in both, and the keys in it are in no other file
    (keys are unique in each table, whatever its row order): leaving it out of both sides changes no count. So
    only the files that differ are read, which for a large table after a few corrections is a few files, not the
    table: from ``kept`` (the local cache of the last release's files, ``reuse``) when there intact, else
    downloaded; ``counts`` counts each way.
    """
    entry = previous["tables"][name]
    keys = store.table_keys(previous, name)
    old_shas = [f["sha256"] for f in entry["files"]] if "files" in entry else [entry["sha256"]]
    parts = staged_file.parts or (staged_file,)
    shared = set(old_shas) & {p.sha256 for p in parts}
    old_files = []
    for key, sha in zip(keys, old_shas, strict=True):
        if sha not in shared:
            data = reuse.kept_bytes(kept, sha)
            counts["changes_files_local" if data is not None else "changes_files_downloaded"] += 1
            if data is None:
                data = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
            old_files.append(pa.BufferReader(data))
    new_paths = [p.path for p in parts if p.sha256 not in shared]
    schema = pq.read_schema(parts[0].path)
    # Text as dictionaries: the diff codes every column, and Parquet's dictionary pages already are codes (reading a
    # string per row, then hashing each, took most of a count at a million stations).
    return (ParquetParts(old_files, schema, text_as_dictionary=True),
            ParquetParts(new_paths, schema, text_as_dictionary=True))


@dataclass(frozen=True)
class Known:
    """Tables' changes counted where they were staged (``scoped.ScopedStage.changes``): since release ``since``,
    for the files whose sha256 is given."""

    since: str | None
    tables: dict[str, tuple[str, dict[str, int]]]  # name -> (staged sha256, counts)

    def of(self, previous: dict[str, Any] | None, name: str, staged_file: StagedFile) -> dict[str, int] | None:
        """The counts of ``staged_file`` since ``previous``, when counted; None otherwise."""
        sha, counts = self.tables.get(name, (None, None))
        since = previous["release_id"] if previous else None
        return counts if since is not None and since == self.since and sha == staged_file.sha256 else None


def count_changes(store: ReleaseStore, previous: dict[str, Any] | None, files: Mapping[str, StagedFile],
                  kept: Path, known: Known | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """The manifest's ``changes`` of ``files`` since ``previous`` (the previous release's files read from
    ``kept`` where they are kept there; a table ``known`` counted already is not read), and the timings
    ``changes_s``, tables known and files read each way."""
    t0 = time.perf_counter()
    counts: Counter[str] = Counter(changes_files_local=0, changes_files_downloaded=0, changes_tables_known=0)
    tables: dict[str, Any] = {}
    applied: list[dict[str, Any]] = []
    for name, staged_file in files.items():
        counted = known.of(previous, name, staged_file) if known is not None and name != "corrections" else None
        if counted is not None:
            tables[name] = counted
            counts["changes_tables_known"] += 1
            continue
        if previous and name in previous["tables"]:
            old, new = differing_rows(store, previous, name, staged_file, kept, counts)
        else:
            old, new = None, ParquetParts(staged_file.paths(), text_as_dictionary=True)
        tables[name] = diff_tables(old, new, list(KEYS[name]))
        if name == "corrections":
            # Corrections in files both releases share were applied before: only the differing rows can be new.
            before = set() if old is None else set(old.read(columns=["correction_event_id"]).column(0).to_pylist())
            applied = [c for c in new.read(columns=_CORRECTION_COLUMNS).to_pylist()
                       if c["correction_event_id"] not in before]
    changes = {"previous_release": previous["release_id"] if previous else None, "tables": tables,
               "corrections": sorted(applied, key=lambda c: c["correction_event_id"])}
    return changes, {"changes_s": time.perf_counter() - t0, **counts}


def _files_key(files: Mapping[str, StagedFile]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, f.sha256) for name, f in files.items()))


@dataclass(frozen=True)
class Counted:
    """Changes counted ahead: of which files, since which release (None: the first), and the timings."""

    files: tuple[tuple[str, str], ...]
    previous_release: str | None
    changes: dict[str, Any]
    timings: dict[str, float]

    def fits(self, previous: dict[str, Any] | None, files: Mapping[str, StagedFile]) -> bool:
        """Whether these are the changes of ``files`` since ``previous``."""
        return self.previous_release == (previous["release_id"] if previous else None) \
            and self.files == _files_key(files)


class ChangesAhead:
    """``count_changes`` in a thread of its own, started now; ``result`` waits for it."""

    def __init__(self, store: ReleaseStore, previous: dict[str, Any] | None, files: Mapping[str, StagedFile],
                 kept: Path, known: Known | None = None) -> None:
        self._files, self._previous = dict(files), previous
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="changes-ahead")
        self._future: Future = self._pool.submit(count_changes, store, previous, self._files, kept, known)
        self._pool.shutdown(wait=False)

    def result(self) -> Counted | None:
        """The counted changes, once counted; None when counting failed (the release step counts again, and
        says why if it fails too)."""
        if self._future.exception() is not None:
            return None
        changes, timings = self._future.result()
        return Counted(_files_key(self._files), self._previous["release_id"] if self._previous else None,
                       changes, timings)
