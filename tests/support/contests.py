"""Contest tables built by hand, with exactly the columns of docs/contests.md ("Tables"), for the export and
catalog tests (and anyone else who needs a small multi-contest election without running the fold).

One election (``ELECTION``, Forest County PA–like) with three precincts that belong to a county and, through
``member_of``, to a congressional and a state-house district, and five contests: a candidate contest with vote
methods and running mates, a party-list contest, a ballot measure, a retention question reported by two of three
precincts, and the election's default contest (v1 tallies: kind OTHER, no declared selections, nothing known
about seats). Division and contest rows are summed from the station tallies here by the documented rules
(a method column is null where no tally of the unit reported it), so the tables agree with each other.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import pyarrow as pa

from pipelines.fold import tables as fold_tables

ELECTION = "general.us.pa.2020-11-03"
ELECTION_NAME = "2020 General Election"
US = "ocd-division/country:us"
PA = f"{US}/state:pa"
FOREST = f"{PA}/county:forest"
CD15 = f"{PA}/cd:15"
HD65 = f"{PA}/sldl:65"
P1, P2, P3 = (f"{FOREST}/precinct:{p}" for p in ("barnett", "harmony", "jenks"))
PRESIDENT = "general.us.pa.president.2020-11-03"
LIST = "general.us.pa.state-house-list.d-65.2020-11-03"
QUESTION = "general.us.pa.county-question-1.2020-11-03"
RETENTION = "general.us.pa.retention-superior-court.2020-11-03"
DEFAULT = ELECTION  # the election's default contest (docs/contests.md, rule 2)
METHODS = ("election_day", "early", "mail", "absentee", "provisional", "other")
TRACE = {"event_id": "00000000-0000-4000-8000-000000000001", "topic": "ballotstream.reference", "partition": 0,
         "offset": 0}

S, I32, I64 = pa.string(), pa.int32(), pa.int64()
_TRACE = list(fold_tables.TRACE_FIELDS)
_METHOD_FIELDS = [pa.field(f"votes_{m}", I64) for m in METHODS]
# The documented columns; the fold's own schema is used instead once it declares the table.
SCHEMAS: dict[str, pa.Schema] = {
    "contests": pa.schema([("contest_id", S), ("election_id", S), ("name", S), ("kind", S), ("office", S),
                           ("district_id", S), ("number_elected", I32), ("votes_allowed", I32),
                           ("selections", I32), *_TRACE]),
    "contest_selections": pa.schema([("contest_id", S), ("selection_id", S), ("kind", S), ("label", S),
                                     ("candidate_id", S), ("party_id", S), ("running_mates", pa.list_(S)),
                                     *_TRACE]),
    "contest_results": pa.schema([("election_id", S), ("contest_id", S), ("selection_id", S),
                                  ("selection_kind", S), ("level", S), ("unit_id", S), ("votes", I64),
                                  *_METHOD_FIELDS, ("stations", I64)]),
    "contest_summary": pa.schema([
        ("election_id", S), ("contest_id", S), ("kind", S), ("stations_reporting", I64), ("stations_expected", I64),
        ("registered_voters", I64), ("registered_known", I64), ("ballots_cast", I64), ("ballots_cast_known", I64),
        ("turnout", pa.float64()), ("overvotes", I64), ("undervotes", I64), ("blank_votes", I64),
        ("write_ins", I64), ("total_votes", I64), ("winners", pa.list_(S)), ("margin", I64)]),
    "divisions": pa.schema([*fold_tables.SCHEMAS["divisions"].remove_metadata()][:-4]
                           + [pa.field("label", S), pa.field("member_of", pa.list_(S)), *_TRACE]),
    "station_turnout": pa.schema([
        ("election_id", S), ("contest_id", S), ("station_id", S), ("municipality_id", S), ("status", S),
        ("registered_voters", I64), ("ballots_cast", I64), ("valid_ballots", I64), ("invalid_ballots", I64),
        ("turnout", pa.float64()), ("overvotes", I64), ("undervotes", I64), ("blank_votes", I64),
        ("write_ins", I64), *_TRACE]),
}


def schema(name: str) -> pa.Schema:
    """The fold's schema of ``name`` when it has the contest columns, else the documented one above."""
    fold = fold_tables.SCHEMAS.get(name)
    if fold is not None and (name not in SCHEMAS or set(SCHEMAS[name].names) <= set(fold.names)):
        return fold
    return SCHEMAS[name]


