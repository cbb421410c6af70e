"""OpenElections precinct rows → Ballotstream events (plain JSON dicts in the JSON Lines input shape).

What becomes what (docs/contests.md, "Import"):

* the file name's state, date and type → one ElectionDeclared ``<type>.us.<state>[.<more type words>].<date>``
  (``general.us.pa.2020-11-03``; ``primary__runoff`` → ``primary.us.ga.runoff.2016-07-26``), kind RUNOFF when
  a type word is ``runoff``, else SPECIAL, PRIMARY, GENERAL by the first of those words present, else OTHER;
* the country, the state (REGION), each county (COUNTY) and precinct (PRECINCT) → DivisionDeclared with OCD ids
  (``ocd-division/country:us/state:pa/county:forest/precinct:barnett_township``); congressional and state
  legislative districts named by a contest's office + district → DISTRICT divisions, and every precinct lists
  the districts it votes in as ``member_of``;
* each office + district (+ party, in primaries: each party's primary is its own contest) → ContestDeclared:
  BALLOT_MEASURE when its only choices are yes/no/for/against (selections ``option:yes``...), PARTY_LIST when
  its choices are parties without candidates (straight-party voting), else CANDIDATE; ``A / B`` in a candidate
  cell is a ticket: A is the candidate, B a running mate;
* parties → PartyDeclared (id from the cell as written: ``(REP`` is ``party:rep``, ``R`` is ``party:r``);
  candidates → CandidateRegistered, one per contest (id ``candidate:<contest id>.<name>``), everything the files
  do not say UNKNOWN or null;
* one StationTally per contest × precinct: ``Registered Voters`` / ``Ballots Cast`` rows of the precinct on
  each of its tallies, over/under votes and write-ins of the contest, votes per selection with ``by_method``
  from the vote-method columns; a figure the file does not give is null, never 0.

Not converted, and counted in :attr:`Conversion.skipped` (the ingest report prints them): county-total rows
(precinct empty, or ``Total`` as in Parmer County, TX), which repeat the sums of the precincts above them and
would count every vote twice (:attr:`Conversion.totals_mismatch` counts totals that differ from their
precincts' sums); ``Ballots Cast Blank`` rows (a station figure StationTally has no field for); selection rows
with an empty votes cell (unknown, so left out of the tally rather than made 0). Rows the reader rejects, and
rows that contradict an earlier one (a second row for the same precinct, contest and selection), are
:attr:`Conversion.rejected` with file, line, field and reason: ingest dead-letters them.

Everything is derived from content in a fixed order, so the same files give the same events (ingest derives
event ids from content: re-ingesting creates nothing new). Reference events are derived from all files of one
conversion together, so a statewide contest declares the selections of every county file given.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.contract import reasons
from pipelines.contract.ids import slugify
from pipelines.ingest import openelections as oe

__all__ = ["Conversion", "Event", "FileStats", "Problem", "SOURCE", "convert", "method_symbol"]

SOURCE = {"organisation": "OpenElections", "kind": "OTHER", "url": None}
COUNTRY = "ocd-division/country:us"

_METHODS = {
    "election_day": "ELECTION_DAY", "polling": "ELECTION_DAY", "in_person": "ELECTION_DAY",
    "early_voting": "EARLY", "early_voting1": "EARLY", "early_voting2": "EARLY", "advance_in_person": "EARLY",
    "advance_voting": "EARLY", "one_stop": "EARLY",
    "mail": "MAIL", "mail_in": "MAIL", "by_mail": "MAIL", "absentee_by_mail": "MAIL",
    "absentee": "ABSENTEE", "provisional": "PROVISIONAL", "affidavit": "PROVISIONAL",
}
_OPTIONS = frozenset({"yes", "no", "for", "against"})
_TOTAL_PRECINCTS = frozenset({"total", "totals", "countytotal", "countytotals"})
# Offices whose contest is statewide when no district is given; districts whose OCD type the office names.
_STATEWIDE = re.compile(
    r"(president|u\.? ?s\.? senat|governor|lieutenant governor|attorney general|secretary of state|"
    r"state treasurer|auditor general|railroad commissioner|commissioner of|state school superintendent|"
    r"straight party|constitutional amendment|statewide referendum)", re.I)
_DISTRICT_TYPES = (
    (re.compile(r"(u\.? ?s\.? (house|representative)|congress)", re.I), "cd", "congressional district"),
    (re.compile(r"state senat", re.I), "sldu", "state senate district"),
    (re.compile(r"(state (house|representative)|general assembly)", re.I), "sldl", "state house district"),
)
_NON_SLUG = re.compile(r"[^a-z0-9]+")
_TITLE_END = re.compile(r"<br\s*/?>", re.I)


def method_symbol(column: str) -> str:
    """The VoteMethod symbol of an OpenElections vote-method column (OTHER for any other method)."""
    return _METHODS.get(column, "OTHER")


def _seg(text: str) -> str:
    """A segment of an election/contest/party/candidate id: lower case ASCII letters, digits and hyphens."""
    return _NON_SLUG.sub("-", text.lower()).strip("-") or "x"


@dataclass(frozen=True, slots=True)
class Event:
    """One event as JSON Lines input (``type`` + fields), with the file and line it was derived from."""

    file: str
    line: int
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that was not converted: file, line, field (None: whole row), reason code and reason."""

    file: str
    line: int
    field: str | None
    reason_code: str
    reason: str


