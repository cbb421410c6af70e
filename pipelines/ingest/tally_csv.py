"""Station tallies as CSV: one row per station x candidate; consecutive rows of one station are one event.

The CSV format has no ``synthetic`` column, so a tally whose source kind is ``GENERATOR`` is marked
synthetic (a generator is by definition not a real source). Errors name the CSV line of the offending row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipelines.contract import reasons
from pipelines.contract.topics import TopicSpec
from pipelines.errors import InputError
from pipelines.ingest.convert import to_avro
from pipelines.ingest.records import Parsed, Rejected, route

TALLY_COLUMNS: tuple[str, ...] = (
    "election_id", "station_id", "municipality_id", "status", "registered_voters", "ballots_cast",
    "valid_ballots", "invalid_ballots", "candidate_id", "votes", "occurred_at", "source_organisation",
    "source_kind", "source_url",
)
RECORD_TYPE = "StationTally"
GENERATOR_KIND = "GENERATOR"
_STATION_COLUMNS = tuple(c for c in TALLY_COLUMNS if c not in ("candidate_id", "votes"))
_INT_COLUMNS = ("registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots")
_N = len(TALLY_COLUMNS)
_CANDIDATE, _VOTES = TALLY_COLUMNS.index("candidate_id"), TALLY_COLUMNS.index("votes")


def _int(text: str, field: str) -> int | str:
    # Leave non-numbers as text: the converter then reports wrong_type with the right path.
    try:
        return int(text)
    except ValueError:
        return text


def rows_to_tally(rows: list[list[str]]) -> dict[str, Any]:
    """The plain-JSON StationTally of one station's rows (all rows already have every column)."""
    first = dict(zip(TALLY_COLUMNS, rows[0]))
    obj: dict[str, Any] = {c: first[c] for c in ("election_id", "station_id", "municipality_id", "status")}
    for column in _INT_COLUMNS:
        obj[column] = _int(first[column], column)
    try:
        obj["votes"] = [{"candidate_id": r[_CANDIDATE], "votes": int(r[_VOTES])} for r in rows]
    except ValueError:
        obj["votes"] = [{"candidate_id": r[_CANDIDATE], "votes": _int(r[_VOTES], "votes")} for r in rows]
    obj["occurred_at"] = first["occurred_at"]
    obj["source"] = {"organisation": first["source_organisation"], "kind": first["source_kind"],
                     "url": first["source_url"] or None}
    obj["synthetic"] = first["source_kind"] == GENERATOR_KIND
    return obj


def _check_rows(rows: list[list[str]], lines: list[int]) -> tuple[int, InputError] | None:
    """The first structural problem of a station's rows: wrong column count or a station column that varies."""
    first = rows[0]
    head, tail = first[:_CANDIDATE], first[_VOTES + 1 :]
    for row, line in zip(rows, lines):
        if len(row) != _N:
            return line, InputError(reasons.MALFORMED_CSV, f"line {line}: expected {_N} columns, got {len(row)}")
        if row[:_CANDIDATE] != head or row[_VOTES + 1 :] != tail:
            column = next(c for i, c in enumerate(TALLY_COLUMNS) if c in _STATION_COLUMNS and row[i] != first[i])
            return line, InputError(reasons.MALFORMED_CSV, f"{column}: differs from the station's first row",
                                    field=column)
    return None


def _finish(file: str, rows: list[list[str]], lines: list[int], raws: list[str], kind: str | None,
            topic: TopicSpec | None) -> Parsed | Rejected:
    raw = "\n".join(raws)
    problem = _check_rows(rows, lines)
    if problem is not None:
        line, exc = problem
        return Rejected(file, line, raw, exc.reason_code, exc.reason, exc.field, kind)
    try:
        value = to_avro(RECORD_TYPE, rows_to_tally(rows))
    except InputError as exc:
        line = lines[0]
        if exc.field and exc.field.startswith("votes["):
            line = lines[int(exc.field[6 : exc.field.index("]")])]  # the row of that candidate
        return Rejected(file, line, raw, exc.reason_code, exc.reason, exc.field, kind)
    topic_name, key = route(RECORD_TYPE, value)
    if topic is not None and topic.name != topic_name:
        return Rejected(file, lines[0], raw, reasons.WRONG_KIND,
                        f"type: StationTally goes to {topic_name}, not to {kind} input", "type", kind)
    return Parsed(file, lines[0], raw, RECORD_TYPE, topic_name, key, value)


def split_row(text: str) -> list[str]:
    # Generated and most exported tallies have no quotes: str.split is ~10x faster than csv for those.
    if '"' in text:
        return next(csv.reader([text]), [])
    return text.split(",") if text else []


def read_csv(path: Path, kind: str | None, topic: TopicSpec | None) -> Iterator[Parsed | Rejected]:
    """Read a tally CSV; see the module docstring. Yields one result per station (or per unusable row).

    Rows may not span lines (a quoted newline makes the row malformed), so line numbers are exact.
    """
    file = str(path)
    with path.open(encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n")
        if not header:
            return
        bad = check_header(file, header, kind)
        if bad is not None:
            yield bad
            return
        yield from csv_items(file, handle, 2, kind, topic)


def check_header(file: str, header: str, kind: str | None) -> Rejected | None:
    """The rejection of a CSV whose header (first line, without its line end) is not :data:`TALLY_COLUMNS`."""
    if tuple(h.strip() for h in split_row(header)) == TALLY_COLUMNS:
        return None
    return Rejected(file, 1, header, reasons.MALFORMED_CSV, f"header: expected {','.join(TALLY_COLUMNS)}",
                    "header", kind)


def csv_items(file: str, lines: Iterable[str], start: int, kind: str | None,
              topic: TopicSpec | None) -> Iterator[Parsed | Rejected]:
    """Tallies of CSV rows after the header; ``start`` is the file line number of the first row.

    A chunk of a file must hold whole stations (see :mod:`pipelines.ingest.chunks`): a station's rows are
    grouped only within one call.
    """
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    raws: list[str] = []
    station: list[str] | None = None
    for line, text in enumerate(lines, start):
        raw = text.rstrip("\r\n")
        row = split_row(raw)
        if not row:
            continue
        if len(row) < 2:
            # Cannot tell which station this row belongs to: reject it alone.
            yield Rejected(file, line, raw, reasons.MALFORMED_CSV,
                           f"line {line}: expected {_N} columns, got {len(row)}", None, kind)
            continue
        if rows and (row[1] != station[1] or row[0] != station[0]):  # type: ignore[index]
            yield _finish(file, rows, line_numbers, raws, kind, topic)
            rows, line_numbers, raws = [], [], []
        station = row
        rows.append(row)
        line_numbers.append(line)
        raws.append(raw)
    if rows:
        yield _finish(file, rows, line_numbers, raws, kind, topic)


def tally_rows(value: dict[str, Any], occurred_at: str) -> list[list[str]]:
    """The CSV rows of a StationTally (``occurred_at`` as its ISO text), the inverse of :func:`rows_to_tally`."""
    source = value["source"]
    head = [value["election_id"], value["station_id"], value["municipality_id"], value["status"],
            str(value["registered_voters"]), str(value["ballots_cast"]), str(value["valid_ballots"]),
            str(value["invalid_ballots"])]
    tail = [occurred_at, source["organisation"], source["kind"], source["url"] or ""]
    return [[*head, v["candidate_id"], str(v["votes"]), *tail] for v in value["votes"]]