def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (missing columns null, trace columns filled) as a table with ``schema(name)``."""
    sch = schema(name)
    return pa.Table.from_pylist([{f: r.get(f, TRACE.get(f)) for f in sch.names} for r in rows], schema=sch)


def _division(did: str, name: str, kind: str, parent: str | None, label: str | None = None,
              member_of: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"division_id": did, "name": name, "kind": kind, "parent_id": parent, "election_id": None,
            "municipality_id": None, "seats": None, "label": label, "member_of": list(member_of)}


DIVISIONS = [
    _division(US, "United States", "COUNTRY", None),
    _division(PA, "Pennsylvania", "REGION", US, "state"),
    _division(FOREST, "Forest County", "COUNTY", PA),
    _division(CD15, "Congressional District 15", "DISTRICT", PA, "congressional district"),
    _division(HD65, "State House District 65", "DISTRICT", PA, "state house district"),
    _division(P1, "Barnett", "PRECINCT", FOREST, member_of=(CD15, HD65)),
    _division(P2, "Harmony", "PRECINCT", FOREST, member_of=(CD15, HD65)),
    _division(P3, "Jenks", "PRECINCT", FOREST, member_of=(CD15,)),
]
CONTESTS = [
    {"contest_id": PRESIDENT, "name": "President of the United States", "kind": "CANDIDATE", "office": "President",
     "district_id": PA, "number_elected": 1, "votes_allowed": 1},
    {"contest_id": LIST, "name": "State House list vote, district 65", "kind": "PARTY_LIST", "office": None,
     "district_id": HD65, "number_elected": 3, "votes_allowed": 1},
    {"contest_id": QUESTION, "name": "Forest County Question 1", "kind": "BALLOT_MEASURE", "office": None,
     "district_id": FOREST, "number_elected": None, "votes_allowed": 1},
    {"contest_id": RETENTION, "name": "Retention of Judge Jane Smith", "kind": "RETENTION",
     "office": "Judge of the Superior Court", "district_id": PA, "number_elected": 1, "votes_allowed": 1},
]
# (contest, selection, kind, label, candidate, party, running mates)
SELECTIONS = [
    (PRESIDENT, "candidate:joseph-biden", "CANDIDATE", "Joseph R. Biden", "candidate:joseph-biden", "party:dem",
     ["candidate:kamala-harris"]),
    (PRESIDENT, "candidate:donald-trump", "CANDIDATE", "Donald J. Trump", "candidate:donald-trump", "party:rep",
     ["candidate:michael-pence"]),
    (PRESIDENT, "write-in:write-ins", "WRITE_IN", "Write-ins", None, None, []),
    (LIST, "party:dem", "PARTY", "Democratic Party", None, "party:dem", []),
    (LIST, "party:rep", "PARTY", "Republican Party", None, "party:rep", []),
    (QUESTION, "option:yes", "OPTION", "Yes", None, None, []),
    (QUESTION, "option:no", "OPTION", "No", None, None, []),
    (RETENTION, "option:yes", "OPTION", "Yes", "candidate:jane-smith", None, []),
    (RETENTION, "option:no", "OPTION", "No", "candidate:jane-smith", None, []),
]
CANDIDATES = [
    ("candidate:joseph-biden", "Joseph R. Biden", "party:dem", "MALE"),
    ("candidate:kamala-harris", "Kamala D. Harris", "party:dem", "FEMALE"),
    ("candidate:donald-trump", "Donald J. Trump", "party:rep", "MALE"),
    ("candidate:michael-pence", "Michael R. Pence", "party:rep", "MALE"),
    ("candidate:jane-smith", "Jane Smith", None, "UNKNOWN"),
    ("candidate:glenn-thompson", "Glenn Thompson", "party:rep", "UNKNOWN"),
    ("candidate:robert-williams", "Robert Williams", "party:dem", "UNKNOWN"),
]
# Station tallies: (contest, station, selection, votes, {method: votes}) – methods only where reported.
TALLIES: list[tuple[str, str, str, int, dict[str, int]]] = [
    (PRESIDENT, P1, "candidate:joseph-biden", 100, {"election_day": 60, "mail": 40}),
    (PRESIDENT, P1, "candidate:donald-trump", 200, {"election_day": 150, "mail": 50}),
    (PRESIDENT, P1, "write-in:write-ins", 3, {}),
    (PRESIDENT, P2, "candidate:joseph-biden", 80, {"election_day": 50, "mail": 25, "provisional": 5}),
    (PRESIDENT, P2, "candidate:donald-trump", 120, {"election_day": 100, "mail": 20, "provisional": 0}),
    (PRESIDENT, P2, "write-in:write-ins", 1, {}),
    (PRESIDENT, P3, "candidate:joseph-biden", 10, {}),
    (PRESIDENT, P3, "candidate:donald-trump", 30, {}),
    (PRESIDENT, P3, "write-in:write-ins", 0, {}),
    (LIST, P1, "party:dem", 110, {}), (LIST, P1, "party:rep", 190, {}),
    (LIST, P2, "party:dem", 90, {}), (LIST, P2, "party:rep", 105, {}),
    (QUESTION, P1, "option:yes", 150, {"election_day": 140, "early": 10}), (QUESTION, P1, "option:no", 140, {}),
    (QUESTION, P2, "option:yes", 90, {}), (QUESTION, P2, "option:no", 100, {}),
    (QUESTION, P3, "option:yes", 20, {}), (QUESTION, P3, "option:no", 22, {}),
    (RETENTION, P1, "option:yes", 180, {}), (RETENTION, P1, "option:no", 90, {}),
    (RETENTION, P2, "option:yes", 100, {}), (RETENTION, P2, "option:no", 85, {}),
    (DEFAULT, P3, "candidate:glenn-thompson", 28, {}), (DEFAULT, P3, "candidate:robert-williams", 12, {}),
]
# Per station: registered voters, ballots cast (repeated on each of its contests' tallies, as OpenElections does).
STATION_FIGURES = {P1: (1000, 310), P2: (700, 210), P3: (None, 45)}
# Contest figures of the president contest per station: overvotes, undervotes.
OVER_UNDER = {P1: (2, 5), P2: (1, None), P3: (0, 3)}


def composes_into(station: str) -> list[str]:
    """Every division a station's results add up to: its parent chain and each member_of with its chain."""
    by_id = {d["division_id"]: d for d in DIVISIONS}
    out: list[str] = []
    todo = [by_id[station]["parent_id"], *by_id[station]["member_of"]]
    while todo:
        did = todo.pop()
        if did and did not in out:
            out.append(did)
            todo.extend([by_id[did]["parent_id"], *by_id[did]["member_of"]])
    return sorted(out)


