"""Contracts: every schema parses, is documented, evolves BACKWARD-compatibly, and matches EVENT_TYPES."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import fastavro
import pytest

from pipelines.contract import schemas
from pipelines.contract.compatibility import check_backward
from pipelines.contract.record_types import EVENT_TYPE_BY_NAME, EVENT_TYPES, derive_event_id

NAMES = schemas.record_types()
_T = dt.datetime(2025, 1, 29, 16, tzinfo=dt.UTC)


def _walk(node: Any, out: list[dict[str, Any]]) -> None:
    if isinstance(node, list):
        for n in node:
            _walk(n, out)
    elif isinstance(node, dict):
        out.append(node)
        for key in ("type", "items", "values"):
            if isinstance(node.get(key), (dict, list)):
                _walk(node[key], out)
        for f in node.get("fields", []):
            _walk(f, out)


def test_event_types_match_schema_files_one_to_one() -> None:
    assert sorted(e.name for e in EVENT_TYPES) == NAMES
    assert len(NAMES) == 14


@pytest.mark.parametrize("name", NAMES)
def test_schema_parses_with_fingerprint(name: str) -> None:
    assert schemas.parsed_schema(name)["name"] == f"io.ballotstream.{name}"
    assert len(schemas.fingerprint(name)) == 64
    assert '"doc"' in schemas.schema_json(name)


@pytest.mark.parametrize("name", NAMES)
def test_every_field_has_doc_and_every_enum_a_default(name: str) -> None:
    nodes: list[dict[str, Any]] = []
    _walk(schemas.raw_schema(name), nodes)
    fields = [n for n in nodes if "name" in n and "type" in n and n.get("type") not in ("record", "enum")]
    assert fields and all(n.get("doc") for n in fields), [n["name"] for n in fields if not n.get("doc")]
    for enum in (n for n in nodes if n.get("type") == "enum"):
        assert enum["default"] in enum["symbols"]


@pytest.mark.parametrize("name", NAMES)
def test_current_is_backward_compatible_with_every_published_version(name: str) -> None:
    versions = schemas.published_versions(name)
    assert versions, f"{name} was never published"
    for old in versions:
        assert old == schemas.raw_schema(name) or check_backward(schemas.raw_schema(name), old) == []


def _station_tally() -> dict[str, Any]:
    return schemas.raw_schema("StationTally")


def _f(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["fields"].append({"name": "x", "type": "int", "doc": "d"}), "x: new field without a default"),
        (lambda s: (_f(s, "registered_voters").update(type="string"), _f(s, "registered_voters").pop("default")),
         "registered_voters: type changed from int to string"),
        (lambda s: (_f(s, "status")["type"]["symbols"].remove("FINAL"), _f(s, "status")["type"].pop("default")),
         "status: enum symbols ['FINAL'] removed"),
    ],
    ids=["field-without-default", "unpromotable-type", "enum-symbol-removed"],
)
def test_incompatible_change_is_detected(change: Any, expected: str) -> None:
    new = _station_tally()
    change(new)
    problems = check_backward(new, schemas.published_versions("StationTally")[0])
    assert any(p.startswith(expected) for p in problems), problems
    assert any(p.startswith("round trip") for p in problems), problems


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["fields"].append({"name": "x", "type": ["null", "int"], "default": None, "doc": "d"}),
        lambda s: _f(s, "registered_voters").update(type=["null", "long"]),
        lambda s: _f(s, "status")["type"]["symbols"].append("CERTIFIED"),
    ],
    ids=["field-with-default", "int-to-long", "enum-symbol-added"],
)
def test_compatible_change_passes(change: Any) -> None:
    new = _station_tally()
    change(new)
    assert check_backward(new, schemas.published_versions("StationTally")[0]) == []


def test_event_id_ignores_event_id_and_recorded_at() -> None:
    a = {"event_id": "x", "recorded_at": 1, "incident_id": "incident:a"}
    b = {"event_id": "y", "recorded_at": 2, "incident_id": "incident:a"}
    assert derive_event_id("IncidentStatusChanged", a) == derive_event_id("IncidentStatusChanged", b)
    assert derive_event_id("IncidentStatusChanged", a) != derive_event_id("IncidentReported", a)


def test_v1_station_tally_bytes_read_through_v2_as_the_default_contest() -> None:
    v1 = fastavro.parse_schema(schemas.published_versions("StationTally")[0])
    assert "contest_id" not in {f["name"] for f in schemas.published_versions("StationTally")[0]["fields"]}
    written = {
        "event_id": "00000000-0000-4000-8000-000000000001", "occurred_at": _T, "recorded_at": _T,
        "source": {"organisation": "CEC", "kind": "ELECTION_AUTHORITY", "url": None}, "supersedes": None,
        "synthetic": False, "election_id": "local.az.2025-01-29",
        "station_id": "ocd-division/country:az/constituency:23/polling_station:32",
        "municipality_id": "ocd-division/country:az/region:baku/municipality:sabail", "status": "FINAL",
        "registered_voters": 100, "ballots_cast": 40, "valid_ballots": 38, "invalid_ballots": 2,
        "votes": [{"candidate_id": "candidate:a", "votes": 38}],
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v1, written)
    buf.seek(0)
    read = fastavro.schemaless_reader(buf, v1, schemas.parsed_schema("StationTally"))
    assert read["contest_id"] is None
    assert {k: read[k] for k in ("overvotes", "undervotes", "blank_votes", "write_ins")} == dict.fromkeys(
        ("overvotes", "undervotes", "blank_votes", "write_ins"))
    assert read["votes"] == [{"candidate_id": "candidate:a", "votes": 38, "by_method": []}]
    same = ("occurred_at", "source", "election_id", "station_id", "municipality_id", "status", "registered_voters",
            "ballots_cast", "valid_ballots", "invalid_ballots")
    assert {k: read[k] for k in same} == {k: written[k] for k in same}
    assert EVENT_TYPE_BY_NAME["StationTally"].key(read) == f"{written['election_id']}|{written['station_id']}"
