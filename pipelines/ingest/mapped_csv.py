"""Any precinct-level results CSV, read through a YAML column mapping into OpenElections rows.

The mapping (README, "Input formats") names the election and the source as constants and says which source
column holds each field; rows then go through the same conversion as OpenElections files
(:mod:`pipelines.ingest.openelections_events`), so pseudo-offices and pseudo-candidates ("Registered Voters",
"Over Votes"...) mean the same, empty cells stay unknown and unreadable rows are rejected with line and field.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.contract import reasons
from pipelines.errors import InputError
from pipelines.ingest import openelections as oe

__all__ = ["Mapping", "load_mapping", "read"]

FIELDS = ("county", "precinct", "office", "district", "party", "candidate", "votes", "votes_allowed",
          "number_elected")
REQUIRED = ("precinct", "office", "candidate", "votes")
_TOP = {"election", "source", "status", "columns", "constants", "methods"}
_METHOD_SYMBOLS = {"ELECTION_DAY", "EARLY", "MAIL", "ABSENTEE", "PROVISIONAL", "OTHER"}
_SOURCE_KINDS = {"ELECTION_AUTHORITY", "OBSERVER_MISSION", "PARTY", "MEDIA", "JOURNALIST", "CITIZEN", "GOVERNMENT",
                 "GENERATOR", "OTHER"}


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file: the file-name facts, source, status, column and method maps, constants."""

    name: oe.FileName
    source: dict[str, Any]
    status: str
    columns: dict[str, str]
    constants: dict[str, str]
    methods: dict[str, str]


def _bad(path: Path, reason: str) -> InputError:
    return InputError(reasons.UNSUPPORTED_FILE, f"{path}: mapping {reason}")


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file.

    Raises:
        InputError: ``unsupported_file`` naming what is wrong (unknown key, missing field, bad symbol).
    """
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: also a YAML date that is no date
        raise _bad(path, f"cannot be read: {exc}".splitlines()[0]) from None
    if not isinstance(doc, dict) or set(doc) - _TOP:
        raise _bad(path, f"keys must be among {sorted(_TOP)}")
    election = doc.get("election") or {}
    state, date, etype = (str(election.get(k) or "").strip().lower() for k in ("state", "date", "type"))
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise _bad(path, f"election.date: not a YYYY-MM-DD date: {date!r}") from None
    if len(state) != 2 or not state.isalpha() or not etype:
        raise _bad(path, "election: needs state (two letters) and type (e.g. general)")
    source = {"organisation": "", "kind": "OTHER", "url": None, **(doc.get("source") or {})}
    if not source["organisation"] or source["kind"] not in _SOURCE_KINDS or set(source) != {"organisation", "kind",
                                                                                              "url"}:
        raise _bad(path, f"source: needs organisation, kind in {sorted(_SOURCE_KINDS)}, optional url")
    columns = {k: str(v) for k, v in (doc.get("columns") or {}).items() if v is not None}
    constants = {k: str(v) for k, v in (doc.get("constants") or {}).items() if v is not None}
    unknown = (set(columns) | set(constants)) - set(FIELDS)
    missing = [f for f in REQUIRED if f not in columns and f not in constants]
    if unknown or missing or ("county" not in columns and "county" not in constants):
        raise _bad(path, f"columns/constants: unknown {sorted(unknown)}, missing {missing or ['county']}")
    methods = {str(k): str(v) for k, v in (doc.get("methods") or {}).items()}
    if set(methods.values()) - _METHOD_SYMBOLS:
        raise _bad(path, f"methods: symbols must be among {sorted(_METHOD_SYMBOLS)}")
    status = str(doc.get("status") or "UNKNOWN")
    if status not in ("PRELIMINARY", "FINAL", "UNKNOWN"):
        raise _bad(path, "status: PRELIMINARY, FINAL or UNKNOWN")
    return Mapping(oe.FileName(state, day, etype, None, None), dict(source), status, columns, constants, methods)


def read(path: Path, mapping: Mapping) -> oe.ReadResult:
    """The rows of one mapped CSV, as :func:`pipelines.ingest.openelections.read` gives an OpenElections file's."""
    text, bad_lines = oe._decode(path.read_bytes())
    result = oe.ReadResult(path, mapping.name, [], list(mapping.methods), [], [])
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    header = [h.strip() for h in next(reader, [])]
    result.columns = header
    index = {h: i for i, h in reversed(list(enumerate(header)))}
    wanted = list(mapping.columns.items()) + [(c, c) for c in mapping.methods]
    missing = [(f, c) for f, c in wanted if c not in index]
    if missing or 1 in bad_lines:
        result.rejections += [oe.Rejection(1, f, f"column {c!r} missing from the header") for f, c in missing]
        result.rejections += [oe.Rejection(1, None, "header is not valid UTF-8")] if 1 in bad_lines else []
        return result
    for line, record in oe.records(reader, result):
        row = _row(line, record, index, mapping, bad_lines, reader.line_num)
        if isinstance(row, oe.Row):
            result.rows.append(row)
        else:
            result.rejections += row
    return result


def _row(line: int, record: list[str], index: dict[str, int], mapping: Mapping, bad_lines: set[int],
         last: int) -> oe.Row | list[oe.Rejection]:
    if any(n in bad_lines for n in range(line, last + 1)):
        return [oe.Rejection(line, None, "not valid UTF-8")]
    if len(record) != len(index) and len(record) < max(index.values()) + 1:
        return [oe.Rejection(line, None, f"{len(record)} fields where the header has {max(index.values()) + 1}")]

    def get(f: str) -> str | None:
        if f in mapping.columns:
            cell = record[index[mapping.columns[f]]].strip()
            return cell or None
        return mapping.constants.get(f)

    problems, counts = [], {}
    try:
        votes = oe.parse_count(get("votes"))
    except ValueError as e:
        votes, problems = None, [oe.Rejection(line, "votes", str(e))]
    for column in mapping.methods:
        try:
            counts[column] = oe.parse_count(record[index[column]])
        except ValueError as e:
            problems.append(oe.Rejection(line, column, str(e)))
    office = get("office")
    if office is None:
        problems.append(oe.Rejection(line, "office", "empty office"))
    if problems or office is None:
        return problems
    candidate = get("candidate")
    name = mapping.name
    return oe.Row(state=name.state, date=name.date, election_type=name.election_type, county=get("county"),
                  precinct=get("precinct"), office=office, district=get("district"), party=get("party"),
                  candidate=candidate, votes=votes, methods=counts, line=line, kind=oe.classify(office, candidate),
                  extra={f: get(f) for f in ("votes_allowed", "number_elected")})
