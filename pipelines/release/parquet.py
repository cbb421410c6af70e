"""Deterministic Parquet: the same table always gives the same bytes, hence the same sha256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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


def _compact(column: pa.Array) -> pa.Array:
    """A dictionary array whose dictionary holds only the values it uses, in their original order."""
    if not pa.types.is_dictionary(column.type):
        return column
    nulls = column.indices.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
    indices = column.indices.fill_null(0).to_numpy(zero_copy_only=False)
    used = np.unique(indices if nulls is None else indices[~nulls])
    remapped = pa.array(np.searchsorted(used, indices).astype(np.int32), type=column.type.index_type, mask=nulls)
    return pa.DictionaryArray.from_arrays(remapped, column.dictionary.take(pa.array(used)))


def _row_groups(table: pa.Table) -> Iterator[pa.Table]:
    """``table`` in row-group slices, each dictionary column carrying only its own values.

    The fold shares one dictionary per column across the whole table (a million station ids); written as is,
    Arrow puts that whole dictionary into every row group, and readers get a full copy per row group back.
    Slices are made one at a time, so only one row group's copy exists while it is written.
    """
    for start in range(0, max(table.num_rows, 1), ROW_GROUP_ROWS):
        part = table.slice(start, ROW_GROUP_ROWS).combine_chunks()
        yield pa.table([_compact(col.chunk(0)) if col.num_chunks else col for col in part.columns],
                       schema=table.schema)


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A table written to local Parquet, with what the manifest needs."""

    table: str
    path: Path
    rows: int
    bytes: int
    sha256: str


def write_table(name: str, table: pa.Table, directory: Path) -> StagedFile:
    """Write ``table`` to ``directory/<name>.parquet`` and checksum it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.parquet"
    with pq.ParquetWriter(path, table.schema, **_WRITE_OPTIONS) as writer:
        for part in _row_groups(table):
            writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(8 * 1024 * 1024), b""):
            digest.update(chunk)
    return StagedFile(name, path, table.num_rows, path.stat().st_size, digest.hexdigest())


def columns(table: pa.Table) -> list[dict[str, str]]:
    """Column names and Arrow types for the manifest (descriptions are added by the caller)."""
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]
