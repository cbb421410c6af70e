"""Readers: one bad input per reason code (expected code and field), good JSONL/CSV, stable ids, CSV lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.contract import reasons
from pipelines.ingest.checks import KnownIds, with_references
from pipelines.ingest.readers import Parsed, Rejected, read_path
from pipelines.ingest.tally_csv import TALLY_COLUMNS
from tests.support.inputs import SRC, ST, E, T, csv_rows, tally


def write_jsonl(tmp_path: Path, *lines: Any) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def bad_votes() -> dict[str, Any]:
    t = tally()
    t["votes"][3]["votes"] = -5
    return t


def _without(key: str) -> dict[str, Any]:
    t = tally()
    del t[key]
    return t


JSONL_CASES = [
    ("malformed_json", '{"type": "StationTally", ', None, None),
    ("unknown_record_type", {"type": "Nope"}, None, "type"),
    ("wrong_kind", {"type": "PartyDeclared", "occurred_at": T, "source": SRC, "party_id": "party:x", "name": "X"},
     "results", "type"),
    ("missing_field", _without("station_id"), None, "station_id"),
    ("unknown_field", tally(colour="red"), None, "colour"),
    ("wrong_type", tally(ballots_cast="40"), None, "ballots_cast"),
    ("unknown_enum_symbol", tally(status="COUNTED"), None, "status"),
    ("invalid_id", tally(station_id="Station 32"), None, "station_id"),
    ("negative_count", bad_votes(), None, "votes[3].votes"),
    ("duplicate_key", json.dumps(tally())[:-1] + ', "status": "FINAL"}', None, "status"),
    ("too_deeply_nested", "[" * 10_000 + "]" * 10_000, None, None),
    ("control_character", tally(occurred_at=T + "\x00"), None, "occurred_at"),
    ("contest_election_mismatch", tally(contest_id="general.az.sabail.2025-01-29"), None, "contest_id"),
    ("record_too_large", tally(source={**SRC, "organisation": "x" * 1_000_000}), None, None),
]


@pytest.mark.parametrize(("code", "line", "kind", "field"), JSONL_CASES, ids=[c[0] for c in JSONL_CASES])
def test_bad_jsonl_is_rejected_with_reason_and_field(tmp_path: Path, code: str, line: Any, kind: str | None,
                                                      field: str | None) -> None:
    (result,) = list(read_path(write_jsonl(tmp_path, line), kind))
    assert isinstance(result, Rejected)
    assert (result.reason_code, result.field, result.line, result.kind) == (code, field, 1, kind)
    assert "\n" not in result.reason and (field is None or result.reason.startswith(f"{field}: "))


def test_negative_count_reason_names_nested_field(tmp_path: Path) -> None:
    (result,) = list(read_path(write_jsonl(tmp_path, bad_votes())))
    assert isinstance(result, Rejected) and result.reason == "votes[3].votes: negative count -5"


def test_unknown_reference_is_rejected(tmp_path: Path) -> None:
    items = list(with_references(read_path(write_jsonl(tmp_path, tally())), KnownIds()))
    assert isinstance(items[0], Rejected)
    assert (items[0].reason_code, items[0].field) == (reasons.UNKNOWN_REFERENCE, "election_id")


def test_every_reason_code_has_a_case() -> None:
    covered = {c[0] for c in JSONL_CASES} | {"malformed_csv", "unknown_reference", "invalid_encoding"}
    assert covered == set(reasons.REASON_CODES)


def test_good_jsonl_parses_with_defaults_and_routing(tmp_path: Path) -> None:
    (p,) = list(read_path(write_jsonl(tmp_path, "", tally()), "results"))
    assert isinstance(p, Parsed) and p.line == 2
    assert (p.record_type, p.topic, p.key) == ("StationTally", "ballotstream.results", f"{E}|{ST}")
    assert p.value["recorded_at"] == p.value["occurred_at"] and p.value["occurred_at"].utcoffset() is not None
    assert p.value["supersedes"] is None and p.value["synthetic"] is False


def test_retraction_routes_by_target_key(tmp_path: Path) -> None:
    r = {"type": "Retraction", "occurred_at": T, "source": SRC, "target_event_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
         "target_key": "incident:x", "reason": "withdrawn"}
    (p,) = list(read_path(write_jsonl(tmp_path, r)))
    assert isinstance(p, Parsed) and (p.topic, p.key) == ("ballotstream.observations", "incident:x")
    (w,) = list(read_path(write_jsonl(tmp_path, r), "news"))
    assert isinstance(w, Rejected) and w.reason_code == reasons.WRONG_KIND


def test_event_ids_are_deterministic_and_ignore_recorded_at(tmp_path: Path) -> None:
    a = list(read_path(write_jsonl(tmp_path, tally())))[0]
    b = list(read_path(write_jsonl(tmp_path, tally(recorded_at="2025-02-01T00:00:00Z"))))[0]
    c = list(read_path(write_jsonl(tmp_path, tally(invalid_ballots=3))))[0]
    assert isinstance(a, Parsed) and isinstance(b, Parsed) and isinstance(c, Parsed)
    assert a.value["event_id"] == b.value["event_id"] != c.value["event_id"]



def write_csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(",".join(TALLY_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    return path


def test_good_csv_groups_consecutive_rows_and_matches_jsonl(tmp_path: Path) -> None:
    other = [r.replace("polling_station:32", "polling_station:33") for r in csv_rows(["20", "18"])]
    items = list(read_path(write_csv(tmp_path, csv_rows(["9", "9", "9", "11"]) + other)))
    assert [type(i) for i in items] == [Parsed, Parsed] and [i.line for i in items] == [2, 6]
    (j,) = list(read_path(write_jsonl(tmp_path, tally())))
    assert isinstance(j, Parsed) and items[0].value == j.value


@pytest.mark.parametrize(
    ("votes", "code", "line", "field"),
    [
        (["9", "9", "-5", "11"], "negative_count", 4, "votes[2].votes"),
        (["9", "nine", "9", "11"], "wrong_type", 3, "votes[1].votes"),
        (["9", "9", "9", "11,extra"], "malformed_csv", 5, None),
    ],
    ids=["negative", "wrong-type", "extra-column"],
)
def test_bad_csv_names_the_row_line(tmp_path: Path, votes: list[str], code: str, line: int,
                                    field: str | None) -> None:
    (r,) = list(read_path(write_csv(tmp_path, csv_rows(votes))))
    assert isinstance(r, Rejected) and (r.reason_code, r.line, r.field) == (code, line, field)


def test_csv_bad_header_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    (r,) = list(read_path(path))
    assert isinstance(r, Rejected) and r.reason_code == reasons.MALFORMED_CSV and r.line == 1