@dataclass
class FileStats:
    """Per file: data records read, events produced from it (attributed by first line), rejected, skipped."""

    records: int = 0
    events: int = 0
    rejected: int = 0
    skipped: int = 0


@dataclass
class Conversion:
    events: list[Event] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    totals_mismatch: int = 0
    files: dict[str, FileStats] = field(default_factory=dict)


@dataclass
class _Contest:
    contest_id: str
    election_id: str
    name: str
    office: str
    district: str | None
    district_id: str | None
    first: tuple[str, int]
    rows: list[tuple[str, oe.Row]] = field(default_factory=list)
    votes_allowed: int | None = None
    number_elected: int | None = None


@dataclass
class _State:
    """What one conversion has seen so far, by id (first file and line of each)."""

    first: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    values: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    names: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    members: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    contests: dict[str, _Contest] = field(default_factory=dict)
    precinct_names: dict[str, str] = field(default_factory=dict)

    def see(self, kind: str, key: str, file: str, line: int, value: dict[str, Any], name: str | None = None) -> None:
        self.first.setdefault((kind, key), (file, line))
        self.values.setdefault((kind, key), value)
        if name is not None:
            self.names[(kind, key)][name] += 1


def _election(name: oe.FileName) -> tuple[str, str] | None:
    """(election id, ElectionKind) from the file name, or None when it does not say state, date and type."""
    if name.state is None or name.date is None or not name.election_type:
        return None
    words = [w for w in re.split(r"_+", name.election_type) if w]
    kind = "OTHER"
    for word, symbol in (("runoff", "RUNOFF"), ("special", "SPECIAL"), ("primary", "PRIMARY"), ("general", "GENERAL")):
        if word in words:
            kind = symbol
            break
    middle = "".join(f".{_seg(w)}" for w in words[1:])
    return f"{_seg(words[0])}.us.{name.state}{middle}.{name.date.isoformat()}", kind


def _district(office: str, district: str | None, state_id: str) -> tuple[str | None, str | None]:
    """(district division id, its label) of a contest; the state for known statewide offices; else (None, None)."""
    if district is None:
        return (state_id, None) if _STATEWIDE.match(office) else (None, None)
    for pattern, ocd_type, label in _DISTRICT_TYPES:
        if pattern.match(office):
            return f"{state_id}/{ocd_type}:{slugify(district)}", label
    return None, None


def _selection_kind(rows: list[oe.Row]) -> str:
    selections = [r for r in rows if r.kind == "selection"]
    if selections and all(r.candidate and _seg(r.candidate) in _OPTIONS for r in selections):
        return "BALLOT_MEASURE"
    if selections and all(r.candidate is None and r.party for r in selections):
        return "PARTY_LIST"
    return "CANDIDATE"


def _ticket(candidate: str) -> list[str]:
    """``"Joseph R. Biden / Kamala D. Harris"`` → both names; the first is the candidate."""
    return [p.strip() for p in candidate.split(" / ") if p.strip()] or [candidate]


def _most_common(names: Counter[str]) -> str:
    return sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


_READER_CODES = (("UTF-8", reasons.INVALID_ENCODING), ("fields where the header", reasons.MALFORMED_CSV),
                 ("unreadable", reasons.MALFORMED_CSV), ("column missing", reasons.MISSING_FIELD),
                 ("empty office", reasons.MISSING_FIELD), ("not a whole", reasons.WRONG_TYPE),
                 ("named", reasons.MALFORMED_CSV), ("empty file", reasons.MISSING_FIELD))


