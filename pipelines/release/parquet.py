"""Deterministic Parquet: the same table always gives the same bytes, hence the same sha256."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.release import value_hash

# Fixed writer options: pyarrow's defaults may change between versions, and the checksum must not.
_WRITE_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_size": 1024 * 1024,
    "version": "2.6",
}
ROW_GROUP_ROWS = 1_000_000


# Dictionaries up to this size are compacted by counting each value's uses (one pass, no sort or mark).
_SMALL_DICTIONARY = 4096


def compact(column: pa.Array) -> pa.Array:
    """A dictionary array whose dictionary holds only the values it uses, in their original order (the column
    itself when it uses every value and has no nulls)."""
    if not pa.types.is_dictionary(column.type):
        return column
    nulls = column.null_count
    if len(column.dictionary) == 1 and len(column) and not nulls:
        return column  # every row uses the one value (an election id, a topic)
    indices = (column.indices.fill_null(0) if nulls else column.indices).to_numpy(zero_copy_only=False)
    mask = column.indices.is_null().to_numpy(zero_copy_only=False) if nulls else None
    if len(column.dictionary) <= _SMALL_DICTIONARY:
        # One count more than values for an empty dictionary: its nulls' filled index 0 has a place.
        counts = np.bincount(indices, minlength=max(1, len(column.dictionary)))
        counts[0] -= nulls  # a null's index was filled with 0
        used = np.flatnonzero(counts)
        if len(used) == len(column.dictionary) and not nulls:
            return column
        if len(used) <= 1 and not nulls:
            codes = np.zeros(len(indices), dtype=np.int32)  # one value used (a selection kind): no lookups
        else:
            rank = np.zeros(len(counts), dtype=np.int32)
            rank[used] = np.arange(len(used), dtype=np.int32)
            codes = rank[indices]  # 0 under the nulls: a null's filled index is 0, whose rank is 0 or unset (0)
    else:
        used, codes = _used_values(indices if mask is None else indices[~mask])
        if mask is not None:
            filled = np.zeros(len(indices), dtype=np.int32)  # 0 under the nulls
            filled[~mask] = codes
            codes = filled
    remapped = pa.array(codes, type=column.type.index_type, mask=mask)
    return pa.DictionaryArray.from_arrays(remapped, column.dictionary.take(pa.array(used)))


def _used_values(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the dictionary positions ``indices`` uses, ascending; each index's rank among them, int32)."""
    if not indices.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    low, high = int(indices.min()), int(indices.max())
    span = high - low + 1
    if span > 16 * len(indices):  # a few rows of a large dictionary: marking all of it would cost more than sorting
        used = np.unique(indices)
        return used, np.searchsorted(used, indices).astype(np.int32)
    # A mark per dictionary value between the lowest and highest used (a file of a sorted table uses a narrow band
    # of a shared dictionary of a million station ids), each used one's rank scattered to its place: linear in
    # the band, not in the whole dictionary.
    shifted = indices - low if low else indices
    marked = np.zeros(span, dtype=bool)
    marked[shifted] = True
    used = np.flatnonzero(marked)
    rank = np.empty(span, dtype=np.int32)
    rank[used] = np.arange(len(used), dtype=np.int32)
    return used + low, rank[shifted]


