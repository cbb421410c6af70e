"""NIST SP 1500-100 v2 JSON (``ElectionReport``) of one election, built from a release's contest tables.

What goes where (docs/contests.md, "Export"): every division becomes a ``ReportingUnit`` whose
``ComposingGpUnitIds`` are the divisions naming it as ``parent_id`` or in ``member_of``; each contest becomes a
Candidate/Party/BallotMeasure/RetentionContest with one ``BallotSelection`` per selection and ``VoteCounts`` per
station and division (``total`` and each vote method a tally reported); over/under votes and write-ins become
``OtherCounts``. A figure the tables hold as null is left out, never written as 0.

Ids are Ballotstream's own (division, party, candidate and contest ids are already unique and stable); objects
that have no id of their own get ``<owner id>#<role>``. Every list is sorted, so one release always gives the
same document (``generated_at`` is the release's time, passed in).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.release import cdf_vocab as v

log = logging.getLogger(__name__)

FOLDER = "cdf"
FORMAT = "NIST SP 1500-100 v2 JSON ElectionReport"
ISSUER = "Ballotstream"
# Names come from sources in many languages and the tables do not say which: BCP 47 "und" (undetermined).
LANGUAGE = "und"
ELECTIONS, DIVISIONS, PARTIES, CANDIDATES = "elections", "divisions", "parties", "candidates"
CONTESTS, SELECTIONS, RESULTS, SUMMARY = "contests", "contest_selections", "contest_results", "contest_summary"
STATION_TURNOUT = "station_turnout"
# Without these there is nothing to export (a release folded before the contest model existed).
REQUIRED = (ELECTIONS, CONTESTS, RESULTS)
# Polling-station counts go into the document up to this many station rows of contest_results. Beyond it the
# document holds divisions and contests only ("summary-contest"): the station counts are in the Parquet tables,
# and a document of every station × selection of a large election would not fit in memory (100,000 stations ×
# 5 contests × 10 selections took 5.9 GB to build).
STATION_LEVEL_MAX_ROWS = 250_000
STATION_KINDS = frozenset({"POLLING_STATION", "PRECINCT"})
TABLES = (ELECTIONS, DIVISIONS, PARTIES, CANDIDATES, CONTESTS, SELECTIONS, RESULTS, SUMMARY, STATION_TURNOUT)
STATION, DIVISION, CONTEST = "station", "division", "contest"
OTHER_COUNTS = {"overvotes": "Overvotes", "undervotes": "Undervotes", "write_ins": "WriteIns"}

Row = dict[str, Any]


def document_key(election_id: str) -> str:
    """Where the election's document sits in a release folder."""
    return f"{FOLDER}/{election_id}.json"


def _rows(tables: Mapping[str, pa.Table], name: str, election_id: str | None = None) -> list[Row]:
    table = tables.get(name)
    if table is None:
        return []
    rows = table.to_pylist()
    if election_id is not None and "election_id" in table.column_names:
        rows = [r for r in rows if r["election_id"] == election_id]
    return rows


def _text(content: str) -> dict[str, Any]:
    return {"@type": "ElectionResults.InternationalizedText",
            "Text": [{"@type": "ElectionResults.LanguageString", "Content": content, "Language": LANGUAGE}]}


def _known(value: Any) -> bool:
    return value is not None and value != v.UNKNOWN


class _Report:
    """The parts of one election's document while it is assembled (references are collected as they occur)."""

    def __init__(self, tables: Mapping[str, pa.Table], election: Row):
        self.election = election
        eid = election["election_id"]
        self.scope = f"ocd-division/country:{election['country']}"
        self.divisions = {r["division_id"]: r for r in _rows(tables, DIVISIONS)
                          if r.get("election_id") in (None, eid)}
        self.parties = {r["party_id"]: r for r in _rows(tables, PARTIES)}
        self.candidates = {r["candidate_id"]: r for r in _rows(tables, CANDIDATES, eid)}
        self.contests = sorted(_rows(tables, CONTESTS, eid), key=lambda r: r["contest_id"])
        self.selections: dict[str, list[Row]] = defaultdict(list)
        for r in _rows(tables, SELECTIONS):
            self.selections[r["contest_id"]].append(r)
        self.results: dict[str, list[Row]] = defaultdict(list)
        for r in _rows(tables, RESULTS, eid):
            self.results[r["contest_id"]].append(r)
        self.summary = {r["contest_id"]: r for r in _rows(tables, SUMMARY, eid)}
        turnout = _rows(tables, STATION_TURNOUT, eid)
        self.turnout = turnout if turnout and "contest_id" in turnout[0] else []
        self.extra_units: dict[str, str] = {}  # referenced but undeclared unit id -> ReportingUnitType
        self.party_refs: set[str] = set()
        self.candidate_labels: dict[str, str] = {}  # referenced candidate id -> ballot label
        self.offices: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def unit(self, unit_id: str, level: str) -> str:
        if unit_id not in self.divisions and unit_id != self.scope:
            self.extra_units.setdefault(unit_id, "polling-place" if level == STATION else v.OTHER)
        return unit_id

    def district(self, contest: Row) -> str:
        return self.unit(contest.get("district_id") or self.scope, DIVISION)


