"""OpenElections rows → events, on the real files (tests/data/openelections/): counts, ids, nulls, methods, and
per (contest, county, selection) the tallies' votes equal the csv-only totals of the file exactly.

Plain dicts only: nothing here needs the v2 Avro schemas (ingest validates the events against them).
``python tests/unit/test_openelections_events.py`` prints the per-file counts.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from pipelines.contract.ids import CANDIDATE_ID_RE, DIVISION_ID_RE, ELECTION_ID_RE, PARTY_ID_RE
from pipelines.ingest import openelections as oe
from pipelines.ingest.openelections_events import convert, convert_files, method_symbol
from tests.support.openelections import PSEUDO, expected_votes

DATA = Path(__file__).resolve().parents[1] / "data" / "openelections"
FILES = sorted(DATA.rglob("*.csv"))

# name → (records read, events, rows rejected, rows skipped), each file converted on its own
EXPECTED = {
    "20160301__ga__primary__president__pierce__precinct.csv": (153, 49, 0, 17),
    "20160726__ga__primary__runoff__taliaferro__precinct.csv": (6, 13, 0, 2),
    "20181106__ga__general__echols__precinct.csv": (49, 95, 0, 0),
    "20181106__ga__general__schley__precinct.csv": (55, 103, 0, 0),
    "20181106__ga__general__taliaferro__precinct.csv": (98, 121, 0, 0),
    "20201103__pa__general__forest__precinct.csv": (270, 113, 0, 9),
    "20221108__pa__general__montour__precinct.csv": (285, 103, 0, 0),
    "20161108__tx__general__parmer__precinct.csv": (280, 81, 0, 28),
    "20201103__tx__general__brooks__precinct.csv": (148, 68, 0, 0),
    "20201103__tx__general__stonewall__precinct.csv": (132, 64, 0, 0),
}


def _events(path: Path) -> list[dict]:
    return [e.value for e in convert_files([path]).events]


def _tallies(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "StationTally"]


def file_report() -> list[tuple[str, int, int, int, int]]:
    out = []
    for p in FILES:
        c = convert_files([p])
        s = c.files[str(p)]
        out.append((f"{p.parent.name}/{p.name}", s.records, len(c.events), s.rejected, s.skipped))
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_counts_per_file(path: Path):
    conversion = convert_files([path])
    stats = conversion.files[str(path)]
    assert (stats.records, len(conversion.events), stats.rejected, stats.skipped) == EXPECTED[path.name]
    assert stats.events == len(conversion.events)
    assert sum(conversion.skipped.values()) == stats.skipped and conversion.totals_mismatch == 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_same_file_same_events_and_ids_well_formed(path: Path):
    first, again = _events(path), _events(path)
    assert json.dumps(first) == json.dumps(again)
    kinds = [e["type"] for e in first]
    assert kinds[0] == "ElectionDeclared" and kinds[-1] == "StationTally"
    assert kinds[: len(kinds) - len(_tallies(first))].count("StationTally") == 0  # reference events first
    election = first[0]["election_id"]
    assert ELECTION_ID_RE.fullmatch(election)
    for e in first:
        assert e["source"] == {"organisation": "OpenElections", "kind": "OTHER", "url": None}
        if e["type"] == "DivisionDeclared":
            assert DIVISION_ID_RE.fullmatch(e["division_id"]) and e["kind"] in (
                "COUNTRY", "REGION", "COUNTY", "PRECINCT", "DISTRICT")
        elif e["type"] == "PartyDeclared":
            assert PARTY_ID_RE.fullmatch(e["party_id"])
        elif e["type"] == "CandidateRegistered":
            assert CANDIDATE_ID_RE.fullmatch(e["candidate_id"]) and e["municipality_id"] is None
            assert (e["gender"], e["age_band"], e["education"]) == ("UNKNOWN", "UNKNOWN", "UNKNOWN")
        elif e["type"] == "ContestDeclared":
            cid = e["contest_id"]
            assert ELECTION_ID_RE.fullmatch(cid) and cid.split(".")[0] == election.split(".")[0]
            assert cid[-10:] == election[-10:] and cid != election
            assert e["selections"] == sorted(e["selections"], key=lambda s: s["selection_id"])
    keys = [(t["contest_id"], t["station_id"]) for t in _tallies(first)]
    assert len(keys) == len(set(keys))  # one tally per contest × precinct


def test_ids_follow_docs_contests():
    forest = _events(DATA / "pa" / "20201103__pa__general__forest__precinct.csv")
    contests = {e["contest_id"]: e for e in forest if e["type"] == "ContestDeclared"}
    assert {"general.us.pa.president.2020-11-03", "general.us.pa.state-representative.d-63.2020-11-03",
            "general.us.pa.u-s-house.d-15.2020-11-03"} <= set(contests)
    assert contests["general.us.pa.u-s-house.d-15.2020-11-03"]["district_id"] == \
        "ocd-division/country:us/state:pa/cd:15"
    assert contests["general.us.pa.president.2020-11-03"]["district_id"] == "ocd-division/country:us/state:pa"
    precinct = next(e for e in forest if e["type"] == "DivisionDeclared" and e["name"] == "Barnett Township")
    assert precinct["division_id"] == "ocd-division/country:us/state:pa/county:forest/precinct:barnett_township"
    assert precinct["kind"] == "PRECINCT" and precinct["parent_id"] == "ocd-division/country:us/state:pa/county:forest"
    assert "ocd-division/country:us/state:pa/cd:15" in precinct["member_of"]
    pierce = _events(DATA / "ga" / "20160301__ga__primary__president__pierce__precinct.csv")
    assert pierce[0]["election_id"] == "primary.us.ga.president.2016-03-01" and pierce[0]["kind"] == "PRIMARY"
    assert sorted(e["contest_id"] for e in pierce if e["type"] == "ContestDeclared") == [
        "primary.us.ga.president.president.dem.2016-03-01", "primary.us.ga.president.president.rep.2016-03-01"]
    runoff = _events(DATA / "ga" / "20160726__ga__primary__runoff__taliaferro__precinct.csv")
    assert (runoff[0]["election_id"], runoff[0]["kind"]) == ("primary.us.ga.runoff.2016-07-26", "RUNOFF")


def test_contest_kinds_selections_and_tickets():
    echols = _events(DATA / "ga" / "20181106__ga__general__echols__precinct.csv")
    by_name = {e["name"].split("<br>")[0]: e for e in echols if e["type"] == "ContestDeclared"}
    amendment = by_name["Constitutional Amendment #1"]
    assert amendment["kind"] == "BALLOT_MEASURE" and amendment["office"] is None
    assert [(s["selection_id"], s["kind"], s["label"]) for s in amendment["selections"]] == [
        ("option:no", "OPTION", "NO"), ("option:yes", "OPTION", "YES")]
    assert by_name["Governor"]["kind"] == "CANDIDATE"
    parmer = _events(DATA / "tx" / "20161108__tx__general__parmer__precinct.csv")
    straight = next(e for e in parmer if e["type"] == "ContestDeclared" and e["name"] == "Straight Party")
    assert straight["kind"] == "PARTY_LIST"
    assert [s["selection_id"] for s in straight["selections"]] == ["party:dem", "party:grn", "party:lib", "party:rep"]
    both = convert(oe.read_all(sorted((DATA / "tx").glob("2020*.csv")))).events
    president = next(e.value for e in both if e.value["type"] == "ContestDeclared" and e.value["name"] == "President")
    trump = next(s for s in president["selections"] if s["selection_id"].endswith(".donald-j-trump"))
    # Brooks writes "Donald J. Trump / Michael R. Pence", Stonewall "Donald J. Trump": one selection, one mate
    assert trump["running_mates"] == ["candidate:general.us.tx.president.2020-11-03.michael-r-pence"]
    stations = {e.value["station_id"].split("/")[3] for e in both if e.value["type"] == "StationTally"
                and e.value["contest_id"] == president["contest_id"]}
    assert stations == {"county:brooks", "county:stonewall"}


def test_figures_null_when_absent_and_taken_when_given():
    brooks = _tallies(_events(DATA / "tx" / "20201103__tx__general__brooks__precinct.csv"))
    assert all(t["registered_voters"] is None and t["ballots_cast"] is None for t in brooks)
    assert all(t["valid_ballots"] is None and t["blank_votes"] is None for t in brooks)
    assert brooks[0]["undervotes"] == 6 and brooks[0]["overvotes"] == 0 and brooks[0]["write_ins"] == 0
    montour = _tallies(_events(DATA / "pa" / "20221108__pa__general__montour__precinct.csv"))
    anthony = [t for t in montour if t["station_id"].endswith("precinct:anthony_twp")]
    assert {(t["registered_voters"], t["ballots_cast"]) for t in anthony} == {(847, 594)}
    assert all(t["overvotes"] is None and t["undervotes"] is None for t in montour)  # no such rows in the file
    stonewall = _tallies(_events(DATA / "tx" / "20201103__tx__general__stonewall__precinct.csv"))
    house = next(t for t in stonewall if ".u-s-house." in t["contest_id"])
    assert house["write_ins"] is None and house["undervotes"] is not None  # no write-in row: unknown, not 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_by_method_where_the_file_has_method_columns(path: Path):
    methods = oe.read(path).methods
    symbols = {method_symbol(m) for m in methods}
    for tally in _tallies(_events(path)):
        for v in tally["votes"]:
            assert {m["method"] for m in v["by_method"]} == symbols
            known = [m["votes"] for m in v["by_method"]]
            if known and None not in known:
                assert sum(known) == v["votes"], (path.name, tally["station_id"], v)
    assert [method_symbol(m) for m in ("election_day", "early_voting", "advance_in_person", "mail",
                                       "absentee_by_mail", "absentee", "provisional", "federal")] == [
        "ELECTION_DAY", "EARLY", "EARLY", "MAIL", "MAIL", "ABSENTEE", "PROVISIONAL", "OTHER"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_tally_votes_equal_the_csv_totals_exactly(path: Path):
    events = _events(path)
    got: dict[tuple[str, str, str], int] = defaultdict(int)
    for t in _tallies(events):
        county = "/".join(t["station_id"].split("/")[:4])
        for v in t["votes"]:
            selection = "party:*" if v["candidate_id"].startswith("party:") else v["candidate_id"]
            got[(t["contest_id"], county, selection)] += v["votes"]
        for kind, name in PSEUDO.items():
            if t[name] is not None:
                got[(t["contest_id"], county, kind)] += t[name]
    precincts, total_rows = expected_votes(path)
    assert dict(got) == precincts
    if total_rows:  # the county-total rows left out hold exactly what the precincts add up to
        assert total_rows == {k: got[k] for k in total_rows}


def test_several_files_share_reference_events_and_keep_their_tallies():
    files = sorted((DATA / "ga").glob("20181106*.csv"))
    together = convert(oe.read_all(files))
    alone = [convert_files([p]) for p in files]
    assert Counter(e.value["type"] for e in together.events)["ElectionDeclared"] == 1
    assert [e.value for e in together.events if e.value["type"] == "StationTally"] == [
        e.value for c in alone for e in c.events if e.value["type"] == "StationTally"]
    governor = [e.value for e in together.events if e.value["type"] == "ContestDeclared"
                and e.value["name"] == "Governor"]
    assert len(governor) == 1 and governor[0]["contest_id"] == "general.us.ga.governor.2018-11-06"


def test_rejected_and_odd_rows_are_reported_never_dropped(tmp_path):
    p = tmp_path / "20240305__xx__primary__adams__precinct.csv"
    p.write_bytes(
        b"county,precinct,office,district,party,candidate,votes,election_day,mail\n"
        b"Adams,P1,Registered Voters,,,,900,,\n"          # 2
        b"Adams,P1,Registered Voters,,,,901,,\n"          # 3: contradicts line 2
        b"Adams,P1,Mayor,,DEM,Ann,10,4,6\n"               # 4
        b"Adams,P1,Mayor,,DEM,Ann,11,5,6\n"               # 5: second row for Ann at P1
        b"Adams,P1,Mayor,,DEM,Bob,N/A,,\n"                # 6: reader rejects
        b"Adams,P1,Mayor,,DEM,Cy,,,\n"                    # 7: empty votes: skipped, counted
        b"Adams,P1,Mayor,,,Write-ins,3,,\n"               # 8: counter without a party in a primary
        b"Adams,,Mayor,,DEM,Ann,10,4,6\n"                 # 9: county total
        b"Adams,p1,Mayor,,DEM,Ann,1,1,0\n")               # 10: same precinct id as P1 (p1)
    c = convert_files([p])
    assert sorted((x.line, x.field, x.reason_code) for x in c.rejected) == [
        (3, "votes", "duplicate_key"), (5, "candidate", "duplicate_key"), (6, "votes", "wrong_type"),
        (10, "precinct", "invalid_id")]
    assert sum(c.skipped.values()) == 3 and c.totals_mismatch == 0  # Ann's county total is her one kept row
    (tally,) = [e.value for e in c.events if e.value["type"] == "StationTally"]
    assert tally["registered_voters"] == 900 and tally["write_ins"] is None
    assert tally["votes"] == [{"candidate_id": "candidate:primary.us.xx.mayor.dem.2024-03-05.ann", "votes": 10,
                               "by_method": [{"method": "ELECTION_DAY", "votes": 4}, {"method": "MAIL", "votes": 6}]}]
    stats = c.files[str(p)]
    assert (stats.records, stats.rejected, stats.skipped) == (9, 4, 3)


def test_a_file_name_without_election_rejects_the_file(tmp_path):
    p = tmp_path / "results.csv"
    p.write_bytes(b"county,precinct,office,district,party,candidate,votes\nA,P1,Mayor,,,Ann,1\nA,P1,Mayor,,,Bob,2\n")
    c = convert_files([p])
    assert c.events == [] and [(x.line, x.reason_code) for x in c.rejected] == [(1, "missing_field")]
    assert c.files[str(p)].rejected == 2


if __name__ == "__main__":
    for row in file_report():
        print(row)
