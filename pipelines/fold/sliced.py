"""A large table handed over in key-ordered slices instead of whole, so that it is written while it is built.

contest_results is the largest table of a million-station fold (1.3 GB); assembled and written a slice at a time
(``pipelines.release.stream_cuts.write_table_stream``) it is never whole in memory. Its slices share their
dictionaries, so the files written are those of the whole table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa


class SlicedTable:
    """A table's ``schema`` and its slices, in row order; the slices can be read once."""

    def __init__(self, schema: pa.Schema, slices: Iterator[pa.Table]) -> None:
        self.schema = schema
        self._slices: Iterator[pa.Table] | None = slices

    def slices(self) -> Iterator[pa.Table]:
        """The slices, each as soon as it is built (once: a second call raises)."""
        if self._slices is None:
            raise RuntimeError("the slices of a SlicedTable were read already")
        slices, self._slices = self._slices, None
        return slices

    def table(self) -> pa.Table:
        """All of it as one table (what a consumer that wants the whole table reads)."""
        parts = list(self.slices())
        return pa.concat_tables(parts).combine_chunks() if parts else self.schema.empty_table()

    def map(self, each: Callable[[pa.Table], pa.Table]) -> SlicedTable:
        """The same table with ``each`` applied to every slice (and to the schema, through an empty table)."""
        return SlicedTable(each(self.schema.empty_table()).schema, (each(s) for s in self.slices()))
