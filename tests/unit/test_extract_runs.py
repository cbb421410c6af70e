"""A log read as column runs extracts to exactly the tables it extracts to record by record.

The snapshot read decodes runs of tallies and division declarations into Arrow columns
(``pipelines.kafka.snapshot.decoded``, ``pipelines.fold.extract_runs``). Hypothesis draws logs that mix them with
other record types over two partitions, with every optional field null or set (no contest, an empty contest,
votes by method, corrections), encodes them as the wire does, and extracts them both ways; runs are cut short
(``RUN_RECORDS``) so that a log gives many of them.
"""

from __future__ import annotations

import io
import json
from collections import namedtuple
from typing import Any
from unittest import mock

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import TopicPartition

from pipelines.contract import schemas
from pipelines.errors import SerializationError
from pipelines.fold import fold
from pipelines.fold.core import extract_all, fold_extracted
from pipelines.fold.extract import extract
from pipelines.fold.extract_runs import COLUMNAR_TYPES
from pipelines.kafka import snapshot
from pipelines.kafka.log_record import ColumnRun, LogRecord
from pipelines.kafka.serde import deserializer, frame, without_logical_types
from pipelines.settings import Settings
from tests.support.factories import generate_election, small_election
from tests.support.record_blocks import blocks

ID_OF = {name: i + 1 for i, name in enumerate(schemas.record_types())}
TALLY, DIVISION, PARTY = ID_OF["StationTally"], ID_OF["DivisionDeclared"], ID_OF["PartyDeclared"]
RAW = {ID_OF[name]: json.loads(schemas.schema_json(name)) for name in ID_OF}
V1_TALLY = len(RAW) + 1  # an older writer schema: read through schema resolution, so record by record
RAW[V1_TALLY] = schemas.published_versions("StationTally")[0]
PLAIN = {i: fastavro.parse_schema(without_logical_types(raw)) for i, raw in RAW.items()}
WITH_LOGICAL_TYPES = {i: fastavro.parse_schema(raw) for i, raw in RAW.items()}

Message = namedtuple("Message", "offset key value")


class _Registry:
    """The schemas by id (the registry's own answers are the integration tests' business)."""

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        return RAW[schema_id]


def _decoder() -> Any:
    return deserializer(Settings.from_env({}), _Registry(), logical_types=False)


text = st.text(max_size=6)
maybe = st.none() | st.text(max_size=6)
int32 = st.integers(-(2**31), 2**31 - 1)
ids = st.sampled_from(["a", "b", "c", "ü"])
envelope = {
    "event_id": text, "occurred_at": st.integers(0, 2**45), "recorded_at": st.integers(0, 2**45),
    "source": st.fixed_dictionaries({"organisation": text, "kind": st.sampled_from(["PARTY", "MEDIA", "OTHER"]),
                                     "url": maybe}),
    "supersedes": st.none() | st.fixed_dictionaries({"event_id": text, "reason": text}),
    "synthetic": st.booleans(),
}
methods = st.lists(st.fixed_dictionaries({"method": st.sampled_from(["EARLY", "MAIL"]), "votes": st.none() | int32}),
                   max_size=2)
tally = st.fixed_dictionaries({
    **envelope, "election_id": ids, "station_id": text, "contest_id": st.none() | st.just("") | ids,
    "municipality_id": maybe, "status": st.sampled_from(["PRELIMINARY", "FINAL"]),
    **{name: st.none() | int32 for name in ("registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots",
                                            "overvotes", "undervotes", "blank_votes", "write_ins")},
    "votes": st.lists(st.fixed_dictionaries({"candidate_id": ids, "votes": int32,
                                             "by_method": st.just([]) | methods}), max_size=4),
})
division = st.fixed_dictionaries({
    **envelope, "division_id": text, "name": text, "kind": st.sampled_from(["MUNICIPALITY", "POLLING_STATION"]),
    "label": maybe, "parent_id": maybe, "member_of": st.lists(text, max_size=2), "election_id": maybe,
    "municipality_id": maybe, "seats": st.none() | int32,
})
party = st.fixed_dictionaries({**envelope, "party_id": text, "name": text, "abbreviation": maybe})
events = st.lists(st.one_of(st.tuples(st.just(TALLY), tally), st.tuples(st.just(DIVISION), division),
                            st.tuples(st.just(PARTY), party)).flatmap(
    lambda e: st.tuples(st.just(e[0]), st.just(e[1]), st.integers(0, 1))), max_size=40)


def _message(schema: Any, schema_id: int, value: dict[str, Any], partition: int, offset: int,
             key: str) -> tuple[TopicPartition, Message]:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, value)
    return TopicPartition("results", partition), Message(offset, key.encode(), frame(schema_id, body.getvalue()))


def _messages(drawn: list[tuple[int, dict[str, Any], int]]) -> list[tuple[TopicPartition, Message]]:
    return [_message(PLAIN[schema_id], schema_id, value, partition, offset, f"k{offset}")
            for offset, (schema_id, value, partition) in enumerate(drawn)]


def _messages_of(records: list[LogRecord]) -> list[tuple[TopicPartition, Message]]:
    """The records as the wire has them, each partition's offsets counted anew (the factories' may repeat)."""
    offsets: dict[int, int] = {}
    out = []
    for r in records:
        offset = offsets[r.partition] = offsets.get(r.partition, -1) + 1
        schema_id = ID_OF[r.record_type]
        out.append(_message(WITH_LOGICAL_TYPES[schema_id], schema_id, r.value, r.partition, offset, r.key))
    return out


