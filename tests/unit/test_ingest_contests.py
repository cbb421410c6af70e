"""Ingest of the contest model (docs/contests.md): ContestDeclared and its references, tallies per contest (JSON
and CSV with the optional contest_id column), selection ids, and unknown figures kept null."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.contract import reasons
from pipelines.ingest.checks import KnownIds, with_references
from pipelines.ingest.readers import Parsed, Rejected, read_path
from pipelines.ingest.tally_csv import TALLY_COLUMNS, TALLY_COLUMNS_WITH_CONTEST, rows_to_tally, tally_rows

E = "local.az.2025-01-29"
C = "local.az.sabail.2025-01-29"
AZ = "ocd-division/country:az"
ST = f"{AZ}/constituency:23/polling_station:32"
MU = f"{AZ}/region:baku/municipality:sabail"
SRC = {"organisation": "CEC", "kind": "ELECTION_AUTHORITY", "url": None}
T = "2025-01-29T20:00:00+04:00"


def _event(record_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": record_type, "occurred_at": T, "source": SRC, **fields}


def reference() -> list[dict[str, Any]]:
    return [
        _event("ElectionDeclared", election_id=E, name="Municipal", date="2025-01-29", kind="MUNICIPAL", country="az"),
        _event("DivisionDeclared", division_id=AZ, name="Azerbaijan", kind="COUNTRY"),
        _event("DivisionDeclared", division_id=MU, name="Sabail", kind="MUNICIPALITY", parent_id=AZ, seats=2),
        _event("DivisionDeclared", division_id=ST, name="PS 32", kind="PRECINCT", parent_id=AZ, member_of=[MU],
               label="polling station"),
        _event("PartyDeclared", party_id="party:real", name="REAL"),
        _event("CandidateRegistered", candidate_id="candidate:a", election_id=E, name="A", party_id="party:real",
               municipality_id=MU, gender="FEMALE", age_band="UNKNOWN", education="UNKNOWN"),
        contest(),
    ]


def contest(**over: Any) -> dict[str, Any]:
    return _event("ContestDeclared", contest_id=C, election_id=E, name="Municipal council of Sabail",
                  kind="CANDIDATE", office="Municipal council", district_id=MU, number_elected=2, votes_allowed=1,
                  selections=[{"selection_id": "candidate:a", "kind": "CANDIDATE", "label": "A",
                               "candidate_id": "candidate:a", "party_id": "party:real"},
                              {"selection_id": "write-in:other", "kind": "WRITE_IN", "label": "Other"}]) | over


def tally(**over: Any) -> dict[str, Any]:
    return _event("StationTally", election_id=E, station_id=ST, contest_id=C, status="FINAL",
                  votes=[{"candidate_id": "candidate:a", "votes": 9}]) | over


def ingest(tmp_path: Path, *events: dict[str, Any]) -> list[Parsed | Rejected]:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return list(with_references(read_path(path), KnownIds()))


def _rejected(items: list[Parsed | Rejected]) -> list[tuple[int, str, str | None]]:
    return [(r.line, r.reason_code, r.field) for r in items if isinstance(r, Rejected)]


def test_contest_declared_is_accepted_keyed_by_contest_id_on_reference(tmp_path: Path) -> None:
    items = ingest(tmp_path, *reference())
    assert _rejected(items) == []
    declared = items[-1]
    assert isinstance(declared, Parsed)
    assert (declared.topic, declared.key) == ("ballotstream.reference", C)
    assert declared.value["selections"][1] == {"selection_id": "write-in:other", "kind": "WRITE_IN", "label": "Other",
                                               "candidate_id": None, "party_id": None, "running_mates": []}


def test_contest_needs_a_declared_election_and_resolving_references(tmp_path: Path) -> None:
    assert _rejected(ingest(tmp_path, contest())) == [(1, reasons.UNKNOWN_REFERENCE, "election_id")]
    ref = reference()[:-1]
    bad_district = contest(district_id=f"{AZ}/region:nowhere")
    bad_selection = contest(selections=[{"selection_id": "candidate:b", "kind": "CANDIDATE", "label": "B",
                                         "candidate_id": "candidate:b"}])
    assert _rejected(ingest(tmp_path, *ref, bad_district, bad_selection)) == [
        (7, reasons.UNKNOWN_REFERENCE, "district_id"), (8, reasons.UNKNOWN_REFERENCE, "selections[0].candidate_id")]


def test_contest_id_must_share_its_election_type_prefix_and_date(tmp_path: Path) -> None:
    wrong = [contest(contest_id="general.az.sabail.2025-01-29"), contest(contest_id="local.az.sabail.2025-01-30"),
             contest(contest_id="local.az.Sabail.2025-01-29")]
    assert _rejected(ingest(tmp_path, *reference()[:-1], *wrong)) == [
        (7, reasons.CONTEST_ELECTION_MISMATCH, "contest_id"), (8, reasons.CONTEST_ELECTION_MISMATCH, "contest_id"),
        (9, reasons.INVALID_ID, "contest_id")]


def test_a_tally_contest_must_be_declared_unless_it_is_the_default_contest(tmp_path: Path) -> None:
    ref = reference()
    items = ingest(tmp_path, *ref[:-1], tally(), tally(contest_id=E), tally(contest_id=None), ref[-1], tally())
    assert _rejected(items) == [(7, reasons.UNKNOWN_REFERENCE, "contest_id")]
    keys = [i.key for i in items if isinstance(i, Parsed) and i.record_type == "StationTally"]
    assert keys == [f"{E}|{ST}", f"{E}|{ST}", f"{E}|{C}|{ST}"]


def test_unknown_figures_stay_null_and_selections_may_be_any_selection_id(tmp_path: Path) -> None:
    votes = [{"candidate_id": s, "votes": 1} for s in ("candidate:a", "party:real", "option:yes", "write-in:x")]
    items = ingest(tmp_path, *reference(), tally(votes=votes, municipality_id=None))
    assert _rejected(items) == []
    value = items[-1].value  # type: ignore[union-attr]
    for field in ("municipality_id", "registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots",
                  "overvotes", "undervotes", "blank_votes", "write_ins"):
        assert value[field] is None, field
    assert [v["by_method"] for v in value["votes"]] == [[]] * 4
    method = [{"candidate_id": "candidate:a", "votes": 5,
               "by_method": [{"method": "MAIL", "votes": 2}, {"method": "EARLY", "votes": None}]}]
    assert _rejected(ingest(tmp_path, *reference(), tally(votes=method))) == []
    unknown = [{"candidate_id": "party:nope", "votes": 1}]
    bad = [{"candidate_id": "vote:yes", "votes": 1}]
    assert _rejected(ingest(tmp_path, *reference(), tally(votes=unknown), tally(votes=bad))) == [
        (8, reasons.UNKNOWN_REFERENCE, "votes[0].candidate_id"), (9, reasons.INVALID_ID, "votes[0].candidate_id")]


def _csv(tmp_path: Path, columns: tuple[str, ...], rows: list[list[str]]) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("\n".join(",".join(r) for r in [list(columns), *rows]) + "\n")
    return path


def _row(candidate: str, votes: str, *, contest: str | None = None, registered: str = "100") -> list[str]:
    row = [E, ST, MU, "FINAL", registered, "40", "38", "2", candidate, votes, T, "CEC", "ELECTION_AUTHORITY", ""]
    return row if contest is None else [*row, contest]


def test_csv_without_contest_column_still_reads_as_the_default_contest(tmp_path: Path) -> None:
    (p,) = list(read_path(_csv(tmp_path, TALLY_COLUMNS, [_row("candidate:a", "20"), _row("candidate:b", "18")])))
    assert isinstance(p, Parsed) and p.key == f"{E}|{ST}" and p.value["contest_id"] is None


def test_csv_contest_column_splits_a_station_into_one_tally_per_contest(tmp_path: Path) -> None:
    rows = [_row("candidate:a", "20", contest=C), _row("candidate:b", "18", contest=C),
            _row("option:yes", "30", contest="local.az.sabail.measure.2025-01-29", registered=""),
            _row("option:no", "8", contest="local.az.sabail.measure.2025-01-29", registered="")]
    items = list(read_path(_csv(tmp_path, TALLY_COLUMNS_WITH_CONTEST, rows)))
    assert all(isinstance(i, Parsed) for i in items) and [i.line for i in items] == [2, 4]
    council, measure = items
    assert council.key == f"{E}|{C}|{ST}" and measure.key == f"{E}|local.az.sabail.measure.2025-01-29|{ST}"
    assert council.value["registered_voters"] == 100 and measure.value["registered_voters"] is None
    empty_contest = list(read_path(_csv(tmp_path, TALLY_COLUMNS_WITH_CONTEST, [_row("candidate:a", "1", contest="")])))
    assert isinstance(empty_contest[0], Parsed) and empty_contest[0].value["contest_id"] is None


def test_csv_rows_of_a_tally_round_trip_with_the_contest_column() -> None:
    value = {"election_id": E, "station_id": ST, "contest_id": C, "municipality_id": None, "status": "FINAL",
             "registered_voters": None, "ballots_cast": 40, "valid_ballots": 38, "invalid_ballots": 2,
             "votes": [{"candidate_id": "candidate:a", "votes": 38}], "source": SRC}
    rows = tally_rows(value, T, TALLY_COLUMNS_WITH_CONTEST)
    back = rows_to_tally(rows, TALLY_COLUMNS_WITH_CONTEST)
    assert back["contest_id"] == C and back["municipality_id"] is None and back["registered_voters"] is None
    assert len(rows[0]) == len(TALLY_COLUMNS_WITH_CONTEST)


def test_csv_with_contest_column_rejects_rows_missing_it(tmp_path: Path) -> None:
    (r,) = list(read_path(_csv(tmp_path, TALLY_COLUMNS_WITH_CONTEST, [_row("candidate:a", "20")])))
    assert isinstance(r, Rejected) and r.reason_code == reasons.MALFORMED_CSV and "expected 15 columns" in r.reason
