"""The contest tables (docs/contests.md) on small logs: default contest, several contests per station, unknown
figures, roll-up through member_of, winners and margins, known counts, vote methods."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa

from pipelines.fold import fold
from pipelines.fold import tables as t
from tests.support.factories import COUNTRY, ELECTION, REFERENDUM, Log, muni, small_election, station

COUNCIL = "local.az.absheron-xirdalan.2025-01-29"
PRECINCT = f"{COUNTRY}/county:absheron/precinct:p1"
COUNTY = f"{COUNTRY}/county:absheron"
DISTRICT = f"{COUNTRY}/cd:7"


def _rows(tables: dict[str, pa.Table], name: str, **match: Any) -> list[dict[str, Any]]:
    return [r for r in tables[name].to_pylist() if all(r[k] == v for k, v in match.items())]


def _base(log: Log) -> Log:
    log.election()
    log.division(COUNTRY, "COUNTRY", None)
    log.division(f"{COUNTRY}/constituency:23", "CONSTITUENCY", COUNTRY)
    for n in (1, 2, 3):
        log.division(station(n), "POLLING_STATION", f"{COUNTRY}/constituency:23", municipality_id=muni("a"))
    return log


def test_v1_tally_folds_as_the_default_contest() -> None:
    log = _base(Log())
    log.tally(station(1), muni("a"), {"candidate:aysel": 300, "candidate:babek": 200})
    tables = fold(log.records)
    [contest] = tables[t.CONTESTS].to_pylist()
    assert contest["contest_id"] == ELECTION and contest["kind"] == "OTHER"
    assert contest["name"] == "Municipal elections 2025" and contest["event_id"] is None
    assert {r["contest_id"] for r in tables[t.STATION_RESULTS].to_pylist()} == {ELECTION}
    assert {r["selection_kind"] for r in tables[t.STATION_RESULTS].to_pylist()} == {"CANDIDATE"}
    [turnout] = tables[t.STATION_TURNOUT].to_pylist()
    assert turnout["contest_id"] == ELECTION and turnout["overvotes"] is None and turnout["write_ins"] is None
    [summary] = tables[t.CONTEST_SUMMARY].to_pylist()
    # number_elected is unknown for the default contest: who won is not invented.
    assert summary["winners"] is None and summary["margin"] is None and summary["total_votes"] == 500
    assert summary["stations_expected"] is None and summary["stations_reporting"] == 1


def test_two_contests_at_one_station_are_both_current() -> None:
    log = _base(Log())
    log.contest(COUNCIL, ["candidate:aysel", "candidate:babek"], number_elected=1)
    log.contest(REFERENDUM, ["option:yes", "option:no"], kind="BALLOT_MEASURE", number_elected=None)
    first = log.tally2(station(1), COUNCIL, {"candidate:aysel": 300, "candidate:babek": 200},
                       municipality_id=muni("a"))
    second = log.tally2(station(1), REFERENDUM, {"option:yes": 400, "option:no": 100}, municipality_id=muni("a"))
    assert first.key != second.key
    tables = fold(log.records)
    assert {(r["contest_id"], r["station_id"]) for r in tables[t.STATION_TURNOUT].to_pylist()} == {
        (COUNCIL, station(1)), (REFERENDUM, station(1))}
    assert len(_rows(tables, t.EVENTS, record_type="StationTally")) == 2 and tables[t.NONCURRENT_EVENTS].num_rows == 0
    kinds = {r["candidate_id"]: r["selection_kind"] for r in tables[t.STATION_RESULTS].to_pylist()}
    assert kinds == {"candidate:aysel": "CANDIDATE", "candidate:babek": "CANDIDATE", "option:yes": "OPTION",
                     "option:no": "OPTION"}
    # Options and parties are no council candidates: municipality_results keeps to candidates.
    assert {r["candidate_id"] for r in tables[t.MUNICIPALITY_RESULTS].to_pylist()} == {
        "candidate:aysel", "candidate:babek"}
    assert [r["contest_id"] for r in tables[t.CONTESTS].to_pylist()] == sorted([COUNCIL, REFERENDUM])
    sel = tables[t.CONTEST_SELECTIONS].to_pylist()
    assert [(r["contest_id"], r["selection_id"]) for r in sel] == sorted(
        [(COUNCIL, "candidate:aysel"), (COUNCIL, "candidate:babek"), (REFERENDUM, "option:no"),
         (REFERENDUM, "option:yes")])
    assert all(r["event_id"] for r in sel)


def test_unknown_figures_stay_null_and_are_counted_as_unknown() -> None:
    log = _base(Log())
    log.tally2(station(1), ELECTION, {"candidate:aysel": 300}, registered=1000, invalid=10)
    log.tally2(station(2), ELECTION, {"candidate:aysel": 200}, registered=None, invalid=10)
    log.tally2(station(3), ELECTION, {"candidate:aysel": 100}, registered=500, invalid=None, blank_votes=4)
    tables = fold(log.records)
    turnout = {r["station_id"]: r for r in tables[t.STATION_TURNOUT].to_pylist()}
    assert turnout[station(2)]["registered_voters"] is None and turnout[station(2)]["turnout"] is None
    assert turnout[station(3)]["ballots_cast"] is None and turnout[station(3)]["turnout"] is None
    assert turnout[station(1)]["turnout"] == 310 / 1000
    [summary] = tables[t.CONTEST_SUMMARY].to_pylist()
    assert (summary["registered_voters"], summary["registered_known"]) == (1500, 2)
    assert (summary["ballots_cast"], summary["ballots_cast_known"]) == (520, 2)
    assert summary["turnout"] == 310 / 1000  # only station 1 reports both
    assert summary["blank_votes"] == 4 and summary["overvotes"] is None
    national = {r["metric"]: r for r in tables[t.NATIONAL_SUMMARY].to_pylist()}
    assert (national["REGISTERED_VOTERS"]["computed"], national["REGISTERED_VOTERS"]["known"]) == (1500.0, 2)
    assert (national["TURNOUT"]["computed"], national["TURNOUT"]["known"]) == (310 / 1000, 1)
    assert (national["INVALID_BALLOTS"]["computed"], national["INVALID_BALLOTS"]["known"]) == (20.0, 2)


def test_nothing_known_is_null_not_zero() -> None:
    log = _base(Log())
    log.tally2(station(1), ELECTION, {"candidate:aysel": 300}, registered=None, invalid=None, valid=None)
    tables = fold(log.records)
    [summary] = tables[t.CONTEST_SUMMARY].to_pylist()
    assert summary["registered_voters"] is None and summary["registered_known"] == 0
    assert summary["ballots_cast"] is None and summary["turnout"] is None
    national = {r["metric"]: r for r in tables[t.NATIONAL_SUMMARY].to_pylist()}
    assert national["REGISTERED_VOTERS"]["computed"] is None and national["REGISTERED_VOTERS"]["known"] == 0
    assert national["VALID_BALLOTS"]["computed"] is None


def test_division_roll_up_follows_parents_and_member_of() -> None:
    log = Log()
    log.election()
    log.division(COUNTRY, "COUNTRY", None)
    log.division(COUNTY, "COUNTY", COUNTRY, label="county")
    log.division(DISTRICT, "DISTRICT", COUNTRY, label="congressional district")
    log.division(PRECINCT, "PRECINCT", COUNTY, member_of=[DISTRICT])
    log.division(f"{COUNTY}/precinct:p2", "PRECINCT", COUNTY)
    log.contest(COUNCIL, ["candidate:aysel", "candidate:babek"], district_id=DISTRICT, number_elected=1)
    log.tally2(PRECINCT, COUNCIL, {"candidate:aysel": 30, "candidate:babek": 20})
    log.tally2(f"{COUNTY}/precinct:p2", COUNCIL, {"candidate:aysel": 5, "candidate:babek": 7})
    tables = fold(log.records)
    division = {(r["unit_id"], r["selection_id"]): (r["votes"], r["stations"])
                for r in _rows(tables, t.CONTEST_RESULTS, level="division")}
    assert division == {
        (COUNTRY, "candidate:aysel"): (35, 2), (COUNTRY, "candidate:babek"): (27, 2),  # once, by either path
        (COUNTY, "candidate:aysel"): (35, 2), (COUNTY, "candidate:babek"): (27, 2),
        (DISTRICT, "candidate:aysel"): (30, 1), (DISTRICT, "candidate:babek"): (20, 1),
    }
    contest = {r["selection_id"]: r["votes"] for r in _rows(tables, t.CONTEST_RESULTS, level="contest")}
    assert contest == {"candidate:aysel": 35, "candidate:babek": 27}
    [summary] = tables[t.CONTEST_SUMMARY].to_pylist()
    assert summary["stations_expected"] == 1 and summary["stations_reporting"] == 2  # the gate's to judge
    divisions = {r["division_id"]: r for r in tables[t.DIVISIONS].to_pylist()}
    assert divisions[PRECINCT]["member_of"] == [DISTRICT] and divisions[DISTRICT]["label"] == "congressional district"


def test_winners_and_margin() -> None:
    log = _base(Log())
    two_seats = "local.az.two.2025-01-29"
    unknown_seats = "local.az.unknown.2025-01-29"
    log.contest(two_seats, ["candidate:a", "candidate:b", "candidate:c"], number_elected=2)
    log.contest(unknown_seats, ["party:x", "party:y"], kind="PARTY_LIST", number_elected=None)
    log.contest(REFERENDUM, ["option:yes", "option:no"], kind="BALLOT_MEASURE", number_elected=None)
    log.tally2(station(1), two_seats, {"candidate:a": 50, "candidate:b": 40, "candidate:c": 25})
    log.tally2(station(2), two_seats, {"candidate:a": 10, "candidate:b": 5, "candidate:c": 10})
    log.tally2(station(1), unknown_seats, {"party:x": 10, "party:y": 20})
    log.tally2(station(1), REFERENDUM, {"option:yes": 40, "option:no": 60})
    tables = fold(log.records)
    summary = {r["contest_id"]: r for r in tables[t.CONTEST_SUMMARY].to_pylist()}
    assert summary[two_seats]["winners"] == ["candidate:a", "candidate:b"] and summary[two_seats]["margin"] == 10
    assert summary[two_seats]["total_votes"] == 140 and summary[two_seats]["kind"] == "CANDIDATE"
    assert summary[unknown_seats]["winners"] is None and summary[unknown_seats]["margin"] is None
    assert summary[REFERENDUM]["winners"] == ["option:no"] and summary[REFERENDUM]["margin"] == 20
    party = {r["candidate_id"]: r["party_id"] for r in _rows(tables, t.STATION_RESULTS, contest_id=unknown_seats)}
    assert party == {"party:x": "party:x", "party:y": "party:y"}  # a party-list selection is its party


def test_vote_methods_sum_where_reported() -> None:
    log = _base(Log())
    log.contest(REFERENDUM, ["option:yes", "option:no"], kind="BALLOT_MEASURE", number_elected=None)
    log.tally2(station(1), REFERENDUM, {"option:yes": {"ELECTION_DAY": 30, "MAIL": 10}, "option:no": 5})
    log.tally2(station(2), REFERENDUM, {"option:yes": {"ELECTION_DAY": 7, "EARLY": None, "total": 9},
                                        "option:no": 4})
    tables = fold(log.records)
    yes = {r["unit_id"]: r for r in _rows(tables, t.CONTEST_RESULTS, selection_id="option:yes")}
    s1, s2, whole = yes[station(1)], yes[station(2)], yes[REFERENDUM]
    assert (s1["votes_election_day"], s1["votes_mail"], s1["votes_early"], s1["methods_unknown"]) == (30, 10, None, 0)
    assert (s2["votes_election_day"], s2["votes_early"], s2["methods_unknown"]) == (7, None, 1)
    assert (whole["votes"], whole["votes_election_day"], whole["votes_mail"], whole["votes_early"]) == (49, 37, 10, None)
    assert whole["methods_unknown"] == 1 and whole["stations"] == 2
    no = _rows(tables, t.CONTEST_RESULTS, selection_id="option:no", level="contest")[0]
    assert no["votes_election_day"] is None and no["methods_unknown"] is None


def test_candidate_shares_are_over_known_values() -> None:
    log = _base(Log())
    log.candidate("candidate:a", muni("a"), None, gender="FEMALE", education="UNKNOWN", age_band="UNKNOWN")
    log.candidate("candidate:b", muni("a"), None, gender="UNKNOWN", education="HIGHER", age_band="AGE_21_35")
    log.candidate("candidate:c", muni("a"), None, gender="MALE", education="SECONDARY", age_band="AGE_36_50")
    tables = fold(log.records)
    national = {r["metric"]: (r["computed"], r["known"]) for r in tables[t.NATIONAL_SUMMARY].to_pylist()}
    assert national["CANDIDATES_WOMEN_SHARE"] == (0.5, 2)
    assert national["CANDIDATES_HIGHER_EDUCATION_SHARE"] == (0.5, 2)
    assert national["CANDIDATES_AGED_21_35_SHARE"] == (0.5, 2)
    assert national["CANDIDATES_INDEPENDENT"] == (3.0, 3)


def test_contest_tables_do_not_depend_on_arrival_order() -> None:
    records = small_election().records
    names = (t.CONTESTS, t.CONTEST_SELECTIONS, t.CONTEST_RESULTS, t.CONTEST_SUMMARY, t.STATION_RESULTS)
    first = fold(records)
    shuffled = list(records)
    random.Random(7).shuffle(shuffled)
    second = fold(shuffled)
    for name in names:
        assert first[name].equals(second[name]), name
    results = first[t.CONTEST_RESULTS]
    keys = [tuple(r[k] for k in t.KEYS[t.CONTEST_RESULTS]) for r in results.to_pylist()]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_a_tally_without_a_municipality_adds_nothing_to_municipality_results() -> None:
    log = _base(Log())
    log.contest(COUNCIL, ["candidate:aysel", "candidate:babek"], number_elected=1)
    log.tally2(station(1), COUNCIL, {"candidate:aysel": 300, "candidate:babek": 200})
    tables = fold(log.records)
    assert tables[t.MUNICIPALITY_RESULTS].num_rows == 0
    assert {r["votes"] for r in _rows(tables, t.CONTEST_RESULTS, level="contest")} == {300, 200}
