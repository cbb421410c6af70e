"""Read an OpenElections precinct-level results CSV exactly as published.

OpenElections (https://openelections.net, GitHub org ``openelections``) publishes one repository per
state, ``openelections-data-{state}``, of CSV files converted by volunteers from county and state
sources. The convention, as its issue templates put it (e.g. openelections-data-tx#313,
openelections-data-ny#80, openelections-data-ut#39):

* one file per county per election, named ``YYYYMMDD__{state}__{type}__{county}__precinct.csv``,
  county in lower case with spaces as underscores (``20201103__pa__general__forest__precinct.csv``);
  statewide files drop the county (``20200811__ga__primary__general__runoff.csv``) and some types
  take two words (``primary__runoff``, ``special__general``);
* a header row naming at least ``county, precinct, office, district, party, candidate, votes``;
  where the source breaks votes down by method, one more column per method, named by the method in
  lower case with underscores (``early_voting, election_day, provisional, mail``; Georgia uses
  ``absentee_by_mail, advance_in_person``);
* ``Registered Voters`` and ``Ballots Cast`` as pseudo-offices (if the source has them) whose
  ``votes`` cell holds the figure; write-ins, over votes and under votes as pseudo-candidates,
  one row per precinct and office ("Write-ins", "Over Votes", "Under Votes").

The real files follow this loosely, and this reader takes them as they are: columns in any order,
extra columns kept in ``extra``, a UTF-8 byte-order mark tolerated, LF, CRLF or CR line ends, a
trailing empty header column (``votes,``), spellings of the pseudo-candidates that vary by county
("Overvotes", "Under Votes", "Write-In", "Unresolved write-in", "Total Write-In"...), vote cells
with thousands separators ("1,234") or a pandas ``.0``. An empty cell is ``None``, never 0: unknown
is not zero. What it cannot read is reported as a :class:`Rejection` (line, field, reason) and the
row is left out; nothing in a file raises.

Nothing here normalises names (offices, parties, candidates are kept as written, only stripped of
surrounding blanks): that is a mapping step of its own. Rows whose precinct is empty are kept with
``precinct=None`` (some Georgia files carry county totals that way).

:func:`totals` is a second, deliberately naive computation of the same vote sums with nothing but
:mod:`csv`, so tests can compare two independent readings of one file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BASE_COLUMNS", "KINDS", "METHOD_COLUMNS", "Contest", "FileName", "ReadResult", "Rejection",
    "Row", "Station", "classify", "contests", "parse_count", "parse_filename", "read", "read_all", "sums", "totals",
]

BASE_COLUMNS: tuple[str, ...] = ("county", "precinct", "office", "district", "party", "candidate", "votes")
REQUIRED_COLUMNS: tuple[str, ...] = ("precinct", "office", "candidate", "votes")
# Vote-method columns seen in the OpenElections repositories (and named in their issue templates).
METHOD_COLUMNS: frozenset[str] = frozenset({
    "election_day", "early_voting", "early_voting1", "early_voting2", "advance_in_person", "advance_voting",
    "absentee", "absentee_by_mail", "mail", "mail_in", "provisional", "federal", "affidavit", "one_stop",
    "in_person", "polling", "by_mail", "military", "overseas", "uocava", "emergency",
})
KINDS: tuple[str, ...] = (
    "selection", "registered_voters", "ballots_cast", "ballots_cast_blank", "over_votes", "under_votes",
    "write_ins",
)

_TYPE_WORDS = frozenset({
    "general", "primary", "special", "runoff", "general_runoff", "primary_runoff", "recall", "municipal",
    "president", "presidential", "democratic", "republican", "caucus", "nonpartisan", "party",
})
_DATE = re.compile(r"[0-9]{8}")
_STATE = re.compile(r"[a-z]{2}")
_INT = re.compile(r"([0-9]+|[0-9]{1,3}(,[0-9]{3})+)(\.0)?")  # ASCII digits only
_ALNUM = re.compile(r"[^a-z0-9]+")
_WRITE_IN = re.compile(r"(total|unresolved|unqualified|uncertified|certified|other|scattered)?"
                       r"writeins?(votes|candidates?|totals?|miscellaneous)?")
_PSEUDO_OFFICES = {
    "registeredvoters": "registered_voters", "registeredvoterstotal": "registered_voters",
    "totalregisteredvoters": "registered_voters", "ballotscast": "ballots_cast", "ballotscasttotal": "ballots_cast",
    "totalballotscast": "ballots_cast", "ballotscastblank": "ballots_cast_blank",
}
_PSEUDO_CANDIDATES = {
    "overvotes": "over_votes", "overvote": "over_votes", "overvoted": "over_votes",
    "undervotes": "under_votes", "undervote": "under_votes", "undervoted": "under_votes",
    **_PSEUDO_OFFICES,
}


@dataclass(frozen=True, slots=True)
class FileName:
    """What an OpenElections file name says: ``20201103__pa__general__forest__precinct.csv``."""

    state: str | None
    date: dt.date | None
    election_type: str | None
    county: str | None
    level: str | None  # "precinct", "county"... the last segment, when it names a reporting level


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row (or header) that could not be read: physical line (1 = header), field (None: whole row), why."""

    line: int
    field: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Row:
    """One CSV record as read: names stripped (empty → None), counts as int or None, never 0 for unknown.

    ``state``/``date``/``election_type`` come from the file name; ``county`` from the column (else the file
    name); ``methods`` holds every vote-method column of the file; ``line`` is the physical line where the
    record starts; ``kind`` is one of :data:`KINDS`; ``extra`` keeps any other column.
    """

    state: str | None
    date: dt.date | None
    election_type: str | None
    county: str | None
    precinct: str | None
    office: str
    district: str | None
    party: str | None
    candidate: str | None
    votes: int | None
    methods: dict[str, int | None]
    line: int
    kind: str
    extra: dict[str, str | None] = field(default_factory=dict)