def _row_groups(table: pa.Table) -> Iterator[pa.Table]:
    """``table`` in row-group slices, each dictionary column carrying only its own values.

    The fold shares one dictionary per column across the whole table (a million station ids); written as is,
    Arrow puts that whole dictionary into every row group, and readers get a full copy per row group back.
    Slices are made one at a time, so only one row group's copy exists while it is written.
    """
    for start in range(0, max(table.num_rows, 1), ROW_GROUP_ROWS):
        part = table.slice(start, ROW_GROUP_ROWS).combine_chunks()
        yield pa.table([compact(col.chunk(0)) if col.num_chunks else col for col in part.columns],
                       schema=table.schema)


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A table written to local Parquet, with what the manifest needs.

    A large table is several files (``parts``): ``path`` is then their folder, ``rows`` and ``bytes`` their sums,
    and ``sha256`` the sha256 of their checksums, one per line in order (``tree_sha256``).
    """

    table: str
    path: Path
    rows: int
    bytes: int
    sha256: str
    parts: tuple[StagedFile, ...] = ()

    def paths(self) -> list[Path]:
        """The table's files, in order."""
        return [p.path for p in self.parts] if self.parts else [self.path]


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(8 * 1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(part_sha256s: list[str]) -> str:
    """The checksum of a table kept as several files: sha256 of their sha256s, one per line, in order."""
    return hashlib.sha256("".join(f"{s}\n" for s in part_sha256s).encode()).hexdigest()


def _write(table: pa.Table, path: Path, row_groups: Iterable[pa.Table] | None = None) -> None:
    with pq.ParquetWriter(path, table.schema, **_WRITE_OPTIONS) as writer:
        for part in _row_groups(table) if row_groups is None else row_groups:
            writer.write_table(part, row_group_size=ROW_GROUP_ROWS)


def write_file(name: str, table: pa.Table, path: Path, row_groups: list[pa.Table] | None = None) -> StagedFile:
    """Write ``table`` to ``path`` and checksum it (``row_groups``: its ``_row_groups``, when made already)."""
    # Unlinked first, never truncated: a file staged before may be a hard link to a kept copy
    # (``pipelines.release.reuse``), whose bytes writing in place would change too.
    path.unlink(missing_ok=True)
    _write(table, path, row_groups)
    return StagedFile(name, path, table.num_rows, path.stat().st_size, file_sha256(path))


# How one file of a table is staged: ``write_file``, or a writer that reuses files kept from the last release.
FileWriter = Callable[[str, pa.Table, Path], StagedFile]


def write_table(name: str, table: pa.Table, directory: Path, write: FileWriter = write_file) -> StagedFile:
    """Write ``table`` to ``directory/<name>.parquet`` and checksum it."""
    directory.mkdir(parents=True, exist_ok=True)
    return write(name, table, directory / f"{name}.parquet")


# Runs drawn as candidates to start a file, per file's bytes: a file starts at the candidate with the smallest key
# within half a file on either side, so there must be a few in every such window (none in one: e^-16).
CANDIDATES_PER_FILE = 16
# Declared bytes are counted in thousandths, as integers: positions along the table are then exact sums, and
# whether two runs are within half a file of each other cannot depend on rounding far from them.
MILLI = 1000


# A table of at most this many times ``file_bytes`` (by its declared width) is one file. It was 2, which left
# contest_summary (0.48 MB at a million stations) one file that every publish rewrote whole with 250 KB files.
# A change here bumps ``scoped.CUTS_VERSION``.
ONE_FILE_UP_TO = 1


def chunk_bounds(table: pa.Table, column: str, width: tuple[float, float], file_bytes: int) -> list[int]:
    """Where each file of ``table`` starts: content-defined, so a change to some rows changes only their files.

    A file may start only where ``column`` (a column of the table's row order, ``tables.ORDER``) changes value,
    at the first row of a run of one value. Each run has a size, its bytes by ``width`` (bytes per run, bytes per
    row), and a key: a hash of its value, uniform in [0, 1), over its size, so that each byte is as likely as any
    other to fall in the run of the smallest key. A run starts a file where its key is the smallest of all runs
    starting within half of ``file_bytes`` of it: files hold about ``file_bytes`` of Parquet each, however wide
    or long the table's rows and runs, and are alike in size (at a million stations, 1 MB files are 0.9 MB at
    the median and at most 2 MB; a cut wherever a hash falls below a threshold gives exponential sizes, 0.6 MB
    at the median and up to 5 MB, and a change most often lands in the larger files).

    ``width`` is declared per table (``tables.FILE_WIDTHS``), not measured on the table: a Parquet width is known
    only once encoded, and any figure of the whole table (its bytes or rows per value) moves as results arrive,
    and every cut with it. A cut depends on the runs within half a file of it and nothing else, so rows added or
    changed move at most the boundaries around them: the other files keep their bytes.
    A table of at most ``file_bytes`` by ``width`` is one file (``ONE_FILE_UP_TO``). The cuts depend on the values
    only: a column dictionary-encoded (with distinct dictionary values, as Arrow's encoding makes them) or not, in
    one chunk or several, is cut at the same rows.
    """
    rows = table.num_rows
    run_bytes, row_bytes = width
    if rows * (run_bytes + row_bytes) <= ONE_FILE_UP_TO * file_bytes:  # small even with a run per row
        return [0]
    starts, hashes = column_runs(table.column(column).combine_chunks())
    if (len(starts) + 1) * run_bytes + rows * row_bytes <= ONE_FILE_UP_TO * file_bytes:
        return [0]
    return cuts(starts, hashes, rows, width, file_bytes)


def cuts(starts: np.ndarray, hashes: np.ndarray, rows: int, width: tuple[float, float], file_bytes: int
         ) -> list[int]:
    """``chunk_bounds`` of a table of ``rows`` rows whose runs (``column_runs``) are given, whatever its size:
    row 0, and each run whose key is the smallest within half a file of it. Of a part of a table, the cuts of runs
    whose half-file neighbourhoods lie inside the part are the whole table's (``pipelines.release.splice``)."""
    run_bytes, row_bytes = width
    # The first run starts the first file anyway; the others are placed by their sizes, from its end.
    sizes = np.rint((run_bytes + np.diff(starts, append=rows) * row_bytes) * MILLI).astype(np.int64)
    # Float64 operations are correctly rounded (IEEE 754), so every machine draws the same keys.
    keys = hashes * 2.0 ** -56 / (sizes / (file_bytes * MILLI))
    candidates = np.flatnonzero(keys < CANDIDATES_PER_FILE)
    if not len(candidates):  # a few long runs, none drawn
        return [0]
    at = (np.cumsum(sizes) - sizes)[candidates]
    return [0, *starts[candidates[smallest_within(at, keys[candidates], file_bytes * MILLI // 2)]].tolist()]


def settled_before(starts: np.ndarray, rows: int, width: tuple[float, float], file_bytes: int) -> int:
    """The first row whose run ``cuts`` may place otherwise once more rows follow these ``rows``: a run is placed
    by the runs within half a file of it, and the last run's size (hence its key) is not known yet."""
    run_bytes, row_bytes = width
    sizes = np.rint((run_bytes + np.diff(starts, append=rows) * row_bytes) * MILLI).astype(np.int64)
    at = np.cumsum(sizes) - sizes
    # A run at ``at`` weighs the runs up to ``at + half`` (``smallest_within``): those short of the last run's.
    first_unsettled = int(np.searchsorted(at, at[-1] - file_bytes * MILLI // 2, side="left"))
    return int(starts[first_unsettled]) if first_unsettled < len(starts) else rows


def smallest_within(at: np.ndarray, keys: np.ndarray, half: int) -> np.ndarray:
    """Whether each key (at ascending positions ``at``) is the smallest of those within ``half`` of its position:
    a range minimum over a sparse table (the minimum of each 2^k keys from each position), one query per key."""
    lo = np.searchsorted(at, at - half, side="left")
    hi = np.searchsorted(at, at + half, side="right")
    span = np.frexp(hi - lo)[1] - 1  # floor(log2(window)), exact for integers
    levels = [keys]
    while len(levels) <= span.max():
        half_span = 1 << (len(levels) - 1)
        levels.append(np.minimum(levels[-1][:-half_span], levels[-1][half_span:]))
    table = np.full((len(levels), len(keys)), np.inf)
    for k, level in enumerate(levels):
        table[k, :len(level)] = level
    smallest = np.minimum(table[span, lo], table[span, hi - (1 << span)])
    return keys == smallest


def column_runs(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(rows where ``col`` changes value, a 56-bit hash of the value each of them starts; 0 for a null)."""
    if pa.types.is_dictionary(col.type) and not _hashed_as_bytes(col.type.value_type):
        col = col.dictionary_decode()  # integers (and the rest) are hashed by value, as when not encoded
    if pa.types.is_integer(col.type):
        return _integer_runs(col)
    if pa.types.is_dictionary(col.type):
        return _dictionary_runs(col)
    return _value_runs(col if _hashed_as_bytes(col.type) else col.cast(pa.large_string()))


def _hashed_as_bytes(kind: pa.DataType) -> bool:
    return (pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind)
            or pa.types.is_large_binary(kind))


def _value_runs(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``column_runs`` of a string or binary column: neighbours compared in Arrow, no dictionary built (a million
    distinct station ids took a quarter of a second to encode), and only the values that start a run hashed."""
    changed = pc.fill_null(pc.not_equal(col.slice(1), col.slice(0, len(col) - 1)), False)
    changed = changed.to_numpy(zero_copy_only=False)
    valid = None
    if col.null_count:
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        changed |= valid[1:] != valid[:-1]
    starts = np.flatnonzero(changed) + 1
    hashes = _hashes56(value_hash.byte_hashes(col, starts))
    if valid is not None:
        hashes[~valid[starts]] = 0
    return starts, hashes


def _dictionary_runs(col: pa.DictionaryArray) -> tuple[np.ndarray, np.ndarray]:
    """``column_runs`` of a dictionary column of strings or bytes: runs of equal indices, each hashed by its value."""
    indices = col.indices
    codes = (indices.fill_null(-1) if indices.null_count else indices).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starting = codes[starts]
    hashes = np.zeros(len(starts), dtype=np.int64)
    valid = starting >= 0
    hashes[valid] = _hashes56(value_hash.byte_hashes(col.dictionary, starting[valid]))
    return starts, hashes


def _hashes56(hashes: np.ndarray) -> np.ndarray:
    """The top 56 bits of 64-bit hashes, as int64 (uniform in [0, 2^56): a key once scaled by 2^-56)."""
    return (hashes >> np.uint64(8)).astype(np.int64)


def _integer_runs(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``column_runs`` of an integer column, in numpy: an offset column has a value per row, millions of them, and a
    Python hash of each took seconds. A null hashes to 0, as in ``_value_runs``."""
    values = col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    changed = values[1:] != values[:-1]
    if col.null_count:
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        changed |= valid[1:] != valid[:-1]
    starts = np.flatnonzero(changed) + 1
    hashes = _hashes56(value_hash.splitmix64(values[starts]))
    if col.null_count:
        hashes[~valid[starts]] = 0
    return starts, hashes


def write_table_files(name: str, table: pa.Table, directory: Path, *, split_column: str,
                      width: tuple[float, float], file_bytes: int, write: FileWriter = write_file) -> StagedFile:
    """``write_table``, or for a large table one file per ``chunk_bounds`` chunk in ``directory/<name>/``."""
    bounds = chunk_bounds(table, split_column, width, file_bytes)
    if len(bounds) == 1:
        return write_table(name, table, directory, write)
    folder = directory / name
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, (start, stop) in enumerate(zip(bounds, [*bounds[1:], table.num_rows], strict=True)):
        parts.append(write(name, table.slice(start, stop - start), folder / f"part-{i:05d}.parquet"))
    return StagedFile(name, folder, table.num_rows, sum(p.bytes for p in parts),
                      tree_sha256([p.sha256 for p in parts]), tuple(parts))


class ParquetParts:
    """A table kept as one or several Parquet files, read like one ``ParquetFile`` (column by column)."""

    def __init__(self, sources: list[Any], schema: pa.Schema | None = None, *, text_as_dictionary: bool = False):
        """``sources``: paths or buffers, in order; ``schema`` is needed only when there are none.
        ``text_as_dictionary``: string columns are read as dictionary arrays (Parquet's dictionary pages as they
        are, not a string per row); ``schema_arrow`` then says so too."""
        schema = schema if schema is not None or not sources else pq.read_schema(sources[0])
        if text_as_dictionary and schema is not None:
            text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            schema = pa.schema([pa.field(f.name, pa.dictionary(pa.int32(), f.type), f.nullable, f.metadata)
                                if f.name in text else f for f in schema], metadata=schema.metadata)
        else:
            text = None
        self.files = [pq.ParquetFile(s, read_dictionary=text) for s in sources]
        self._schema = schema if schema is not None else self.files[0].schema_arrow

    @property
    def schema_arrow(self) -> pa.Schema:
        return self._schema

    @property
    def num_rows(self) -> int:
        return sum(f.metadata.num_rows for f in self.files)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        if not self.files:
            empty = self._schema.empty_table()
            return empty.select(columns) if columns else empty
        return pa.concat_tables([f.read(columns=columns) for f in self.files])


def read_staged(staged: StagedFile, columns: list[str] | None = None, filters: Any = None) -> pa.Table:
    """A staged table read back whole (all its files), or only ``columns`` / the rows ``filters`` keeps."""
    paths = [str(p) for p in staged.paths()]
    if filters is None or len(paths) == 1:
        return pq.read_table(paths, columns=columns, filters=filters)
    # A file at a time: a scan of every file at once holds many files' decoded rows before it filters them (the
    # catalog's 13,000 contest-level rows of contest_results, at a million stations: 700 MB held).
    return pa.concat_tables([pq.read_table(p, columns=columns, filters=filters) for p in paths])


def columns(table: pa.Table) -> list[dict[str, str]]:
    """Column names and Arrow types for the manifest (descriptions are added by the caller)."""
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]
