"""``parquet.chunk_bounds`` for a table that arrives a slice at a time: each file start as soon as it is final.

A fold that hands over a large table in key-ordered slices (instead of the whole table) can have its files
written while the rest is built, if the cuts can be decided without the whole table. They can: a run starts a
file when its key is the smallest of the candidates within half a file on either side (``chunk_bounds``), so a
candidate's fate is sealed once the stream has passed half a file beyond it. The three ways a whole table is one
file (small by row count, small by run count, no candidate at all) each stop applying for good once they stop
applying, so no start is given before they have.

``FileCuts`` gives exactly ``chunk_bounds`` of the concatenated slices, however the table is sliced (a run may
span slices; a slice may be dictionary-encoded with its own dictionary); ``tests/unit/test_stream_cuts.py``
checks this on random tables and slicings.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.release.parquet import (
    CANDIDATES_PER_FILE,
    MILLI,
    ONE_FILE_UP_TO,
    FileWriter,
    StagedFile,
    column_runs,
    smallest_within,
    tree_sha256,
    write_file,
    write_table,
)


class FileCuts:
    """Feed ``add`` the slices of a table in order, then call ``finish``; together they return the rows where
    each file starts (``[0, ...]``), the same list ``chunk_bounds`` gives for the whole table."""

    def __init__(self, column: str, width: tuple[float, float], file_bytes: int) -> None:
        self.column, (self.run_bytes, self.row_bytes), self.file_bytes = column, width, file_bytes
        self.half = file_bytes * MILLI // 2
        self.rows = 0
        self.runs = 0  # runs that start after row 0 (``chunk_bounds``' starts)
        self.last: object = None  # the value of the last row seen
        self.open_start: int | None = None  # the run still open (its size is not known yet), by its first row
        self.open_hash = 0
        self.position = 0  # where the open run starts, in thousandths of a byte, after the first run
        self.cand_at: list[int] = []
        self.cand_key: list[float] = []
        self.cand_row: list[int] = []
        self.given = [0]  # starts already returned (row 0 always starts the first file)
        self.decided = 0  # candidates whose fate is sealed

    def add(self, part: pa.Table) -> list[int]:
        """Take the next slice; the file starts that became final (beyond those returned already)."""
        if part.num_rows == 0:
            return []
        col = part.column(self.column).combine_chunks()
        starts, hashes = column_runs(col)
        first = col[0].as_py()
        if self.rows and first != self.last:  # the slice opens a run: hash its first value as column_runs would
            pair = pa.array([self.last, first], type=_value_type(col.type))
            starts = np.concatenate([[0], starts])
            hashes = np.concatenate([column_runs(pair)[1], hashes])
        for start, digest in zip((starts + self.rows).tolist(), hashes.tolist(), strict=True):
            self._open(start, digest)
        self.rows += part.num_rows
        self.last = col[len(col) - 1].as_py()
        return self._sealed(final=False)

    def finish(self) -> list[int]:
        """The file starts not returned yet: the table has ended."""
        self._close(self.rows)
        return self._sealed(final=True)

    def _open(self, start: int, digest: int) -> None:
        self._close(start)
        self.open_start, self.open_hash = start, digest
        self.runs += 1

    def _close(self, end: int) -> None:
        """The open run ends before row ``end``: its size and key are known now."""
        if self.open_start is None:
            return
        size = int(np.rint((self.run_bytes + (end - self.open_start) * self.row_bytes) * MILLI))
        key = self.open_hash * 2.0 ** -56 / (size / (self.file_bytes * MILLI))
        if key < CANDIDATES_PER_FILE:
            self.cand_at.append(self.position)
            self.cand_key.append(key)
            self.cand_row.append(self.open_start)
        self.position += size
        self.open_start = None

    def _one_file_yet(self) -> bool:
        """Whether ``chunk_bounds`` could still make the table one file: small so far, or no candidate so far
        (each stays false once false)."""
        return (self.rows * (self.run_bytes + self.row_bytes) <= ONE_FILE_UP_TO * self.file_bytes
                or (self.runs + 1) * self.run_bytes + self.rows * self.row_bytes <= ONE_FILE_UP_TO * self.file_bytes
                or not self.cand_at)

    def _sealed(self, final: bool) -> list[int]:
        if self._one_file_yet():
            return []
        at, keys = np.array(self.cand_at, np.int64), np.array(self.cand_key)
        # Sealed: every candidate within half a file after it is known (the open run starts beyond that).
        n = len(at) if final else int(np.searchsorted(at, self.position - self.half, side="left"))
        if n <= self.decided:
            return []
        chosen = smallest_within(at, keys, self.half)[self.decided:n]
        new = [row for row, c in zip(self.cand_row[self.decided:n], chosen.tolist(), strict=True) if c]
        self.decided = n
        self.given += new
        return new


def _value_type(kind: pa.DataType) -> pa.DataType:
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def write_table_stream(name: str, schema: pa.Schema, parts: Iterable[pa.Table], directory: Path, *, split_column: str,
                       width: tuple[float, float], file_bytes: int, write: FileWriter = write_file) -> StagedFile:
    """``write_table_files`` of the concatenation of ``parts`` (key-ordered slices of one table), each file
    written as soon as its end is sealed and its rows let go: only about a file and a half of rows is held.

    The files' bytes equal ``write_table_files``' when the slices share their dictionaries (a file's rows are
    concatenated, and Arrow keeps a shared dictionary's order); slices with dictionaries of their own would need a
    canonical order per file first.
    """
    cutter = FileCuts(split_column, width, file_bytes)
    folder = directory / name
    held: list[pa.Table] = []  # rows not yet in a file, from row ``first`` of the table on
    first, rows, staged = 0, 0, []

    def flush(upto: int) -> None:
        nonlocal held, first
        pending = pa.concat_tables(held)
        if not staged:
            folder.mkdir(parents=True, exist_ok=True)
        staged.append(write(name, pending.slice(0, upto - first), folder / f"part-{len(staged):05d}.parquet"))
        held, first = [pending.slice(upto - first)], upto

    starts: list[int] = []
    for part in parts:
        held.append(part)
        rows += part.num_rows
        starts += cutter.add(part)
        while starts:
            flush(starts.pop(0))
    starts += cutter.finish()
    for start in starts:
        flush(start)
    if not staged:  # one file (``chunk_bounds`` gave [0]): the table is named file, as ``write_table`` writes it
        whole = pa.concat_tables(held) if held else schema.empty_table()
        return write_table(name, whole, directory, write)
    flush(rows)
    return StagedFile(name, folder, rows, sum(p.bytes for p in staged), tree_sha256([p.sha256 for p in staged]),
                      tuple(staged))