def _reader_problem(file: str, r: oe.Rejection) -> Problem:
    code = next((c for text, c in _READER_CODES if text in r.reason), reasons.MALFORMED_CSV)
    return Problem(file, r.line, r.field, code, f"{r.field + ': ' if r.field else ''}{r.reason}")


def _is_total(precinct: str | None) -> bool:
    return precinct is None or oe._key(precinct) in _TOTAL_PRECINCTS


@dataclass
class _Kept:
    """A row to convert, with the ids it belongs to."""

    file: str
    row: oe.Row
    election_id: str
    precinct_id: str
    contest_id: str | None  # None: a precinct figure (registered voters, ballots cast)


class _Converter:
    """One conversion (see :func:`convert`): rows are collected, then reference events, then tallies."""

    def __init__(self, source: Mapping[str, Any], status: str, methods: Mapping[str, str] | None) -> None:
        self.source, self.status, self.methods = dict(source), status, methods
        self.occurred_at = ""
        self.out = Conversion()
        self.state = _State()
        self.kept: list[_Kept] = []
        self.elections: dict[str, tuple[str, oe.FileName, str]] = {}  # id → (kind, name, file)
        self.totals: dict[tuple[str, ...], int] = defaultdict(int)  # skipped total rows, to compare
        self.precinct_sums: dict[tuple[str, ...], int] = defaultdict(int)

    def reject(self, file: str, line: int, fld: str | None, code: str, reason: str) -> None:
        self.out.rejected.append(Problem(file, line, fld, code, reason))
        self.out.files[file].rejected += 1

    def skip(self, file: str, why: str) -> None:
        self.out.skipped[why] += 1
        self.out.files[file].skipped += 1

    def collect(self, result: oe.ReadResult) -> None:
        """Check one file's rows and keep those to convert (rejections and skips counted)."""
        file = str(result.path)
        self.out.files[file] = FileStats(records=result.records)
        for r in result.rejections:
            self.out.rejected.append(_reader_problem(file, r))
        self.out.files[file].rejected += len(result.rejected_lines)
        election = _election(result.name)
        if election is None:
            if result.rows:
                self.reject(file, 1, None, reasons.MISSING_FIELD,
                            "file name: no state, date and election type (YYYYMMDD__st__type__county__precinct.csv)")
                self.out.files[file].rejected += len(result.rows) - 1
            return
        election_id, kind = election
        self.elections.setdefault(election_id, (kind, result.name, file))
        primary = "primary" in re.split(r"_+", result.name.election_type or "")
        for row in result.rows:
            self._collect_row(file, row, election_id, primary)

    def _collect_row(self, file: str, row: oe.Row, election_id: str, primary: bool) -> None:
        state_id = f"{COUNTRY}/state:{row.state}"
        county = row.county or ""
        county_id = f"{state_id}/county:{slugify(county)}"
        contest_key = None
        if row.kind not in ("registered_voters", "ballots_cast", "ballots_cast_blank"):
            title = _TITLE_END.split(row.office)[0]
            parts = [_seg(title)] + ([f"d-{_seg(row.district)}"] if row.district else [])
            if primary and row.party:
                parts.append(_seg(row.party))
            contest_key = ".".join(parts)
        contest_id = None if contest_key is None else election_id[:-10] + contest_key + election_id[-11:]
        if _is_total(row.precinct):
            self.skip(file, "county-total rows (precinct empty or 'Total'; their precincts are counted)")
            if row.kind == "selection" and row.votes is not None:
                self.totals[(contest_id or "", county_id, row.candidate or row.party or "")] += row.votes
            return
        if row.kind == "ballots_cast_blank":
            self.skip(file, "'Ballots Cast Blank' rows (a station figure StationTally has no field for)")
            return
        if primary and row.kind not in ("selection", "registered_voters", "ballots_cast") and row.party is None:
            self.skip(file, "over/under/write-in rows of a primary without a party (whose primary is unknown)")
            return
        precinct_id = f"{county_id}/precinct:{slugify(row.precinct or '')}"
        known = self.state.precinct_names.setdefault(precinct_id, row.precinct or "")
        if known != row.precinct:
            self.reject(file, row.line, "precinct", reasons.INVALID_ID,
                        f"precinct: {row.precinct!r} has the same id as {known!r} ({precinct_id})")
            return
        self.state.see("division", state_id, file, row.line, {"parent_id": COUNTRY}, (row.state or "").upper())
        self.state.see("division", county_id, file, row.line, {"parent_id": state_id}, county)
        self.state.see("division", precinct_id, file, row.line, {"parent_id": county_id}, row.precinct)
        if contest_id is not None and not self._contest(file, row, election_id, contest_id, state_id, precinct_id):
            return
        self.kept.append(_Kept(file, row, election_id, precinct_id, contest_id))

    def _contest(self, file: str, row: oe.Row, election_id: str, contest_id: str, state_id: str,
                 precinct_id: str) -> bool:
        """Record the row's contest; False (row rejected) when another office + district has its id."""
        contest = self.state.contests.get(contest_id)
        if contest is None:
            district_id, label = _district(row.office, row.district, state_id)
            if district_id is not None and district_id != state_id:
                self.state.see("division", district_id, file, row.line, {"parent_id": state_id, "label": label},
                               f"{label} {row.district}")
            contest = self.state.contests[contest_id] = _Contest(
                contest_id, election_id, row.office, row.office, row.district, district_id, (file, row.line))
        elif (oe._key(contest.office), oe._key(contest.district)) != (oe._key(row.office), oe._key(row.district)):
            self.reject(file, row.line, "office", reasons.INVALID_ID,
                        f"office: {row.office!r} (district {row.district!r}) has the same contest id as "
                        f"{contest.office!r} (district {contest.district!r}): {contest_id}")
            return False
        if contest.district_id is not None and contest.district_id != state_id:
            self.state.members[precinct_id].add(contest.district_id)
        contest.rows.append((file, row))
        return True

    def emit(self, record_type: str, first: tuple[str, int], value: dict[str, Any]) -> None:
        file, line = first
        self.out.events.append(Event(file, line, {"type": record_type, "occurred_at": self.occurred_at,
                                                   "source": self.source, **value}))
        self.out.files[file].events += 1

    def reference(self) -> None:
        """ElectionDeclared per election, then divisions, parties, candidates and contests, in that order."""
        first_date = None
        for election_id in sorted(self.elections):
            kind, name, file = self.elections[election_id]
            assert name.state is not None and name.date is not None  # _election checked both
            first_date = min(first_date or name.date, name.date)
            self.occurred_at = f"{name.date.isoformat()}T00:00:00+00:00"  # the files give the day, not the hour
            words = " ".join(w for w in re.split(r"_+", name.election_type or "") if w)
            self.emit("ElectionDeclared", (file, 1), {
                "election_id": election_id, "date": name.date.isoformat(), "kind": kind, "country": "us",
                "name": f"{name.state.upper()} {words} election, {name.date.isoformat()}", "seats_at_stake": None})
        if first_date is None:
            return
        self.occurred_at = f"{first_date.isoformat()}T00:00:00+00:00"
        self.emit("DivisionDeclared", self.elections[min(self.elections)][2:] + (1,),
                  self._division(COUNTRY, "United States", "COUNTRY", None, None))
        for (what, key), first in sorted(self.state.first.items(), key=lambda kv: (kv[0][1].count("/"), kv[0][1])):
            if what != "division":
                continue
            value = self.state.values[(what, key)]
            kind_of = "DISTRICT" if value.get("label") else {2: "REGION", 3: "COUNTY", 4: "PRECINCT"}[key.count("/")]
            self.emit("DivisionDeclared", first, self._division(
                key, _most_common(self.state.names[(what, key)]), kind_of, value.get("parent_id"), value.get("label"),
                sorted(self.state.members.get(key, ()))))
        parties: dict[str, tuple[tuple[str, int], Counter[str]]] = {}
        for c in self.state.contests.values():
            for file_, row in c.rows:
                if row.party:
                    first, names = parties.setdefault(f"party:{_seg(row.party)}", ((file_, row.line), Counter()))
                    names[row.party] += 1
        for party_id, (first, names) in sorted(parties.items()):
            self.emit("PartyDeclared", first, {"party_id": party_id, "name": _most_common(names), "abbreviation": None})
        for election_id in sorted(self.elections):
            self.occurred_at = f"{self.elections[election_id][1].date}T00:00:00+00:00"
            self._contests(election_id)

    def _contests(self, election_id: str) -> None:
        """CandidateRegistered and ContestDeclared events of one election."""
        contests = sorted((c for c in self.state.contests.values() if c.election_id == election_id),
                          key=lambda c: c.contest_id)
        declared = [(c, self._selections(c)) for c in contests]
        for c, (_, candidates) in declared:
            for candidate_id, (first, names, party_id) in sorted(candidates.items()):
                self.emit("CandidateRegistered", first, {
                    "candidate_id": candidate_id, "election_id": election_id, "name": _most_common(names),
                    "party_id": party_id, "municipality_id": None, "gender": "UNKNOWN", "birth_year": None,
                    "age_band": "UNKNOWN", "education": "UNKNOWN", "contest_id": c.contest_id})
        for c, (selections, _) in declared:
            kind_of = _selection_kind([r for _, r in c.rows])
            self.emit("ContestDeclared", c.first, {
                "contest_id": c.contest_id, "election_id": election_id, "name": c.name, "kind": kind_of,
                "office": c.office if kind_of == "CANDIDATE" else None, "district_id": c.district_id,
                "number_elected": _fact(c, "number_elected"), "votes_allowed": _fact(c, "votes_allowed"),
                "selections": [selections[k] for k in sorted(selections)]})

    def _division(self, division_id: str, name: str, kind: str, parent_id: str | None, label: str | None,
                  member_of: list[str] | None = None) -> dict[str, Any]:
        return {"division_id": division_id, "name": name, "kind": kind, "parent_id": parent_id, "election_id": None,
                "municipality_id": None, "seats": None, "label": label, "member_of": member_of or []}

    def _selections(self, c: _Contest) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """A contest's selections by id, and its candidates: id → (first file+line, names, party id)."""
        kind = _selection_kind([r for _, r in c.rows])
        selections: dict[str, dict[str, Any]] = {}
        candidates: dict[str, Any] = {}
        labels: dict[str, Counter[str]] = defaultdict(Counter)
        for file, row in c.rows:
            if row.kind != "selection":
                continue
            sid = self.selection_id(c.contest_id, kind, row)
            if sid is None:
                continue
            party_id = f"party:{_seg(row.party)}" if row.party else None
            labels[sid][row.candidate or row.party or ""] += 1
            mates: list[str] = []
            if kind == "CANDIDATE":
                assert row.candidate is not None  # selection_id is None otherwise
                names = _ticket(row.candidate)
                for i, person in enumerate(names):
                    pid = f"candidate:{c.contest_id}.{_seg(person)}"
                    entry = candidates.setdefault(pid, ((file, row.line), Counter(), party_id if i == 0 else None))
                    entry[1][person] += 1
                    if i:
                        mates.append(pid)
            entry = selections.setdefault(sid, {
                "selection_id": sid, "kind": {"CANDIDATE": "CANDIDATE", "PARTY_LIST": "PARTY"}.get(kind, "OPTION"),
                "label": "", "candidate_id": sid if kind == "CANDIDATE" else None,
                "party_id": party_id if kind != "BALLOT_MEASURE" else None, "running_mates": []})
            # Counties may name a ticket in full or its head only: the mates are those any file names.
            entry["running_mates"] = sorted(set(entry["running_mates"]) | set(mates))
        for sid, s in selections.items():
            s["label"] = _most_common(labels[sid])
        return selections, candidates

    @staticmethod
    def selection_id(contest_id: str, kind: str, row: oe.Row) -> str | None:
        if kind == "BALLOT_MEASURE":
            return f"option:{_seg(row.candidate or '')}"
        if kind == "PARTY_LIST":
            return f"party:{_seg(row.party or '')}"
        if row.candidate is None:
            return None
        return f"candidate:{contest_id}.{_seg(_ticket(row.candidate)[0])}"


