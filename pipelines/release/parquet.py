"""Deterministic Parquet: the same table always gives the same bytes, hence the same sha256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Fixed writer options: pyarrow's defaults may change between versions, and the checksum must not.
_WRITE_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "row_group_size": 1_000_000,
    "data_page_size": 1024 * 1024,
    "version": "2.6",
}


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
    pq.write_table(table, path, **_WRITE_OPTIONS)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(8 * 1024 * 1024), b""):
            digest.update(chunk)
    return StagedFile(name, path, table.num_rows, path.stat().st_size, digest.hexdigest())


def columns(table: pa.Table) -> list[dict[str, str]]:
    """Column names and Arrow types for the manifest (descriptions are added by the caller)."""
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]