def _kind_of(contest: str, selection: str) -> str:
    for c, s, kind, *_ in SELECTIONS:
        if (c, s) == (contest, selection):
            return kind
    return "CANDIDATE"  # the default contest's v1 tallies vote for candidates


def _sum_unit(rows: list[dict[str, Any]], level: str, unit: str) -> dict[str, Any]:
    first = rows[0]
    out = {k: first[k] for k in ("election_id", "contest_id", "selection_id", "selection_kind")}
    out.update(level=level, unit_id=unit, votes=sum(r["votes"] for r in rows), stations=len(rows))
    for m in METHODS:
        known = [r[f"votes_{m}"] for r in rows if r[f"votes_{m}"] is not None]
        out[f"votes_{m}"] = sum(known) if known else None
    return out


def result_rows() -> list[dict[str, Any]]:
    """contest_results: station rows from TALLIES, division and contest rows summed from them."""
    stations = []
    for contest, station, selection, votes, methods in TALLIES:
        row = {"election_id": ELECTION, "contest_id": contest, "selection_id": selection,
               "selection_kind": _kind_of(contest, selection), "level": "station", "unit_id": station,
               "votes": votes, "stations": 1}
        row.update({f"votes_{m}": methods.get(m) for m in METHODS})
        stations.append(row)
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in stations:
        for division in composes_into(r["unit_id"]):
            groups[("division", division, r["contest_id"], r["selection_id"])].append(r)
        groups[("contest", r["contest_id"], r["contest_id"], r["selection_id"])].append(r)
    rows = stations + [_sum_unit(g, level, unit) for (level, unit, _, _), g in groups.items()]
    return sorted(rows, key=lambda r: (r["contest_id"], r["level"], r["unit_id"], r["selection_id"]))


def turnout_rows() -> list[dict[str, Any]]:
    """station_turnout (v2: per contest × station) for every contest a station has tallies in."""
    pairs = sorted({(c, s) for c, s, *_ in TALLIES})
    rows = []
    for contest, station in pairs:
        registered, cast = STATION_FIGURES[station]
        over, under = OVER_UNDER[station] if contest == PRESIDENT else (None, None)
        rows.append({"election_id": ELECTION, "contest_id": contest, "station_id": station, "municipality_id": None,
                     "status": "FINAL", "registered_voters": registered, "ballots_cast": cast,
                     "turnout": cast / registered if registered and cast is not None else None,
                     "overvotes": over, "undervotes": under})
    return rows