def _gp_units(report: _Report) -> list[dict[str, Any]]:
    """Every division of the election (and each unit results name without a declaration) as a ReportingUnit."""
    children: dict[str, set[str]] = defaultdict(set)
    for d in report.divisions.values():
        for parent in [d.get("parent_id"), *(d.get("member_of") or [])]:
            if parent:
                children[parent].add(d["division_id"])
    voters = _station_voters(report.turnout)
    units = []
    ids = set(report.divisions) | set(report.extra_units) | {report.scope}
    for unit_id in sorted(ids):
        d = report.divisions.get(unit_id)
        if d is not None:
            typ, other = v.unit_type(d.get("kind"), d.get("label"))
        else:
            typ, other = ("country" if unit_id == report.scope else report.extra_units[unit_id]), None
        unit: dict[str, Any] = {"@id": unit_id, "@type": "ElectionResults.ReportingUnit", "Type": typ}
        if other:
            unit["OtherType"] = other
        if d is not None and d.get("name"):
            unit["Name"] = _text(d["name"])
        if children.get(unit_id):
            unit["ComposingGpUnitIds"] = sorted(children[unit_id])
        if unit_id.startswith("ocd-division/"):
            unit["ExternalIdentifier"] = [{"@type": "ElectionResults.ExternalIdentifier", "Type": "ocd-id",
                                           "Value": unit_id}]
        registered, participated = voters.get(unit_id, (None, None))
        if registered is not None:
            unit["VotersRegistered"] = registered
        if participated is not None:
            unit["VotersParticipated"] = participated
        units.append(unit)
    return units


def _station_voters(turnout: list[Row]) -> dict[str, tuple[int | None, int | None]]:
    """A station's registered voters and ballots cast, where every contest's tally agrees on them.

    The source repeats the station's figures on each of its contests' tallies; when they disagree, neither is
    the station's figure, so it stays unknown.
    """
    seen: dict[str, list[set[Any]]] = defaultdict(lambda: [set(), set()])
    for r in turnout:
        seen[r["station_id"]][0].add(r.get("registered_voters"))
        seen[r["station_id"]][1].add(r.get("ballots_cast"))
    return {s: tuple(next(iter(vals)) if len(vals) == 1 else None for vals in pair)  # type: ignore[misc]
            for s, pair in seen.items()}


def _vote_counts(report: _Report, contest: Row, rows: Iterable[Row]) -> list[dict[str, Any]]:
    """VoteCounts of one selection: each station and division row, and the contest row for its district
    (unless a division row already covers that unit)."""
    counts: dict[tuple[str, str], float] = {}
    by_level = sorted(rows, key=lambda r: (r["level"] == CONTEST, r["level"], r["unit_id"]))
    for r in by_level:
        unit = report.district(contest) if r["level"] == CONTEST else report.unit(r["unit_id"], r["level"])
        if r["level"] == CONTEST and (unit, v.TOTAL) in counts:
            continue
        if r.get("votes") is not None:
            counts[(unit, v.TOTAL)] = r["votes"]
        for column, typ in v.METHOD_TYPES.items():
            if r.get(column) is not None:
                counts[(unit, typ)] = r[column]
    out = []
    for (unit, typ), count in sorted(counts.items(), key=lambda kv: (kv[0][0], v.COUNT_TYPE_ORDER[kv[0][1]])):
        item: dict[str, Any] = {"@type": "ElectionResults.VoteCounts", "GpUnitId": unit, "Type": typ,
                                "Count": count}
        if typ == v.OTHER:
            item["OtherType"] = v.OTHER_METHOD
        out.append(item)
    return out


