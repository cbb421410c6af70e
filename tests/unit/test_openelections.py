"""The OpenElections reader on real published files (tests/data/openelections/, origins in its README).

Every file parses without an exception; per (office, district, county, candidate) the reader's vote sums
equal a second, csv-module-only computation (:func:`totals`); pseudo rows are classified; state, date and
type come from the file names. A hand-made hostile file yields rejections, never an exception.

``python tests/unit/test_openelections.py`` prints the per-file counts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.ingest import openelections as oe

DATA = Path(__file__).resolve().parents[1] / "data" / "openelections"
FILES = sorted(DATA.rglob("*.csv"))

# name → (state, date, type, county, records, methods, offices, kinds that must be non-zero)
EXPECTED = {
    "20160301__ga__primary__president__pierce__precinct.csv":
        ("ga", dt.date(2016, 3, 1), "primary__president", "pierce", 153,
         ["election_day", "absentee_by_mail", "advance_in_person", "provisional"], 1, {"selection": 153}),
    "20160726__ga__primary__runoff__taliaferro__precinct.csv":
        ("ga", dt.date(2016, 7, 26), "primary__runoff", "taliaferro", 6,
         ["absentee_by_mail", "election_day", "advance_in_person", "provisional"], 1, {"selection": 6}),
    "20181106__ga__general__echols__precinct.csv":
        ("ga", dt.date(2018, 11, 6), "general", "echols", 49, [], 24, {"selection": 49}),
    "20181106__ga__general__schley__precinct.csv":
        ("ga", dt.date(2018, 11, 6), "general", "schley", 55,
         ["absentee_by_mail", "advance_in_person", "election_day", "provisional"], 27, {"selection": 55}),
    "20181106__ga__general__taliaferro__precinct.csv":
        ("ga", dt.date(2018, 11, 6), "general", "taliaferro", 98,
         ["absentee_by_mail", "advance_in_person", "election_day", "provisional"], 24, {"selection": 98}),
    "20201103__pa__general__forest__precinct.csv":
        ("pa", dt.date(2020, 11, 3), "general", "forest", 270, ["election_day", "mail"], 10,
         {"selection": 180, "registered_voters": 9, "ballots_cast": 9, "ballots_cast_blank": 9, "write_ins": 63}),
    "20221108__pa__general__montour__precinct.csv":
        ("pa", dt.date(2022, 11, 8), "general", "montour", 285, ["election_day", "early_voting", "provisional"], 6,
         {"selection": 195, "registered_voters": 15, "ballots_cast": 15, "write_ins": 60}),
    "20161108__tx__general__parmer__precinct.csv":
        ("tx", dt.date(2016, 11, 8), "general", "parmer", 280, [], 6,
         {"selection": 160, "ballots_cast": 10, "over_votes": 50, "under_votes": 50, "write_ins": 10}),
    "20201103__tx__general__brooks__precinct.csv":
        ("tx", dt.date(2020, 11, 3), "general", "brooks", 148, ["absentee", "early_voting", "election_day"], 6,
         {"selection": 76, "over_votes": 24, "under_votes": 24, "write_ins": 24}),
    "20201103__tx__general__stonewall__precinct.csv":
        ("tx", dt.date(2020, 11, 3), "general", "stonewall", 132, ["absentee", "early_voting", "election_day"], 7,
         {"selection": 72, "ballots_cast": 4, "over_votes": 24, "under_votes": 24, "write_ins": 8}),
}


def file_report() -> list[dict]:
    """Per real file: rows read, rejected, kinds counted (what the closing note quotes)."""
    out = []
    for p in FILES:
        r = oe.read(p)
        out.append({
            "file": f"{p.parent.name}/{p.name}", "bytes": p.stat().st_size, "records": r.records,
            "rows": len(r.rows), "rejected": len(r.rejected_lines), "methods": r.methods,
            "offices": len({row.office for row in r.rows}),
            "kinds": {k: n for k, n in r.counts().items() if n},
        })
    return out


def test_every_expected_file_is_there():
    assert sorted(p.name for p in FILES) == sorted(EXPECTED)
    assert {p.parent.name for p in FILES} == {"ga", "pa", "tx"}
    assert sum(p.stat().st_size for p in FILES) < 3_000_000


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_real_file_parses_whole(path: Path):
    state, date, etype, county, records, methods, offices, kinds = EXPECTED[path.name]
    r = oe.read(path)
    assert r.rejections == []
    assert r.records == records == len(r.rows)
    assert r.methods == methods
    assert len({row.office for row in r.rows}) == offices
    assert {k: n for k, n in r.counts().items() if n} == kinds
    assert (r.name.state, r.name.date, r.name.election_type, r.name.county) == (state, date, etype, county)
    for row in r.rows:
        assert (row.state, row.date, row.election_type) == (state, date, etype)
        assert row.county is not None and row.county.lower().replace(" ", "_") == county
        assert row.office and row.kind in oe.KINDS
        assert set(row.methods) == set(methods)
    lines = [row.line for row in r.rows]
    assert lines == sorted(lines) and lines[0] == 2 and len(set(lines)) == len(lines)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_sums_equal_independent_csv_totals(path: Path):
    r = oe.read(path)
    expected = oe.totals(path)
    got = oe.sums(r.rows)
    assert got == expected
    assert sum(got.values()) > 0


def test_pseudo_rows_are_classified_in_every_spelling():
    seen: dict[str, set[str]] = {}
    for p in FILES:
        for row in oe.read(p).rows:
            if row.kind in ("over_votes", "under_votes", "write_ins"):
                seen.setdefault(row.kind, set()).add(row.candidate)
            elif row.kind != "selection":
                seen.setdefault(row.kind, set()).add(row.office)
    assert seen == {
        "registered_voters": {"Registered Voters"},
        "ballots_cast": {"Ballots Cast"},
        "ballots_cast_blank": {"Ballots Cast Blank"},
        "over_votes": {"Over Votes", "Overvotes"},
        "under_votes": {"Under Votes", "Undervotes"},
        "write_ins": {"Write-ins", "Write-in", "Write-In", "Write Ins", "Unresolved write-in"},
    }
    assert [oe.classify("President", c) for c in ("Total Write-In", "WRITE-IN", "Write In", "Over votes",
                                                  "UNDER VOTES", "Writeins")] == [
        "write_ins", "write_ins", "write_ins", "over_votes", "under_votes", "write_ins"]
    assert oe.classify("Straight Party", None) == "selection"  # a real contest in TX and PA, not a pseudo row


def test_empty_cells_are_none_never_zero():
    forest = oe.read(DATA / "pa" / "20201103__pa__general__forest__precinct.csv").rows
    rv = [r for r in forest if r.kind == "registered_voters"]
    assert rv[0].votes == 277 and rv[0].methods == {"election_day": None, "mail": None}
    assert rv[0].candidate is None and rv[0].party is None and rv[0].district is None
    assert sum(r.votes for r in rv) == 277 + 312 + 408 + 325 + 115 + 964 + 246 + 501 + 360
    montour = oe.read(DATA / "pa" / "20221108__pa__general__montour__precinct.csv").rows
    first = montour[0]  # quoted empty cells ("") are empty too
    assert (first.kind, first.votes, first.methods) == (
        "registered_voters", 847, {"election_day": None, "early_voting": None, "provisional": None})
    bc = montour[1]
    assert (bc.kind, bc.votes, bc.methods) == (
        "ballots_cast", 594, {"election_day": 542, "early_voting": 51, "provisional": 1})


def test_real_quirks_are_kept_as_published():
    pierce = oe.read(DATA / "ga" / "20160301__ga__primary__president__pierce__precinct.csv")
    assert pierce.path.read_bytes().count(b"\n") == 0  # old Mac line ends (CR only)
    assert pierce.rows[-1].line == 154 and pierce.rows[-1].precinct is None  # county total row, precinct empty
    assert pierce.rows[0].methods == {"election_day": 4, "absentee_by_mail": 0, "advance_in_person": 2,
                                      "provisional": 0}
    runoff = oe.read(DATA / "ga" / "20160726__ga__primary__runoff__taliaferro__precinct.csv")
    assert [r.precinct for r in runoff.rows[:3]] == [None, "Sharon", "Crawfordville"]
    assert runoff.rows[0].votes == runoff.rows[1].votes + runoff.rows[2].votes
    echols = oe.read(DATA / "ga" / "20181106__ga__general__echols__precinct.csv")
    carr = next(r for r in echols.rows if r.office == "Attorney General" and r.party == "(REP")
    assert carr.candidate == "CHRIS CARR"  # "CHRIS CARR " stripped; the party "(REP" is kept as written
    cc = next(r for r in echols.rows if r.office == "CC")
    assert cc.district == "P3"
    parmer = oe.read(DATA / "tx" / "20161108__tx__general__parmer__precinct.csv")
    assert sum(1 for r in parmer.rows if r.precinct == "Total") == 28  # county totals inside a precinct file


def test_contests_group_stations_and_selections():
    rows = oe.read(DATA / "tx" / "20201103__tx__general__stonewall__precinct.csv").rows
    contests = oe.contests(rows)
    assert sorted(contests) == sorted([
        ("President", None), ("U.S. Senate", None), ("U.S. House", "19"), ("Railroad Commissioner", None),
        ("State Senate", "28"), ("State Representative", "68")])
    pres = contests[("President", None)]
    assert sorted(pres.stations) == [("Stonewall", f"Precinct {i}") for i in (1, 2, 3, 4)]
    p1 = pres.stations[("Stonewall", "Precinct 1")]
    assert [s.candidate for s in p1.selections] == [
        "Donald J. Trump", "Joseph R. Biden", "Jo Jorgensen", "Howie Hawkinss"]
    assert p1.counters == {"write_ins": 0, "over_votes": 0, "under_votes": 1}
    assert sum(s.votes for s in p1.selections) + p1.counters["under_votes"] == 180  # = Ballots Cast, precinct 1
    house = contests[("U.S. House", "19")].stations[("Stonewall", "Precinct 1")]
    assert "write_ins" not in house.counters  # no write-in row for that contest: absent, not 0


@pytest.mark.parametrize(("name", "expected"), [
    ("20201103__pa__general__adams__precinct.csv", ("pa", dt.date(2020, 11, 3), "general", "adams", "precinct")),
    ("20181204__ga__general_runoff__bacon__precinct.csv",
     ("ga", dt.date(2018, 12, 4), "general_runoff", "bacon", "precinct")),
    ("20160726__ga__primary__runoff__jeff_davis__precinct.csv",
     ("ga", dt.date(2016, 7, 26), "primary__runoff", "jeff_davis", "precinct")),
    ("20150811__ga__special__general__runoff__coffee__precinct.csv",
     ("ga", dt.date(2015, 8, 11), "special__general__runoff", "coffee", "precinct")),
    ("20200811__ga__primary__general__runoff.csv", ("ga", dt.date(2020, 8, 11), "primary__general__runoff", None, None)),
    ("20221108__ga__general__precinct.csv", ("ga", dt.date(2022, 11, 8), "general", None, "precinct")),
    ("20200128__ga__special__state__house__171.csv", ("ga", dt.date(2020, 1, 28), "special", None, None)),
    ("results.csv", (None, None, None, None, None)),
    ("20201399__pa__general__adams__precinct.csv", ("pa", None, "general", "adams", "precinct")),
])
def test_file_names(name, expected):
    n = oe.parse_filename(name)
    assert (n.state, n.date, n.election_type, n.county, n.level) == expected


def test_parse_count():
    assert [oe.parse_count(t) for t in ("0", " 12 ", "1,234", "12,345,678", "7.0", "", "  ", None)] == [
        0, 12, 1234, 12345678, 7, None, None, None]
    for bad in ("N/A", "-3", "1.5", "12,34", "1 234", "x12", "١٢"):
        with pytest.raises(ValueError):
            oe.parse_count(bad)


HOSTILE = (
    b"\xef\xbb\xbfCounty, Precinct ,office,district,party,candidate,votes,election_day,mail,notes\r\n"
    b"Adams,P1,President,,DEM,Ann,\"1,234\",\"1,000\",234,\r\n"         # 2: thousands separators
    b"Adams,P1,President,,REP,Bob,N/A,5,,\r\n"                          # 3: non-numeric votes
    b"Adams,P1,President,,,Write-In,,,,\r\n"                            # 4: empty votes: None
    b"Adams,P2,President,,DEM,Ann\xff\xfe,12,6,6,\r\n"                  # 5: bad UTF-8
    b"Adams,P2,President,,REP,Bob,7\r\n"                                # 6: short row
    b"Adams,P2,President,,REP,Bob,7,3,4,,extra\r\n"                     # 7: long row
    b"\r\n"                                                             # 8: blank line, skipped
    b"Adams,P2,,,REP,Bob,7,3,4,\r\n"                                    # 9: no office
    b"Adams,P2,State House,12,REP,Cy,8.0,x,-1,a note\r\n"               # 10: two bad method cells
    b"Adams,\"P3\nannex\",Registered Voters,,,,900,,,\r\n"              # 11-12: quoted newline in a cell
    b"Adams,P3,Ballots Cast,,,,\"12,5\",,,\r\n"                         # 13: bad separator
)


def test_hostile_file_yields_rejections_not_exceptions(tmp_path):
    p = tmp_path / "20240305__xx__primary__adams__precinct.csv"
    p.write_bytes(HOSTILE)
    r = oe.read(p)
    assert r.columns[:2] == ["county", "precinct"] and r.methods == ["election_day", "mail"]
    assert [(x.line, x.field) for x in r.rejections] == [
        (3, "votes"), (5, None), (6, None), (7, None), (9, "office"), (10, "election_day"), (10, "mail"),
        (13, "votes")]
    assert all(x.reason for x in r.rejections)
    assert r.records == 10 and len(r.rows) == 3 and r.rejected_lines == {3, 5, 6, 7, 9, 10, 13}
    ann, wi, rv = r.rows
    assert (ann.line, ann.votes, ann.methods, ann.extra) == (2, 1234, {"election_day": 1000, "mail": 234},
                                                             {"notes": None})
    assert (wi.kind, wi.votes, wi.methods, wi.party) == ("write_ins", None, {"election_day": None, "mail": None}, None)
    assert (rv.line, rv.precinct, rv.kind, rv.votes) == (11, "P3\nannex", "registered_voters", 900)
    assert (r.name.state, r.name.election_type, r.name.county) == ("xx", "primary", "adams")
    # the naive csv-only totals agree on every row the reader kept (they also count some it rejects)
    totals, sums = oe.totals(p), oe.sums(r.rows)
    assert sums == {("President", None, "Adams", "Ann"): 1234, ("Registered Voters", None, "Adams", None): 900}
    assert {k: totals[k] for k in sums} == sums


@pytest.mark.parametrize(("data", "fields"), [
    (b"", [None]),
    (b"county,precinct,office,candidate\nA,B,C,D\n", ["votes"]),
    (b"precinct,office,candidate,votes\nB,C,D,1\n", ["county"]),
    (b"\xff\xfe\x00c\x00o\x00u\x00n\x00t\x00y\x00\n", [None]),
    (b"county,precinct,office,district,party,candidate,votes\n" + b"A,B,C,,,D,1\x00\n", None),
    (bytes(range(256)) * 4, None),
])
def test_broken_headers_and_bytes_never_raise(tmp_path, data, fields):
    p = tmp_path / "broken.csv"
    p.write_bytes(data)
    r = oe.read(p)
    if fields is not None:
        assert [x.field for x in r.rejections] == fields and r.rows == []
    oe.totals(p)  # the naive reader survives too


def test_trailing_empty_header_cell_and_duplicate_columns(tmp_path):
    # "votes," with rows that do or do not repeat the trailing comma (PA files of 2020 have it).
    p = tmp_path / "20201103__pa__general__cameron__precinct.csv"
    p.write_bytes(b"county,precinct,office,district,candidate,party,votes,votes,\n"
                  b"Cameron,Gibson,President,,Ann,DEM,15,99,\nCameron,Grove,President,,Ann,DEM,18,99\n"
                  b"Cameron,Grove,President,,Bob,REP,1,2,3,4\n")
    r = oe.read(p)
    assert [(x.line, x.field) for x in r.rejections] == [(1, "votes"), (4, None)]
    assert [(row.precinct, row.votes) for row in r.rows] == [("Gibson", 15), ("Grove", 18)]
    assert [res.path.name for res in oe.read_all([p, p])] == [p.name, p.name]


def test_county_from_file_name_when_the_column_is_missing(tmp_path):
    p = tmp_path / "20201103__pa__general__forest__precinct.csv"
    p.write_bytes(b"precinct,office,candidate,votes\nP1,President,Ann,3\n")
    (row,) = oe.read(p).rows
    assert (row.county, row.district, row.party, row.votes, row.methods) == ("forest", None, None, 3, {})


def test_file_report_counts():
    """Shown with ``pytest -s`` (or ``-rP``): the per-file counts quoted in the closing note."""
    report = file_report()
    assert len(report) == len(FILES) and all(r["rejected"] == 0 and r["rows"] == r["records"] for r in report)
    assert sum(r["rows"] for r in report) == 1476
    for r in report:
        print(f"{r['file']:<62} {r['bytes']:>6} B  rows {r['rows']:>3}  rejected {r['rejected']}  "
              f"offices {r['offices']:>2}  methods {','.join(r['methods']) or '-'}  {r['kinds']}")


if __name__ == "__main__":
    for r in file_report():
        print(r)
