"""The fold's single pass over the log: copy each event's fields into columnar buffers.

Every event gets an ordinal (its row in the envelope buffer); the per-type buffers refer to it in their
``ord`` column, so once the versions are resolved a boolean mask indexed by ordinal selects the current rows.
Nothing is decided here: duplicates, corrections and retractions are all kept.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter, methodcaller
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.errors import SerializationError
from pipelines.fold.buffers import RowBuffer
from pipelines.fold.extract_runs import add_divisions, add_envelope, add_tallies
from pipelines.fold.tables import TIMESTAMP
from pipelines.kafka.log_record import ColumnRun, LogRecord

S = pa.string()
I32 = pa.int32()
I64 = pa.int64()

ENVELOPE_SCHEMA = pa.schema([
    ("event_id", S), ("record_type", S), ("key", S), ("topic", S), ("partition", I32), ("offset", I64),
    ("schema_id", I32), ("occurred_at", TIMESTAMP), ("recorded_at", TIMESTAMP), ("source_organisation", S),
    ("source_kind", S), ("source_url", S), ("synthetic", pa.bool_()), ("supersedes_event_id", S),
    ("supersedes_reason", S),
])


# Content buffers that are parts of an event rather than record types (their ``ord`` is the event's).
CONTEST_SELECTION = "ContestDeclared.selections"
METHOD_VOTES = "StationTally.by_method"


def _with_ord(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([("ord", I64), *fields])


# What each record type contributes, in the order its extractor builds rows.
CONTENT_SCHEMAS: dict[str, pa.Schema] = {
    v.ELECTION_DECLARED: _with_ord(
        ("election_id", S), ("name", S), ("date", pa.date32()), ("kind", S), ("country", S),
        ("seats_at_stake", I32)),
    v.DIVISION_DECLARED: _with_ord(
        ("division_id", S), ("name", S), ("kind", S), ("parent_id", S), ("election_id", S),
        ("municipality_id", S), ("seats", I32), ("label", S), ("member_of", pa.list_(S))),
    v.CONTEST_DECLARED: _with_ord(
        ("contest_id", S), ("election_id", S), ("name", S), ("kind", S), ("office", S), ("district_id", S),
        ("number_elected", I32), ("votes_allowed", I32), ("selections", I32)),
    CONTEST_SELECTION: _with_ord(
        ("contest_id", S), ("selection_id", S), ("kind", S), ("label", S), ("candidate_id", S), ("party_id", S),
        ("running_mates", pa.list_(S))),
    v.PARTY_DECLARED: _with_ord(("party_id", S), ("name", S), ("abbreviation", S)),
    v.CANDIDATE_REGISTERED: _with_ord(
        ("candidate_id", S), ("election_id", S), ("name", S), ("party_id", S), ("municipality_id", S),
        ("gender", S), ("birth_year", I32), ("age_band", S), ("education", S)),
    # contest_id is the tally's contest, the election id for a tally without one (its default contest).
    v.STATION_TALLY: _with_ord(
        ("election_id", S), ("contest_id", S), ("station_id", S), ("municipality_id", S), ("status", S),
        ("registered_voters", I64), ("ballots_cast", I64), ("valid_ballots", I64), ("invalid_ballots", I64),
        ("overvotes", I64), ("undervotes", I64), ("blank_votes", I64), ("write_ins", I64)),
    # One row per votes[].by_method entry: few sources report them, so they are not part of the hot arrays.
    METHOD_VOTES: _with_ord(("selection_id", S), ("method", S), ("votes", I64)),
    v.DIVISION_SUMMARY: _with_ord(
        ("election_id", S), ("division_id", S), ("metric", S), ("value", pa.float64()), ("qualifier", S),
        ("note", S)),
    v.SEAT_ALLOCATION: _with_ord(
        ("election_id", S), ("municipality_id", S), ("total_seats", I32), ("candidate_id", S), ("party_id", S)),
    v.INCIDENT_REPORTED: _with_ord(
        ("incident_id", S), ("election_id", S), ("category", S), ("division_id", S), ("station_id", S),
        ("reporter", S), ("reporter_kind", S), ("description", S), ("evidence_urls", pa.list_(S)),
        ("count", I32)),
    v.INCIDENT_STATUS_CHANGED: _with_ord(("incident_id", S), ("status", S), ("note", S)),
    v.ARTICLE_PUBLISHED: _with_ord(
        ("article_id", S), ("outlet", S), ("url", S), ("headline", S), ("published_at", TIMESTAMP),
        ("language", S), ("summary", S), ("election_id", S), ("statements", I32)),
    v.RETRACTION: _with_ord(("target_event_id", S), ("target_key", S), ("reason", S)),
}
MENTIONS_SCHEMA = _with_ord(("kind", S), ("value", S))


def _raw(values: np.ndarray) -> memoryview:
    """A numpy array's bytes without copying them (``array.frombytes`` takes only byte-format buffers)."""
    return memoryview(np.ascontiguousarray(values)).cast("B")


