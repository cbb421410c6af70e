"""The extraction pass for a run of records decoded as columns (``pipelines.kafka.log_record.ColumnRun``).

A full read is mostly tallies and polling-station declarations; for those the snapshot read decodes runs of
records straight into Arrow columns, and this module copies them into the fold's buffers with Arrow kernels.
The rows are exactly those ``extract`` builds record by record (a property test compares both), so the
rules spelled out there hold here too: a tally without a contest (null or empty) counts for its election's
default contest, a division's missing ``member_of`` is an empty list.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold.buffers import RowBuffer
from pipelines.fold.tables import TIMESTAMP
from pipelines.kafka.log_record import ColumnRun

S = pa.string()
I32 = pa.int32()
I64 = pa.int64()

# The record types the snapshot read may hand over as runs: the ones most of a log is made of.
COLUMNAR_TYPES = frozenset({v.STATION_TALLY, v.DIVISION_DECLARED})


class VoteSink(Protocol):
    """Where a run's votes go (``pipelines.fold.extract.Votes``)."""

    def add_columns(self, tally_rows: np.ndarray, candidate_ids: pa.Array, votes: np.ndarray) -> None: ...


_TALLY_COUNTS = ("registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots", "overvotes",
                 "undervotes", "blank_votes", "write_ins")


def _field(values: pa.StructArray, *path: str) -> pa.Array:
    """A nested field, null where any struct on the way is null (``StructArray.field`` ignores that)."""
    return pc.struct_field(values, list(path))


def _constant(value: object, n: int, typ: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, type=typ), n)


def add_envelope(envelope: RowBuffer, run: ColumnRun) -> np.ndarray:
    """Append the run's envelope rows; returns their ordinals."""
    x, n = run.values, len(run)
    columns = [
        _field(x, "event_id"), _constant(run.record_type, n, S), pa.array(run.keys, type=S),
        _constant(run.topic, n, S), _constant(run.partition, n, I32), pa.array(run.offsets, type=I64),
        _constant(run.schema_id, n, I32), _field(x, "occurred_at").cast(I64).cast(TIMESTAMP),
        _field(x, "recorded_at").cast(I64).cast(TIMESTAMP), _field(x, "source", "organisation"),
        _field(x, "source", "kind"), _field(x, "source", "url"), _field(x, "synthetic"),
        _field(x, "supersedes", "event_id"), _field(x, "supersedes", "reason"),
    ]
    first = envelope.add_columns(columns)
    return np.arange(first, first + n, dtype=np.int64)


def add_tallies(tallies: RowBuffer, methods: RowBuffer, votes: VoteSink, ords: np.ndarray, x: pa.StructArray) -> None:
    """Append a run of StationTally records: the tallies, their votes and any votes by method."""
    election, contest = _field(x, "election_id"), _field(x, "contest_id")
    no_contest = pc.fill_null(pc.equal(contest, ""), True)
    columns = [pa.array(ords, type=I64), election, pc.if_else(no_contest, election, contest),
               _field(x, "station_id"), _field(x, "municipality_id"), _field(x, "status"),
               *[_field(x, name).cast(I64) for name in _TALLY_COUNTS]]
    first = tallies.add_columns(columns)
    items = _field(x, "votes")
    counts = pc.list_value_length(items).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(first, first + len(x), dtype=np.int64), counts)
    flat = pc.list_flatten(items)
    votes.add_columns(rows, _field(flat, "candidate_id"), _field(flat, "votes").to_numpy(zero_copy_only=False))
    by_method = _field(flat, "by_method")
    if pc.sum(pc.list_value_length(by_method)).as_py():  # few sources break votes down by method
        item = pc.list_parent_indices(by_method)
        vote_ords = np.repeat(ords, counts)[item.to_numpy()]
        entries = pc.list_flatten(by_method)
        methods.add_columns([pa.array(vote_ords, type=I64), _field(flat, "candidate_id").take(item),
                             _field(entries, "method"), _field(entries, "votes").cast(I64)])


def add_divisions(divisions: RowBuffer, ords: np.ndarray, x: pa.StructArray) -> None:
    """Append a run of DivisionDeclared records."""
    member_of = _field(x, "member_of")
    member_of = pc.if_else(pc.is_null(member_of), pa.scalar([], type=member_of.type), member_of)
    divisions.add_columns([
        pa.array(ords, type=I64), _field(x, "division_id"), _field(x, "name"), _field(x, "kind"),
        _field(x, "parent_id"), _field(x, "election_id"), _field(x, "municipality_id"), _field(x, "seats"),
        _field(x, "label"), member_of,
    ])
