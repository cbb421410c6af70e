"""Row buffers that turn Python tuples into Arrow record batches a chunk at a time.

Decoded events are dicts full of small Python objects; holding a million of them costs gigabytes. The fold
copies the fields it needs into a buffer and converts every ``chunk_rows`` rows to Arrow, so the Python
objects can be freed as soon as the next record is read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

DEFAULT_CHUNK_ROWS = 32_768


def _to_arrow(values: tuple[Any, ...], typ: pa.DataType) -> pa.Array:
    temporal = pa.types.is_timestamp(typ) or pa.types.is_date32(typ)
    if temporal and isinstance(next((x for x in values if x is not None), 0), int):
        # Records decoded without logical types (pipelines.kafka.serde) carry epoch milliseconds and days.
        return pa.array(values, type=pa.int64() if pa.types.is_timestamp(typ) else pa.int32()).cast(typ)
    if pa.types.is_timestamp(typ) and typ.unit == "ms":
        # pyarrow converts aware datetimes at ~3 us each (a utcoffset call per value); datetime.timestamp()
        # is ~8x faster and exact to the microsecond, so round to milliseconds in numpy instead.
        try:
            seconds = np.array([d.timestamp() for d in values], dtype=np.float64)
            mask = None
        except AttributeError:  # nulls present: the slower path
            mask = np.array([d is None for d in values], dtype=bool)
            seconds = np.array([0.0 if d is None else d.timestamp() for d in values], dtype=np.float64)
        millis = np.rint(seconds * 1000.0).astype(np.int64)
        return pa.array(millis, type=pa.int64(), mask=mask).cast(typ)
    return pa.array(values, type=typ)


class RowBuffer:
    """Collects rows (tuples in schema order) and converts them to Arrow in chunks.

    Args:
        schema: column names and types, in the order rows give them.
        chunk_rows: rows kept as Python tuples before they are converted.
    """

    def __init__(self, schema: pa.Schema, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self.schema = schema
        self._chunk_rows = chunk_rows
        self._rows: list[tuple[Any, ...]] = []
        self._batches: list[pa.RecordBatch] = []
        self._flushed = 0

    def __len__(self) -> int:
        return self._flushed + len(self._rows)

    def add(self, row: tuple[Any, ...]) -> int:
        """Append one row and return its index in the buffer."""
        rows = self._rows
        rows.append(row)
        if len(rows) >= self._chunk_rows:
            self._flush()
        return self._flushed + len(self._rows) - 1

    def add_columns(self, columns: list[pa.Array]) -> int:
        """Append rows given as columns (in schema order) after those added so far; returns the first's index."""
        self._flush()
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        first = self._flushed
        self._batches.append(batch)
        self._flushed += batch.num_rows
        return first

    def _flush(self) -> None:
        if not self._rows:
            return
        columns = zip(*self._rows, strict=True)
        arrays = [_to_arrow(values, field.type) for values, field in zip(columns, self.schema, strict=True)]
        self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self._flushed += len(self._rows)
        self._rows = []

    def to_table(self) -> pa.Table:
        """Everything added so far as one table (chunked, not copied)."""
        self._flush()
        return pa.Table.from_batches(self._batches, schema=self.schema)