def _selection_rows(report: _Report, contest_id: str) -> list[Row]:
    """Declared selections, plus any selection with results but no declaration (a v1 default contest's)."""
    declared = {s["selection_id"]: s for s in report.selections.get(contest_id, [])}
    for r in report.results.get(contest_id, []):
        if r["selection_id"] not in declared:
            kind = r.get("selection_kind") or "OTHER"
            declared[r["selection_id"]] = {
                "selection_id": r["selection_id"], "kind": kind, "label": None, "running_mates": [],
                "candidate_id": r["selection_id"] if kind == "CANDIDATE" else None,
                "party_id": r["selection_id"] if kind == "PARTY" else None}
    return [declared[k] for k in sorted(declared)]


def _selection(report: _Report, contest: Row, s: Row, rows: list[Row]) -> dict[str, Any]:
    sid = f"{contest['contest_id']}#{s['selection_id']}"
    kind, candidate, party = s.get("kind"), s.get("candidate_id"), s.get("party_id")
    if kind in ("CANDIDATE", "WRITE_IN") or (kind == "OTHER" and candidate):
        people = [c for c in [candidate, *(s.get("running_mates") or [])] if c]
        for c in people:
            report.candidate_labels.setdefault(c, s.get("label") or c)
        out: dict[str, Any] = {"@id": sid, "@type": "ElectionResults.CandidateSelection"}
        if people:
            out["CandidateIds"] = people
        if party:
            report.party_refs.add(party)
            out["EndorsementPartyIds"] = [party]
        if kind == "WRITE_IN":
            out["IsWriteIn"] = True
    elif kind == "PARTY" or (kind == "OTHER" and party):
        report.party_refs.add(party or s["selection_id"])
        out = {"@id": sid, "@type": "ElectionResults.PartySelection", "PartyIds": [party or s["selection_id"]]}
    else:
        out = {"@id": sid, "@type": "ElectionResults.BallotMeasureSelection",
               "Selection": _text(s.get("label") or s["selection_id"])}
    counts = _vote_counts(report, contest, rows)
    if counts:
        out["VoteCounts"] = counts
    return out


def _contest_type(report: _Report, contest: Row, selections: list[Row]) -> str:
    """The NIST class of a contest: by kind, or for OTHER (a v1 default contest) by what its selections are."""
    kind = contest.get("kind")
    if kind in v.CONTEST_TYPES:
        return v.CONTEST_TYPES[kind]
    kinds = {s.get("kind") for s in selections}
    if kinds and kinds <= {"PARTY"}:
        return v.PARTY_CONTEST
    if kinds and kinds <= {"OPTION"}:
        return v.MEASURE_CONTEST
    return v.CANDIDATE_CONTEST


def _other_counts(report: _Report, contest: Row) -> list[dict[str, Any]]:
    """Over/under votes and write-ins per station, and for the district where every station reported them
    (a sum over only some stations is not the district's figure)."""
    cid = contest["contest_id"]
    stations = [r for r in report.turnout if r.get("contest_id") == cid]
    out = []
    for r in sorted(stations, key=lambda r: r["station_id"]):
        known = {nist: r[col] for col, nist in OTHER_COUNTS.items() if r.get(col) is not None}
        if known:
            out.append({"@type": "ElectionResults.OtherCounts", "GpUnitId": report.unit(r["station_id"], STATION),
                        **known})
    summary = report.summary.get(cid) or {}
    complete = {nist: summary[col] for col, nist in OTHER_COUNTS.items()
                if summary.get(col) is not None and stations and all(r.get(col) is not None for r in stations)}
    if complete:
        out.append({"@type": "ElectionResults.OtherCounts", "GpUnitId": report.district(contest), **complete})
    return sorted(out, key=lambda o: o["GpUnitId"])


