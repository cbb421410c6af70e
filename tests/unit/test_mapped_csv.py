"""``--format csv --mapping``: a results CSV in another layout (North Carolina's precinct-sort columns), read
through a YAML mapping into the same events as OpenElections files."""

from __future__ import annotations

import pytest

from pipelines.errors import InputError
from pipelines.ingest import mapped_csv
from pipelines.ingest.openelections_events import convert

NC = (
    "County,Election Date,Precinct,Contest Group ID,Contest Type,Contest Name,Choice,Choice Party,Vote For,"
    "Election Day,One Stop,Absentee by Mail,Provisional,Total Votes,Real Precinct\n"
    "ALAMANCE,11/05/2024,01,1,S,US PRESIDENT,Donald J. Trump,REP,1,512,1040,88,2,1642,Y\n"
    "ALAMANCE,11/05/2024,01,1,S,US PRESIDENT,Kamala D. Harris,DEM,1,301,822,120,3,1246,Y\n"
    "ALAMANCE,11/05/2024,01,1,S,US PRESIDENT,Write-In (Miscellaneous),,1,4,6,1,0,11,Y\n"
    "ALAMANCE,11/05/2024,02,1,S,US PRESIDENT,Donald J. Trump,REP,1,\"1,204\",2210,140,5,3559,Y\n"
    "ALAMANCE,11/05/2024,02,1,S,US PRESIDENT,Kamala D. Harris,DEM,1,650,1400,201,x,2256,Y\n"
    "ALAMANCE,11/05/2024,01,2,S,NC COMMISSIONER OF LABOR,Luke Farley,REP,1,480,1001,80,2,1563,Y\n"
)
MAPPING = """\
election: {state: nc, date: 2024-11-05, type: general}
source: {organisation: North Carolina State Board of Elections, kind: ELECTION_AUTHORITY, url: null}
status: FINAL
columns:
  county: County
  precinct: Precinct
  office: Contest Name
  party: Choice Party
  candidate: Choice
  votes: Total Votes
  votes_allowed: Vote For
methods:
  Election Day: ELECTION_DAY
  One Stop: EARLY
  Absentee by Mail: MAIL
  Provisional: PROVISIONAL
"""


def test_mapped_csv_becomes_the_same_events(tmp_path):
    (tmp_path / "map.yaml").write_text(MAPPING)
    (tmp_path / "results_pct_20241105.csv").write_text(NC)
    spec = mapped_csv.load_mapping(tmp_path / "map.yaml")
    read = mapped_csv.read(tmp_path / "results_pct_20241105.csv", spec)
    assert read.records == 6 and [(r.line, r.field) for r in read.rejections] == [(6, "Provisional")]
    c = convert([read], source=spec.source, status=spec.status, methods=spec.methods)
    events = [e.value for e in c.events]
    assert events[0]["election_id"] == "general.us.nc.2024-11-05"
    assert all(e["source"]["organisation"] == "North Carolina State Board of Elections" for e in events)
    contest = next(e for e in events if e["type"] == "ContestDeclared" and e["name"] == "US PRESIDENT")
    assert contest["contest_id"] == "general.us.nc.us-president.2024-11-05" and contest["votes_allowed"] == 1
    assert contest["district_id"] is None  # "US PRESIDENT" is not a spelling the statewide list knows
    tallies = [e for e in events if e["type"] == "StationTally"]
    p1 = next(t for t in tallies if t["station_id"].endswith("county:alamance/precinct:01")
              and t["contest_id"] == contest["contest_id"])
    assert p1["status"] == "FINAL" and p1["write_ins"] == 11 and p1["registered_voters"] is None
    trump = p1["votes"][0]
    assert trump["votes"] == 1642 and trump["by_method"] == [
        {"method": "ELECTION_DAY", "votes": 512}, {"method": "EARLY", "votes": 1040},
        {"method": "MAIL", "votes": 88}, {"method": "PROVISIONAL", "votes": 2}]
    p2 = next(t for t in tallies if t["station_id"].endswith("precinct:02"))
    assert [v["votes"] for v in p2["votes"]] == [3559]  # Harris's row (bad Provisional cell) is rejected


@pytest.mark.parametrize(("text", "says"), [
    ("election: {state: nc, date: 2024-13-05, type: general}\n", "cannot be read"),
    ("election: {state: nc, date: 5 Nov 2024, type: general}\n", "election.date"),
    (MAPPING.replace("One Stop: EARLY", "One Stop: EARLY_VOTING"), "methods"),
    (MAPPING.replace("  votes: Total Votes\n", ""), "missing ['votes']"),
    (MAPPING + "extra: 1\n", "keys must be among"),
])
def test_bad_mappings_name_what_is_wrong(tmp_path, text, says):
    (tmp_path / "map.yaml").write_text(text)
    with pytest.raises(InputError, match=r".*") as exc:
        mapped_csv.load_mapping(tmp_path / "map.yaml")
    assert says in str(exc.value)


def test_a_missing_column_rejects_the_file(tmp_path):
    (tmp_path / "map.yaml").write_text(MAPPING)
    (tmp_path / "r.csv").write_text(NC.replace("Total Votes", "Votes"))
    read = mapped_csv.read(tmp_path / "r.csv", mapped_csv.load_mapping(tmp_path / "map.yaml"))
    assert read.rows == [] and [(r.line, r.field) for r in read.rejections] == [(1, "votes")]