@dataclass
class ReadResult:
    """One file: its name's facts, its columns, the rows read and the rejections (in line order)."""

    path: Path
    name: FileName
    columns: list[str]
    methods: list[str]
    rows: list[Row]
    rejections: list[Rejection]
    records: int = 0  # data records seen (blank lines excluded)

    @property
    def rejected_lines(self) -> set[int]:
        return {r.line for r in self.rejections}

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in KINDS}
        for r in self.rows:
            out[r.kind] += 1
        return out


@dataclass
class Station:
    county: str | None
    precinct: str | None
    selections: list[Row] = field(default_factory=list)  # kind "selection"
    counters: dict[str, int | None] = field(default_factory=dict)  # over_votes / under_votes / write_ins


@dataclass
class Contest:
    office: str
    district: str | None
    stations: dict[tuple[str | None, str | None], Station] = field(default_factory=dict)


def parse_filename(name: str | Path) -> FileName:
    """State, date, election type and county from an OpenElections file name; None where it says nothing."""
    stem = Path(name).name
    if stem.lower().endswith(".csv"):
        stem = stem[:-4]
    parts = [p for p in stem.lower().split("__") if p]
    if len(parts) < 3 or not _DATE.fullmatch(parts[0]) or not _STATE.fullmatch(parts[1]):
        return FileName(None, None, None, None, None)
    try:
        date = dt.datetime.strptime(parts[0], "%Y%m%d").date()
    except ValueError:
        date = None
    rest = parts[2:]
    level = None
    if rest and rest[-1] in ("precinct", "county", "state", "ward", "district", "municipality", "town"):
        level = rest.pop()
    type_parts = rest[:1]
    i = 1
    while i < len(rest) and rest[i] in _TYPE_WORDS:
        type_parts.append(rest[i])
        i += 1
    remaining = rest[i:]
    county = remaining[0] if len(remaining) == 1 and level is not None else None
    return FileName(parts[1], date, "__".join(type_parts) or None, county, level)