VOTES_SCHEMA = pa.schema([("tally_row", I32), ("candidate_code", I32), ("votes", I64)])

_CANDIDATE_ID = itemgetter("candidate_id")
_VOTES = itemgetter("votes")
_BY_METHOD = methodcaller("get", "by_method")
_VOTE_CHUNK = 1 << 16


class Votes:
    """The ``votes`` arrays of every StationTally, flattened: one entry per station × candidate.

    This is the fold's hot loop (~12 entries per tally): ``map(itemgetter)`` keeps it out of bytecode, and
    candidate ids are turned into integer codes a chunk at a time by Arrow's hash kernel, so only the
    distinct ids of a chunk go through a Python dict.
    """

    def __init__(self) -> None:
        self.tally_row = array("i")  # row in the StationTally buffer
        self.votes = array("q")
        self.candidates: dict[str, int] = {}  # candidate id -> code, in order of first appearance
        self._codes = array("i")
        self._pending: list[str] | pa.Array = []

    def add(self, tally_row: int, items: list[dict[str, Any]]) -> None:
        """Append the votes of one tally."""
        before = len(self.votes)
        self._pending.extend(map(_CANDIDATE_ID, items))
        self.votes.extend(map(_VOTES, items))
        self.tally_row.extend(array("i", [tally_row]) * (len(self.votes) - before))
        if len(self._pending) >= _VOTE_CHUNK:
            self._flush()

    def add_columns(self, tally_rows: np.ndarray, candidate_ids: pa.Array, votes: np.ndarray) -> None:
        """Append votes given as columns (one entry per station × candidate), in the order ``add`` takes them."""
        self._flush()
        self._pending = candidate_ids
        self._flush()
        self.tally_row.frombytes(_raw(tally_rows.astype(np.int32)))
        self.votes.frombytes(_raw(votes.astype(np.int64)))

    def _flush(self) -> None:
        if not len(self._pending):
            return
        pending = self._pending
        encoded = (pending if isinstance(pending, pa.Array) else pa.array(pending, type=pa.string())).dictionary_encode()
        codes = self.candidates
        local = np.array([codes.setdefault(c, len(codes)) for c in encoded.dictionary.to_pylist()], dtype=np.int32)
        self._codes.frombytes(local[encoded.indices.to_numpy()].tobytes())
        self._pending = []

    def candidate_ids(self) -> list[str]:
        """Candidate ids in code order."""
        self._flush()
        return list(self.candidates)

    def absorb(self, other: Votes, row_offset: int) -> None:
        """Append another extraction's votes; its tally rows are shifted by ``row_offset``."""
        self._flush()
        rows, codes, votes = other.numpy()
        codes_here = self.candidates
        remap = np.array([codes_here.setdefault(c, len(codes_here)) for c in other.candidate_ids()], dtype=np.int32)
        self.tally_row.frombytes(_raw((rows.astype(np.int64) + row_offset).astype(np.int32)))
        self._codes.frombytes(_raw(remap[codes].astype(np.int32)))
        self.votes.frombytes(_raw(votes))

    def to_tables(self) -> tuple[pa.Table, pa.Table]:
        """(votes, candidates) as Arrow tables, to hand an extraction to another process."""
        rows, codes, votes = self.numpy()
        return (pa.table([rows, codes, votes], schema=VOTES_SCHEMA),
                pa.table({"candidate_id": pa.array(self.candidate_ids(), type=S)}))

    @classmethod
    def from_tables(cls, votes: pa.Table, candidates: pa.Table) -> Votes:
        """The inverse of ``to_tables``."""
        out = cls()
        out.candidates = {c: i for i, c in enumerate(candidates.column(0).to_pylist())}
        for name, target in (("tally_row", out.tally_row), ("candidate_code", out._codes), ("votes", out.votes)):
            for chunk in votes.column(name).chunks:
                target.frombytes(_raw(chunk.to_numpy()))
        return out

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tally_row, candidate_code, votes) as numpy views (no copy)."""
        self._flush()
        return (np.frombuffer(self.tally_row, dtype=np.int32), np.frombuffer(self._codes, dtype=np.int32),
                np.frombuffer(self.votes, dtype=np.int64))


def _nothing() -> None:
    return None


@dataclass
class Extracted:
    """Everything the pass copied out of the log."""

    envelope: pa.Table
    content: dict[str, pa.Table]
    mentions: pa.Table
    votes: Votes
    # For an extraction mapped from files (``pipelines.release.mapped_copy``): unmaps the pages read so far, which
    # the fold calls between its long steps (a page read again is mapped back from the page cache).
    let_go: Callable[[], None] = _nothing


def _tally(buf: RowBuffer, methods: RowBuffer, o: int, x: dict[str, Any], votes: Votes) -> None:
    # v1 tallies lack the v2 fields: .get reads them as unknown (null), and a missing contest as the default.
    get = x.get
    election = x["election_id"]
    row = buf.add((o, election, get("contest_id") or election, x["station_id"], get("municipality_id"),
                   x["status"], get("registered_voters"), get("ballots_cast"), get("valid_ballots"),
                   get("invalid_ballots"), get("overvotes"), get("undervotes"), get("blank_votes"),
                   get("write_ins")))
    items = x["votes"]
    votes.add(row, items)
    if any(map(_BY_METHOD, items)):  # few sources break votes down by method: one C-level pass to find out
        for item in items:
            for m in item.get("by_method") or ():
                methods.add((o, item["candidate_id"], m["method"], m.get("votes")))


def _division(buf: RowBuffer, o: int, x: dict[str, Any]) -> None:
    get = x.get
    buf.add((o, x["division_id"], x["name"], x["kind"], get("parent_id"), get("election_id"), get("municipality_id"),
             get("seats"), get("label"), list(get("member_of") or ())))


def _contest(buf: RowBuffer, selections: RowBuffer, o: int, x: dict[str, Any]) -> None:
    get = x.get
    items = x.get("selections") or ()
    buf.add((o, x["contest_id"], x["election_id"], x["name"], x["kind"], get("office"), get("district_id"),
             get("number_elected"), get("votes_allowed"), len(items)))
    for s in items:
        selections.add((o, x["contest_id"], s["selection_id"], s["kind"], s.get("label"), s.get("candidate_id"),
                        s.get("party_id"), list(s.get("running_mates") or ())))


def _simple(columns: tuple[str, ...]) -> Callable[[RowBuffer, int, dict[str, Any]], None]:
    def add(buf: RowBuffer, o: int, x: dict[str, Any]) -> None:
        buf.add((o, *[x.get(c) for c in columns]))
    return add


_SIMPLE: dict[str, Callable[[RowBuffer, int, dict[str, Any]], None]] = {
    t: _simple(tuple(CONTENT_SCHEMAS[t].names[1:]))
    for t in (v.ELECTION_DECLARED, v.PARTY_DECLARED, v.CANDIDATE_REGISTERED,
              v.INCIDENT_STATUS_CHANGED, v.RETRACTION)
}


def _summary(buf: RowBuffer, o: int, x: dict[str, Any]) -> None:
    for f in x.get("figures") or ():
        buf.add((o, x["election_id"], x["division_id"], f["metric"], f["value"], f["qualifier"], f.get("note")))


def _seats(buf: RowBuffer, o: int, x: dict[str, Any]) -> None:
    elected = x.get("elected") or ()
    if not elected:  # keep the allocation itself visible even when nobody was elected
        buf.add((o, x["election_id"], x["municipality_id"], x["total_seats"], None, None))
    for m in elected:
        buf.add((o, x["election_id"], x["municipality_id"], x["total_seats"], m["candidate_id"], m.get("party_id")))


def _incident(buf: RowBuffer, o: int, x: dict[str, Any]) -> None:
    buf.add((o, x["incident_id"], x["election_id"], x["category"], x["division_id"], x.get("station_id"),
             x["reporter"], x.get("reporter_kind"), x.get("description"), list(x.get("evidence_urls") or ()),
             x.get("count")))


def _article(buf: RowBuffer, mentions: RowBuffer, o: int, x: dict[str, Any]) -> None:
    buf.add((o, x["article_id"], x["outlet"], x.get("url"), x["headline"], x.get("published_at"),
             x.get("language"), x.get("summary"), x.get("election_id"), len(x.get("statements") or ())))
    for kind, column in ((v.MENTION_PERSON, "people"), (v.MENTION_ORGANISATION, "organisations"),
                         (v.MENTION_PLACE, "places"), (v.MENTION_DIVISION, "division_ids")):
        for value in x.get(column) or ():
            mentions.add((o, kind, value))


def extract(records: Iterable[LogRecord | ColumnRun]) -> Extracted:
    """Read every record once and return its fields as Arrow tables.

    Args:
        records: decoded log records, in any order; runs of the ``COLUMNAR_TYPES`` may come as ``ColumnRun``s.

    Returns:
        The envelope of every event (row i = ordinal i) and the content of each record type.

    Raises:
        SerializationError: an event lacks an envelope field.
    """
    envelope = RowBuffer(ENVELOPE_SCHEMA)
    buffers = {t: RowBuffer(s) for t, s in CONTENT_SCHEMAS.items()}
    mentions = RowBuffer(MENTIONS_SCHEMA)
    votes = Votes()
    tally_buf, method_buf = buffers[v.STATION_TALLY], buffers[METHOD_VOTES]
    for rec in records:
        if isinstance(rec, ColumnRun):
            _add_run(rec, envelope, buffers, votes)
            continue
        rtype = rec.record_type
        if rtype == v.DEAD_LETTER:  # rejected input, not an event: it has no envelope
            continue
        x = rec.value
        try:
            source = x["source"]
            sup = x.get("supersedes")
            o = envelope.add((
                x["event_id"], rtype, rec.key, rec.topic, rec.partition, rec.offset, rec.schema_id,
                x["occurred_at"], x["recorded_at"], source["organisation"], source["kind"], source.get("url"),
                bool(x.get("synthetic", False)), sup["event_id"] if sup else None, sup["reason"] if sup else None,
            ))
            if rtype == v.STATION_TALLY:
                _tally(tally_buf, method_buf, o, x, votes)
            elif rtype == v.DIVISION_DECLARED:
                _division(buffers[rtype], o, x)
            elif rtype == v.CONTEST_DECLARED:
                _contest(buffers[rtype], buffers[CONTEST_SELECTION], o, x)
            elif rtype in _SIMPLE:
                _SIMPLE[rtype](buffers[rtype], o, x)
            elif rtype == v.DIVISION_SUMMARY:
                _summary(buffers[rtype], o, x)
            elif rtype == v.SEAT_ALLOCATION:
                _seats(buffers[rtype], o, x)
            elif rtype == v.INCIDENT_REPORTED:
                _incident(buffers[rtype], o, x)
            elif rtype == v.ARTICLE_PUBLISHED:
                _article(buffers[rtype], mentions, o, x)
        except (KeyError, TypeError) as exc:
            raise SerializationError(
                f"{rtype} at {rec.topic}/{rec.partition}@{rec.offset} lacks or mistypes field {exc}",
                topic=rec.topic, schema_id=rec.schema_id) from exc
    return Extracted(
        envelope=envelope.to_table(),
        content={t: b.to_table() for t, b in buffers.items()},
        mentions=mentions.to_table(),
        votes=votes,
    )


def _add_run(run: ColumnRun, envelope: RowBuffer, buffers: dict[str, RowBuffer], votes: Votes) -> None:
    ords = add_envelope(envelope, run)
    if run.record_type == v.STATION_TALLY:
        add_tallies(buffers[v.STATION_TALLY], buffers[METHOD_VOTES], votes, ords, run.values)
    elif run.record_type == v.DIVISION_DECLARED:
        add_divisions(buffers[v.DIVISION_DECLARED], ords, run.values)
    else:
        raise SerializationError(f"{run.record_type} records cannot be extracted as columns", topic=run.topic,
                                 schema_id=run.schema_id)


def _shift_ord(table: pa.Table, by: int) -> pa.Table:
    if by == 0:
        return table
    shifted = pc.add(table.column("ord"), pa.scalar(by, I64))
    return table.set_column(0, "ord", shifted)


def merge(parts: list[Extracted]) -> Extracted:
    """Join extractions of disjoint parts of one snapshot into the extraction of the whole.

    Ordinals and tally rows of each later part are shifted past the earlier ones; since the fold does not
    depend on record order, folding the merge equals folding one pass over all the records.
    """
    if not parts:
        return extract(())
    first, rest = parts[0], parts[1:]
    envelopes, mentions = [first.envelope], [first.mentions]
    content = {t: [table] for t, table in first.content.items()}
    votes = first.votes
    base, tally_base = first.envelope.num_rows, first.content[v.STATION_TALLY].num_rows
    for part in rest:
        envelopes.append(part.envelope)
        mentions.append(_shift_ord(part.mentions, base))
        for t, table in part.content.items():
            content[t].append(_shift_ord(table, base))
        votes.absorb(part.votes, tally_base)
        base += part.envelope.num_rows
        tally_base += part.content[v.STATION_TALLY].num_rows
    return Extracted(
        envelope=pa.concat_tables(envelopes),
        content={t: pa.concat_tables(tables) for t, tables in content.items()},
        mentions=pa.concat_tables(mentions),
        votes=votes,
    )