def _fact(contest: _Contest, name: str) -> int | None:
    """A contest fact a mapped source gives per row (``extra``), when every row that gives it agrees."""
    seen = {r.extra.get(name) for _, r in contest.rows} - {None}
    if len(seen) != 1:
        return None
    value = seen.pop()
    try:
        return oe.parse_count(value)
    except ValueError:
        return None


def _by_method(row: oe.Row, methods: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """MethodVotes of a row: columns naming one method are summed (null if any of them is empty)."""
    out: dict[str, int | None] = {}
    for column, votes in row.methods.items():
        symbol = (methods or {}).get(column) or method_symbol(column)
        if symbol in out:
            have = out[symbol]
            out[symbol] = None if have is None or votes is None else have + votes
        else:
            out[symbol] = votes
    return [{"method": m, "votes": v} for m, v in out.items()]


_COUNTERS = {"over_votes": "overvotes", "under_votes": "undervotes", "write_ins": "write_ins"}


class _Tallies:
    """StationTally events of one conversion, file by file, contest × precinct in order of first row."""

    def __init__(self, conv: _Converter) -> None:
        self.conv = conv
        self.figures: dict[tuple[str, str], dict[str, int | None]] = defaultdict(dict)
        self.kinds = {c.contest_id: _selection_kind([r for _, r in c.rows]) for c in conv.state.contests.values()}

    def run_election(self, election_id: str) -> None:
        kept = [k for k in self.conv.kept if k.election_id == election_id]
        for k in kept:
            if k.contest_id is None:
                self._figure(k)
        groups: dict[tuple[str, str], list[_Kept]] = {}
        for k in kept:
            if k.contest_id is not None:
                groups.setdefault((k.contest_id, k.precinct_id), []).append(k)
        for (contest_id, precinct_id), rows in groups.items():
            self._tally(contest_id, precinct_id, rows)

    def _figure(self, k: _Kept) -> None:
        figures = self.figures[(k.election_id, k.precinct_id)]
        if k.row.kind in figures and figures[k.row.kind] != k.row.votes:
            self.conv.reject(k.file, k.row.line, "votes", reasons.DUPLICATE_KEY,
                             f"votes: a second {k.row.office!r} row for precinct {k.row.precinct!r} says "
                             f"{k.row.votes}, an earlier one {figures[k.row.kind]}")
            return
        figures[k.row.kind] = k.row.votes

    def _tally(self, contest_id: str, precinct_id: str, rows: list[_Kept]) -> None:
        conv, first = self.conv, rows[0]
        kind = self.kinds[contest_id]
        figures = self.figures.get((first.election_id, precinct_id), {})
        counters: dict[str, int | None] = {}
        votes: dict[str, dict[str, Any]] = {}
        for k in rows:
            row = k.row
            if row.kind in _COUNTERS:
                have = counters.get(row.kind, 0)
                counters[row.kind] = None if have is None or row.votes is None else have + row.votes
                continue
            sid = _Converter.selection_id(contest_id, kind, row)
            if sid is None:
                conv.reject(k.file, row.line, "candidate", reasons.MISSING_FIELD,
                            "candidate: empty in a candidate contest (neither a candidate nor a party choice)")
            elif sid in votes:
                conv.reject(k.file, row.line, "candidate", reasons.DUPLICATE_KEY,
                            f"candidate: a second row for {row.candidate or row.party!r} in precinct "
                            f"{row.precinct!r}, contest {row.office!r}")
            elif row.votes is None:
                conv.skip(k.file, "selection rows with an empty votes cell (unknown, left out of the tally)")
            else:
                votes[sid] = {"candidate_id": sid, "votes": row.votes, "by_method": _by_method(row, conv.methods)}
                county_id = precinct_id.rsplit("/", 1)[0]
                conv.precinct_sums[(contest_id, county_id, row.candidate or row.party or "")] += row.votes
        conv.emit("StationTally", (first.file, first.row.line), {
            "election_id": first.election_id, "contest_id": contest_id, "station_id": precinct_id,
            "municipality_id": None, "status": conv.status,
            "registered_voters": figures.get("registered_voters"), "ballots_cast": figures.get("ballots_cast"),
            "valid_ballots": None, "invalid_ballots": None,
            **{name: counters.get(kind_) for kind_, name in _COUNTERS.items()}, "blank_votes": None,
            "votes": list(votes.values())})


def convert(results: Iterable[oe.ReadResult], *, source: Mapping[str, Any] = SOURCE, status: str = "UNKNOWN",
            methods: Mapping[str, str] | None = None) -> Conversion:
    """The events of some OpenElections files read by :func:`pipelines.ingest.openelections.read`.

    Args:
        results: the files, read; reference events are derived from all of them together.
        source: the events' ``source`` (OpenElections, kind OTHER, no URL by default).
        status: every tally's status: UNKNOWN by default, as the files do not say whether results are final.
        methods: vote-method column → VoteMethod symbol, before :func:`method_symbol`'s defaults.

    Returns:
        Events in input order (reference events first, then each file's tallies), rejected and skipped rows,
        per-file counts. Never raises on content.
    """
    conv = _Converter(source, status, methods)
    for result in results:
        conv.collect(result)
    conv.reference()
    tallies = _Tallies(conv)
    for election_id in sorted(conv.elections):
        name = conv.elections[election_id][1]
        conv.occurred_at = f"{name.date}T00:00:00+00:00"
        tallies.run_election(election_id)
    for key, total in conv.totals.items():
        if conv.precinct_sums.get(key) != total:
            conv.out.totals_mismatch += 1
    return conv.out


def convert_files(paths: Iterable[str | Path]) -> Conversion:
    """:func:`convert` of files read from disk."""
    return convert(oe.read_all(paths))