def _winners(contest: dict[str, Any], totals: list[tuple[str, int]]) -> tuple[list[str] | None, int | None]:
    ranked = sorted(totals, key=lambda t: (-t[1], t[0]))
    n = 1 if contest["kind"] in ("BALLOT_MEASURE", "RETENTION") else contest["number_elected"]
    if n is None:
        return None, None
    winners, losers = ranked[:n], ranked[n:]
    return [w for w, _ in winners], (winners[-1][1] - losers[0][1] if winners and losers else None)


def _expected(district: str | None) -> int | None:
    if district is None:
        return None
    return sum(1 for s in STATION_FIGURES if district in composes_into(s))


def _known_sum(values: list[Any]) -> tuple[int | None, int]:
    known = [x for x in values if x is not None]
    return (sum(known) if known else None), len(known)


def summary_rows(contests: list[dict[str, Any]], results: list[dict[str, Any]],
                 turnout: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """contest_summary of ``contests`` from their contest-level results and station turnout."""
    out = []
    for c in contests:
        cid = c["contest_id"]
        totals = [(r["selection_id"], r["votes"]) for r in results if r["contest_id"] == cid and r["level"] == "contest"]
        mine = [t for t in turnout if t["contest_id"] == cid]
        registered, registered_known = _known_sum([t["registered_voters"] for t in mine])
        cast, cast_known = _known_sum([t["ballots_cast"] for t in mine])
        both = [t for t in mine if t["registered_voters"] is not None and t["ballots_cast"] is not None]
        winners, margin = _winners(c, totals)
        out.append({
            "election_id": ELECTION, "contest_id": cid, "kind": c["kind"], "stations_reporting": len(mine),
            "stations_expected": _expected(c["district_id"]), "registered_voters": registered,
            "registered_known": registered_known, "ballots_cast": cast, "ballots_cast_known": cast_known,
            "turnout": (sum(t["ballots_cast"] for t in both) / sum(t["registered_voters"] for t in both))
            if both else None,
            **{k: _known_sum([t.get(k) for t in mine])[0] for k in ("overvotes", "undervotes", "blank_votes",
                                                                     "write_ins")},
            "total_votes": sum(v for _, v in totals), "winners": winners, "margin": margin})
    return out


def contest_tables(*, with_default_contest: bool = True) -> dict[str, pa.Table]:
    """Every table the export and the catalog's contest section read, for the election described above."""
    contests = [{**c, "election_id": ELECTION, "selections": sum(1 for s in SELECTIONS if s[0] == c["contest_id"])}
                for c in CONTESTS]
    if with_default_contest:
        # Listed without trace: no event declared it (docs/contests.md, `contests`).
        contests.append({"contest_id": DEFAULT, "election_id": ELECTION, "name": ELECTION_NAME, "kind": "OTHER",
                         "office": None, "district_id": None, "number_elected": None, "votes_allowed": None,
                         "selections": 0, "event_id": None, "topic": None, "partition": None, "offset": None})
    results = [r for r in result_rows() if with_default_contest or r["contest_id"] != DEFAULT]
    turnout = [t for t in turnout_rows() if with_default_contest or t["contest_id"] != DEFAULT]
    contests.sort(key=lambda c: c["contest_id"])
    selections = [{"contest_id": c, "selection_id": s, "kind": k, "label": lab, "candidate_id": cand,
                   "party_id": party, "running_mates": mates} for c, s, k, lab, cand, party, mates in SELECTIONS]
    return {
        "elections": table("elections", [{"election_id": ELECTION, "name": ELECTION_NAME, "date": date(2020, 11, 3),
                                          "kind": "GENERAL", "country": "us", "seats_at_stake": None}]),
        "divisions": table("divisions", DIVISIONS),
        "parties": table("parties", [{"party_id": "party:dem", "name": "Democratic Party", "abbreviation": "DEM"},
                                     {"party_id": "party:rep", "name": "Republican Party", "abbreviation": "REP"}]),
        "candidates": table("candidates", [{"candidate_id": c, "election_id": ELECTION, "name": n, "party_id": p,
                                            "gender": g, "age_band": "UNKNOWN", "education": "UNKNOWN"}
                                           for c, n, p, g in CANDIDATES]),
        "contests": table("contests", contests),
        "contest_selections": table("contest_selections",
                                    sorted(selections, key=lambda s: (s["contest_id"], s["selection_id"]))),
        "contest_results": table("contest_results", results),
        "contest_summary": table("contest_summary", summary_rows(contests, results, turnout)),
        "station_turnout": table("station_turnout", turnout),
    }