def _canonical(ex: Any) -> dict[str, pa.Table]:
    """The extraction with events in log order: runs may come out before records that precede them."""
    env = ex.envelope
    order = pc.sort_indices(env, [("topic", "ascending"), ("partition", "ascending"), ("offset", "ascending")])
    rank = np.empty(env.num_rows, dtype=np.int64)
    rank[order.to_numpy()] = np.arange(env.num_rows)

    def by_event(table: pa.Table) -> pa.Table:  # sort_indices is stable: an event's rows keep their order
        table = table.set_column(0, "ord", pa.array(rank[table.column("ord").to_numpy()]))
        return table.take(pc.sort_indices(table, [("ord", "ascending")]))

    rows, codes, counts = ex.votes.numpy()
    tally_ord = ex.content["StationTally"].column("ord").to_numpy()
    votes = pa.table({"ord": tally_ord[rows], "candidate_id": pa.array(ex.votes.candidate_ids()).take(codes),
                      "votes": counts})
    out = {"envelope": env.take(order), "mentions": by_event(ex.mentions), "votes": by_event(votes)}
    out.update({name: by_event(table) for name, table in ex.content.items()})
    return out


def _assert_same(a: Any, b: Any) -> None:
    left, right = _canonical(a), _canonical(b)
    for name, table in left.items():
        assert table.equals(right[name]), name


@settings(max_examples=80, deadline=None)
@given(drawn=events, run_records=st.integers(1, 5))
def test_column_runs_extract_to_the_tables_of_records_read_one_by_one(drawn, run_records):
    messages = _messages(drawn)
    by_record = list(snapshot.decoded(blocks(messages), _decoder()))
    with mock.patch.object(snapshot, "RUN_RECORDS", run_records):
        by_run = list(snapshot.decoded(blocks(messages), _decoder(), COLUMNAR_TYPES))
    assert all(isinstance(r, LogRecord) for r in by_record)
    assert any(isinstance(r, ColumnRun) for r in by_run) == any(schema_id != PARTY for schema_id, _, _ in drawn)
    assert sum(len(r) if isinstance(r, ColumnRun) else 1 for r in by_run) == len(drawn)
    assert all(len(r) <= run_records for r in by_run if isinstance(r, ColumnRun))
    _assert_same(extract(by_record), extract(by_run))


def test_tallies_of_an_older_schema_are_read_record_by_record():
    decoder = _decoder()
    assert decoder.columns_name(TALLY) == "StationTally"
    assert decoder.columns_name(V1_TALLY) is None
    assert decoder.columns_name(PARTY) == "PartyDeclared"  # decodable; the fold asks for runs of its own types only


def test_a_body_the_column_decoder_refuses_is_reported_as_fastavro_reports_it():
    body = io.BytesIO()
    fastavro.schemaless_writer(body, PLAIN[PARTY], {"event_id": "e", "occurred_at": 1, "recorded_at": 2,
                                                 "source": {"organisation": "o", "kind": "PARTY", "url": None},
                                                 "supersedes": None, "synthetic": False, "party_id": "p",
                                                 "name": "n", "abbreviation": None})
    truncated = body.getvalue()[:-3]
    decoder = _decoder()
    with pytest.raises(SerializationError, match=f"schema id {PARTY}"):
        decoder.decode_run("results", PARTY, [memoryview(truncated)])


def test_a_generated_election_read_as_column_runs_folds_to_the_tables_of_a_read_record_by_record():
    log = small_election()
    log.records.extend(generate_election(300, stations_per_municipality=20))
    messages = _messages_of(log.records)
    by_record = fold(snapshot.decoded(blocks(messages), _decoder()), "x")
    by_run = fold_extracted(extract_all(snapshot.decoded(blocks(messages), _decoder(), COLUMNAR_TYPES)), "x")
    for name, table in by_record.items():
        assert table.equals(by_run[name]), name
    assert by_record["station_results"].num_rows > 3000


def test_a_body_fastavro_reads_but_no_column_holds_is_a_serialization_error():
    seats_as_long = json.loads(json.dumps(RAW[DIVISION]).replace(
        '"name": "seats", "type": ["null", "int"]', '"name": "seats", "type": ["null", "long"]'))
    assert seats_as_long != RAW[DIVISION]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(without_logical_types(seats_as_long)), {
        "event_id": "e", "occurred_at": 1, "recorded_at": 2, "source": {"organisation": "o", "kind": "PARTY",
                                                                          "url": None},
        "supersedes": None, "synthetic": False, "division_id": "d", "name": "n", "kind": "MUNICIPALITY",
        "label": None, "parent_id": None, "member_of": [], "election_id": None, "municipality_id": None,
        "seats": 2**40})
    with pytest.raises(SerializationError, match=f"schema id {DIVISION}"):
        _decoder().decode_run("reference", DIVISION, [memoryview(body.getvalue())])


def test_a_message_without_a_value_is_a_serialization_error_not_a_traceback():
    messages = [(TopicPartition("results", 0), Message(0, b"k", None))]
    with pytest.raises(SerializationError, match="tombstone"):
        list(snapshot.decoded(blocks(messages), _decoder(), COLUMNAR_TYPES))