def _contest(report: _Report, contest: Row) -> dict[str, Any]:
    """One Contest with its selections, counts and reporting progress.

    NIST requires VotesAllowed on a CandidateContest and a CandidateId on a RetentionContest; where the tables
    do not know them, the document says what it did instead in the report's Notes (see ``_required_gaps``).
    """
    cid = contest["contest_id"]
    selections = _selection_rows(report, cid)
    by_selection: dict[str, list[Row]] = defaultdict(list)
    for r in report.results.get(cid, []):
        by_selection[r["selection_id"]].append(r)
    typ = _contest_type(report, contest, selections)
    out: dict[str, Any] = {"@id": cid, "@type": typ, "Name": contest.get("name") or cid,
                           "ElectionDistrictId": report.district(contest)}
    out["ContestSelection"] = [_selection(report, contest, s, by_selection.get(s["selection_id"], []))
                               for s in selections]
    typ = _required_gaps(report, contest, selections, out)
    office = contest.get("office")
    if office and typ in (v.CANDIDATE_CONTEST, v.RETENTION_CONTEST):
        office_id = f"{cid}#office"
        report.offices.append({"@id": office_id, "@type": "ElectionResults.Office", "Name": _text(office),
                               "ElectionDistrictId": out["ElectionDistrictId"]})
        if typ == v.CANDIDATE_CONTEST:
            out["OfficeIds"] = [office_id]
        else:
            out["OfficeId"] = office_id
    summary = report.summary.get(cid) or {}
    if summary.get("stations_reporting") is not None:
        out["SubUnitsReported"] = summary["stations_reporting"]
    if summary.get("stations_expected") is not None:
        out["TotalSubUnits"] = summary["stations_expected"]
    other = _other_counts(report, contest)
    if other:
        out["OtherCounts"] = other
    return out


def _required_gaps(report: _Report, contest: Row, selections: list[Row], out: dict[str, Any]) -> str:
    """Fill what NIST requires but the tables may lack, noting each stand-in; returns the final contest class."""
    cid, typ = contest["contest_id"], out["@type"]
    if typ == v.CANDIDATE_CONTEST:
        if contest.get("number_elected") is not None:
            out["NumberElected"] = contest["number_elected"]
        if contest.get("votes_allowed") is not None:
            out["VotesAllowed"] = contest["votes_allowed"]
        elif contest.get("number_elected") is not None:
            out["VotesAllowed"] = contest["number_elected"]
            report.notes.append(f"{cid}: VotesAllowed not published; set to NumberElected.")
        else:
            out["VotesAllowed"] = 1
            report.notes.append(f"{cid}: VotesAllowed and NumberElected not published; VotesAllowed set to 1 "
                                "because the format requires it.")
    elif typ == v.RETENTION_CONTEST:
        people = sorted({s["candidate_id"] for s in selections if s.get("candidate_id")})
        if len(people) == 1:
            out["CandidateId"] = people[0]
            report.candidate_labels.setdefault(people[0], people[0])
        else:
            out["@type"] = typ = v.MEASURE_CONTEST
            out["Type"] = v.OTHER
            report.notes.append(f"{cid}: retention contest without one known candidate; exported as a "
                                "BallotMeasureContest.")
    return typ


def _people(report: _Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Person[], Candidate[]): every registered candidate of the election and every one a selection names."""
    persons, candidates = [], []
    for cid in sorted(set(report.candidates) | set(report.candidate_labels)):
        row = report.candidates.get(cid)
        candidate: dict[str, Any] = {"@id": cid, "@type": "ElectionResults.Candidate",
                                     "BallotName": _text((row or {}).get("name") or report.candidate_labels[cid])}
        if row is not None:
            person: dict[str, Any] = {"@id": f"{cid}#person", "@type": "ElectionResults.Person",
                                      "FullName": _text(row["name"])}
            if _known(row.get("gender")):
                person["Gender"] = str(row["gender"]).lower()
            persons.append(person)
            candidate["PersonId"] = person["@id"]
            if row.get("party_id"):
                report.party_refs.add(row["party_id"])
                candidate["PartyId"] = row["party_id"]
        candidates.append(candidate)
    return persons, candidates


def _parties(report: _Report) -> list[dict[str, Any]]:
    out = []
    for pid in sorted(report.party_refs):
        row = report.parties.get(pid) or {}
        party: dict[str, Any] = {"@id": pid, "@type": "ElectionResults.Party", "Name": _text(row.get("name") or pid)}
        if row.get("abbreviation"):
            party["Abbreviation"] = _text(row["abbreviation"])
        out.append(party)
    return out


def _status(report: _Report) -> str:
    """``unofficial-complete`` when every contest's stations all reported; the figures are never certified."""
    if not report.contests:
        return "unofficial-partial"  # nothing says the results are complete
    for contest in report.contests:
        s = report.summary.get(contest["contest_id"]) or {}
        if s.get("stations_expected") is None or s.get("stations_reporting") != s["stations_expected"]:
            return "unofficial-partial"
    return "unofficial-complete"


PRECINCT_FORMAT, SUMMARY_FORMAT = "precinct-level", "summary-contest"