def parse_count(text: str | None) -> int | None:
    """A vote count: "" → None, "1,234" → 1234, "12.0" → 12; anything else raises ValueError."""
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    if not _INT.fullmatch(s):
        raise ValueError(f"not a whole non-negative number: {text!r}")
    return int(s.split(".")[0].replace(",", ""))


def _key(text: str | None) -> str:
    return _ALNUM.sub("", (text or "").lower())


def classify(office: str | None, candidate: str | None) -> str:
    """The row's kind: a real selection, a pseudo-office figure, or a pseudo-candidate counter."""
    o = _key(office)
    if o in _PSEUDO_OFFICES:
        return _PSEUDO_OFFICES[o]
    c = _key(candidate)
    if c in _PSEUDO_CANDIDATES:
        return _PSEUDO_CANDIDATES[c]
    if c and _WRITE_IN.fullmatch(c):
        return "write_ins"
    return "selection"


def _cell(text: str | None) -> str | None:
    if text is None:
        return None
    s = text.strip()
    return s or None


def _decode(data: bytes) -> tuple[str, set[int]]:
    """Text of the file and the physical lines (1-based) that were not valid UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), set()
    except UnicodeDecodeError:
        pass
    bad: set[int] = set()
    parts = []
    for n, line in enumerate(data.splitlines(keepends=True), start=1):
        try:
            parts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad.add(n)
            parts.append(line.decode("utf-8", errors="replace"))
    return "".join(parts), bad


def records(reader: Any, result: ReadResult) -> Iterator[tuple[int, list[str]]]:
    """The non-blank records after the header, each with the physical line it starts on (a quoted field may span
    more); a record the csv module cannot read becomes a rejection in ``result``. Counts ``result.records``."""
    while True:
        before = reader.line_num
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            result.rejections.append(Rejection(before + 1, None, f"unreadable CSV: {e}"))
            continue
        if not record or all(not c.strip() for c in record):
            continue
        result.records += 1
        yield before + 1, record


def read(path: str | Path, data: bytes | None = None) -> ReadResult:
    """Every row of one file, with what could not be read as rejections. Never raises on content."""
    # Long: one pass over a file as published (header, quirks, rows), each failure kept as a rejection.
    path = Path(path)
    name = parse_filename(path)
    if data is None:
        data = path.read_bytes()
    text, bad_lines = _decode(data)
    result = ReadResult(path, name, [], [], [], [])
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = next(reader, None)
    except csv.Error as e:
        result.rejections.append(Rejection(1, None, f"unreadable header: {e}"))
        return result
    if header is None:
        result.rejections.append(Rejection(1, None, "empty file: no header row"))
        return result
    columns = [h.strip().lower() for h in header]
    result.columns = columns
    if 1 in bad_lines:
        result.rejections.append(Rejection(1, None, "header is not valid UTF-8"))
        return result
    index: dict[str, int] = {}
    for i, c in enumerate(columns):
        if c and c not in index:
            index[c] = i
    for c, n in ((c, columns.count(c)) for c in sorted(set(columns)) if c):
        if n > 1:
            result.rejections.append(Rejection(1, c, f"column named {n} times; the first is read"))
    missing = [c for c in REQUIRED_COLUMNS if c not in index]
    if "county" not in index and name.county is None:
        missing.insert(0, "county")
    if missing:
        for c in missing:
            result.rejections.append(Rejection(1, c, "column missing from the header"))
        return result
    methods = [c for c in columns if c in METHOD_COLUMNS]
    result.methods = methods
    known = set(BASE_COLUMNS) | set(methods)
    extras = [c for c in index if c not in known]
    width = len(columns)
    # A trailing empty header cell ("votes,") is a real-file habit: rows may then carry one cell fewer.
    shortest = max(i for i, c in enumerate(columns) if c) + 1

    for line, record in records(reader, result):
        if any(n in bad_lines for n in range(line, reader.line_num + 1)):
            result.rejections.append(Rejection(line, None, "not valid UTF-8"))
            continue
        if not shortest <= len(record) <= width:
            result.rejections.append(
                Rejection(line, None, f"{len(record)} fields where the header has {width}"))
            continue

        def get(col: str, record: list[str] = record) -> str | None:
            i = index.get(col)
            return _cell(record[i]) if i is not None and i < len(record) else None

        problems = []
        try:
            votes = parse_count(get("votes"))
        except ValueError as e:
            votes = None
            problems.append(Rejection(line, "votes", str(e)))
        counts: dict[str, int | None] = {}
        for m in methods:
            try:
                counts[m] = parse_count(get(m))
            except ValueError as e:
                problems.append(Rejection(line, m, str(e)))
        office = get("office")
        if office is None:
            problems.append(Rejection(line, "office", "empty office"))
        if problems:
            result.rejections.extend(problems)
            continue
        candidate = get("candidate")
        result.rows.append(Row(
            state=name.state, date=name.date, election_type=name.election_type,
            county=get("county") if "county" in index else name.county,
            precinct=get("precinct"), office=office, district=get("district"), party=get("party"),
            candidate=candidate, votes=votes, methods=counts, line=line, kind=classify(office, candidate),
            extra={c: get(c) for c in extras},
        ))
    return result


def contests(rows: Iterable[Row]) -> dict[tuple[str, str | None], Contest]:
    """Rows grouped into contests (office, district) → stations (county, precinct) → selections.

    Pseudo-offices (registered voters, ballots cast) are station figures, not contests: they are left out
    here; over/under votes and write-ins become the station's ``counters`` (summed if a station repeats one).
    """
    out: dict[tuple[str, str | None], Contest] = {}
    for r in rows:
        if r.kind in ("registered_voters", "ballots_cast", "ballots_cast_blank"):
            continue
        contest = out.setdefault((r.office, r.district), Contest(r.office, r.district))
        station = contest.stations.setdefault((r.county, r.precinct), Station(r.county, r.precinct))
        if r.kind == "selection":
            station.selections.append(r)
        else:
            have = station.counters.get(r.kind)
            station.counters[r.kind] = r.votes if have is None else have + (r.votes or 0)
    return out


SumKey = tuple[str, str | None, str | None, str | None]  # office, district, county, candidate


def sums(rows: Iterable[Row]) -> dict[SumKey, int]:
    """Votes per (office, district, county, candidate) from parsed rows (rows with votes None add nothing)."""
    out: dict[SumKey, int] = defaultdict(int)
    for r in rows:
        if r.votes is not None:
            out[(r.office, r.district, r.county, r.candidate)] += r.votes
    return dict(out)


def totals(path: str | Path) -> dict[SumKey, int]:
    """The same sums as :func:`sums`, computed straight from the file with :mod:`csv` alone.

    Independent of :func:`read` on purpose (no shared helpers): a second reading for tests to compare.
    Cells are stripped, empty ones are None; a votes cell that is not digits (after dropping thousands
    commas and a ``.0``) is skipped, as :func:`read` rejects it.
    """
    out: dict[SumKey, int] = defaultdict(int)
    county_from_name = None
    parts = Path(path).name.split("__")
    if len(parts) >= 5 and parts[-1].startswith("precinct"):
        county_from_name = parts[-2]
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        for row in csv.DictReader(f):
            row = {(k or "").strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
            raw = (row.get("votes") or "").replace(",", "")
            if raw.endswith(".0"):
                raw = raw[:-2]
            if not raw.isdigit():
                continue
            key = (row.get("office") or None, row.get("district") or None,
                   (row.get("county") or None) if "county" in row else county_from_name,
                   row.get("candidate") or None)
            out[key] += int(raw)
    return dict(out)


def read_all(paths: Iterable[str | Path]) -> Iterator[ReadResult]:
    """:func:`read` for each file in turn (one file's rows in memory at a time)."""
    for p in paths:
        yield read(p)