def _at_reporting_level(tables: Mapping[str, pa.Table]) -> tuple[Mapping[str, pa.Table], str]:
    """The tables as the document will use them, and its NIST ``Format``: everything when the station rows fit
    (``STATION_LEVEL_MAX_ROWS``), else without station rows, station figures and station units."""
    results = tables.get(RESULTS)
    if results is None or "level" not in results.column_names:
        return tables, PRECINCT_FORMAT
    at_station = pc.equal(results["level"], STATION)
    if (pc.sum(at_station).as_py() or 0) <= STATION_LEVEL_MAX_ROWS:
        return tables, PRECINCT_FORMAT
    out = dict(tables)
    out[RESULTS] = results.filter(pc.invert(at_station))
    out.pop(STATION_TURNOUT, None)
    divisions = tables.get(DIVISIONS)
    if divisions is not None:
        out[DIVISIONS] = divisions.filter(pc.invert(pc.is_in(divisions["kind"], pa.array(sorted(STATION_KINDS)))))
    return out, SUMMARY_FORMAT


def election_report(tables: Mapping[str, pa.Table], election_id: str, *, generated_at: datetime) -> dict[str, Any]:
    """The ElectionReport of ``election_id`` from a release's tables (by name; see ``TABLES``).

    Raises:
        KeyError: ``election_id`` is not in the ``elections`` table.
    """
    election = next((r for r in _rows(tables, ELECTIONS) if r["election_id"] == election_id), None)
    if election is None:
        raise KeyError(election_id)
    tables, level_format = _at_reporting_level(tables)
    report = _Report(tables, election)
    if level_format == SUMMARY_FORMAT:
        report.notes.append(f"Polling-station counts are left out (more than {STATION_LEVEL_MAX_ROWS:,} station "
                            "rows); they are in the release's contest_results table.")
    contests = [_contest(report, c) for c in report.contests]
    persons, candidates = _people(report)
    etype, other = v.election_type(election.get("kind"))
    body: dict[str, Any] = {"@type": "ElectionResults.Election", "Name": _text(election["name"]),
                            "StartDate": election["date"].isoformat(), "EndDate": election["date"].isoformat(),
                            "Type": etype, "ElectionScopeId": report.scope}
    if other:
        body["OtherType"] = other
    if candidates:
        body["Candidate"] = candidates
    if contests:
        body["Contest"] = contests
    doc: dict[str, Any] = {
        "@type": "ElectionResults.ElectionReport", "Election": [body], "Format": level_format,
        "GeneratedDate": generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "GpUnit": _gp_units(report), "Issuer": ISSUER, "IssuerAbbreviation": ISSUER,
        "SequenceStart": 1, "SequenceEnd": 1, "Status": _status(report), "VendorApplicationId": ISSUER,
    }
    for key, items in (("Office", sorted(report.offices, key=lambda o: o["@id"])), ("Party", _parties(report)),
                       ("Person", persons)):
        if items:
            doc[key] = items
    if report.notes:
        doc["Notes"] = " ".join(report.notes)
    return doc


def cdf_documents(tables: Mapping[str, pa.Table], *, generated_at: datetime) -> dict[str, dict[str, Any]]:
    """``{cdf/<election_id>.json: ElectionReport}`` for every election in ``elections``.

    Empty, with a log line saying so, when the release lacks the contest tables (folded before the contest
    model): there is then nothing a contest-based document could truthfully hold.
    """
    missing = [n for n in REQUIRED if n not in tables]
    if missing:
        log.warning("no NIST SP 1500-100 export: the release has no %s table", ", ".join(missing))
        return {}
    ids = sorted({r["election_id"] for r in _rows(tables, ELECTIONS)})
    return {document_key(e): election_report(tables, e, generated_at=generated_at) for e in ids}


def release_documents(tables: Mapping[str, pa.Table], *, generated_at: datetime, url: Callable[[str], str]
                      ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """What the release step writes beside ``datapackage.json``, and the manifest's ``documents`` entries.

    Args:
        tables: the staged tables by name (those of ``TABLES`` the release has).
        generated_at: the release's time (the documents' ``GeneratedDate``).
        url: the public URL of a key relative to the release folder.

    Returns:
        (documents by key, ``{key: {path, url, format, election_id}}``); both empty without contest tables.
    """
    documents = cdf_documents(tables, generated_at=generated_at)
    entries = {key: {"path": key, "url": url(key), "format": FORMAT,
                     "election_id": key.removeprefix(f"{FOLDER}/").removesuffix(".json")}
               for key in documents}
    return documents, entries
