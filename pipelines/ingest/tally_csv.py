"""Station tallies as CSV: one row per station x candidate; consecutive rows of one station (and contest) are one
event.

The CSV format has no ``synthetic`` column, so a tally whose source kind is ``GENERATOR`` is marked
synthetic (a generator is by definition not a real source). An optional last column, ``contest_id``, names the
contest counted (empty: the election's default contest); empty figure and ``municipality_id`` cells are
unknown (null), never 0. Errors name the CSV line of the offending row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from pipelines.contract import reasons
from pipelines.contract.topics import TopicSpec
from pipelines.errors import InputError
from pipelines.ingest.convert import to_avro
from pipelines.ingest.lines import encoding_error, split_lines_keepends
from pipelines.ingest.records import DEFAULT_LIMITS, RAW_HEAD_CHARS, Limits, Parsed, Rejected, head, route

TALLY_COLUMNS: tuple[str, ...] = (
    "election_id", "station_id", "municipality_id", "status", "registered_voters", "ballots_cast",
    "valid_ballots", "invalid_ballots", "candidate_id", "votes", "occurred_at", "source_organisation",
    "source_kind", "source_url",
)
CONTEST_COLUMN = "contest_id"
# The header of a CSV whose tallies name their contest (the optional column comes last).
TALLY_COLUMNS_WITH_CONTEST: tuple[str, ...] = (*TALLY_COLUMNS, CONTEST_COLUMN)
RECORD_TYPE = "StationTally"
GENERATOR_KIND = "GENERATOR"
_STATION_COLUMNS = tuple(c for c in TALLY_COLUMNS_WITH_CONTEST if c not in ("candidate_id", "votes"))
_INT_COLUMNS = ("registered_voters", "ballots_cast", "valid_ballots", "invalid_ballots")
# Text columns whose empty cell means "not given" (null).
_NULLABLE_TEXT = ("municipality_id", CONTEST_COLUMN)
_CANDIDATE, _VOTES = TALLY_COLUMNS.index("candidate_id"), TALLY_COLUMNS.index("votes")
_CONTEST = len(TALLY_COLUMNS)  # index of the optional contest_id column


def _int(text: str, field: str) -> int | str:
    # Leave non-numbers as text: the converter then reports wrong_type with the right path.
    try:
        return int(text)
    except ValueError:
        return text


def _figure(text: str, field: str) -> int | str | None:
    # An empty cell is a figure the source did not publish: null, never 0 (docs/contests.md, rule 1).
    return None if text == "" else _int(text, field)


def rows_to_tally(rows: list[list[str]], columns: tuple[str, ...] = TALLY_COLUMNS) -> dict[str, Any]:
    """The plain-JSON StationTally of one station's rows (all rows already have every one of ``columns``)."""
    first = dict(zip(columns, rows[0]))
    obj: dict[str, Any] = {c: first[c] for c in ("election_id", "station_id", "status")}
    for column in _NULLABLE_TEXT:
        if column in first:
            obj[column] = first[column] or None
    for column in _INT_COLUMNS:
        obj[column] = _figure(first[column], column)
    try:
        obj["votes"] = [{"candidate_id": r[_CANDIDATE], "votes": int(r[_VOTES])} for r in rows]
    except ValueError:
        obj["votes"] = [{"candidate_id": r[_CANDIDATE], "votes": _int(r[_VOTES], "votes")} for r in rows]
    obj["occurred_at"] = first["occurred_at"]
    obj["source"] = {"organisation": first["source_organisation"], "kind": first["source_kind"],
                     "url": first["source_url"] or None}
    obj["synthetic"] = first["source_kind"] == GENERATOR_KIND
    return obj


Problem = tuple[str, str, str | None]  # reason code, reason, field


def _check_rows(rows: list[list[str]], lines: list[int], problems: list[Problem | None],
                columns: tuple[str, ...]) -> tuple[int, InputError] | None:
    """The first problem of a station's rows: one found reading a row (bytes, size, quoting), a wrong column
    count, or a station column that varies."""
    for line, problem in zip(lines, problems):
        if problem is not None:
            return line, InputError(problem[0], problem[1], field=problem[2])
    first, n = rows[0], len(columns)
    head, tail = first[:_CANDIDATE], first[_VOTES + 1 :]
    for row, line in zip(rows, lines):
        if len(row) != n:
            return line, InputError(reasons.MALFORMED_CSV, f"line {line}: expected {n} columns, got {len(row)}")
        if row[:_CANDIDATE] != head or row[_VOTES + 1 :] != tail:
            column = next(c for i, c in enumerate(columns) if c in _STATION_COLUMNS and row[i] != first[i])
            return line, InputError(reasons.MALFORMED_CSV, f"{column}: differs from the station's first row",
                                    field=column)
    return None


def _finish(file: str, rows: list[list[str]], lines: list[int], raws: list[str], problems: list[Problem | None],
            kind: str | None, topic: TopicSpec | None, limits: Limits, columns: tuple[str, ...]) -> Parsed | Rejected:
    raw = "\n".join(raws)
    problem = _check_rows(rows, lines, problems, columns)
    if problem is None and len(raw) > limits.max_record_bytes // 4 and len(raw.encode()) > limits.max_record_bytes:
        problem = lines[0], InputError(reasons.RECORD_TOO_LARGE, f"station rows longer than "
                                       f"{limits.max_record_bytes} bytes (BALLOTSTREAM_INGEST_MAX_RECORD_BYTES)")
    if problem is not None:
        line, exc = problem
        if exc.reason_code == reasons.RECORD_TOO_LARGE:
            raw = head(raw)
        return Rejected(file, line, raw, exc.reason_code, exc.reason, exc.field, kind)
    try:
        value = to_avro(RECORD_TYPE, rows_to_tally(rows, columns))
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
    """The fields of one line (without its end); lenient, for a row's station key and the header."""
    # Generated and most exported tallies have no quotes: str.split is ~10x faster than csv for those.
    if '"' in text:
        return next(csv.reader([text]), [])
    return text.split(",") if text else []


def header_columns(header: str) -> tuple[str, ...] | None:
    """The columns a CSV header (first line, without its line end) declares: :data:`TALLY_COLUMNS` or
    :data:`TALLY_COLUMNS_WITH_CONTEST`; None for any other header."""
    found = tuple(h.strip() for h in split_row(header))
    return found if found in (TALLY_COLUMNS, TALLY_COLUMNS_WITH_CONTEST) else None


def check_header(file: str, header: str, kind: str | None) -> Rejected | None:
    """The rejection of a CSV whose header is not one :func:`header_columns` accepts."""
    if header_columns(header) is not None:
        return None
    return Rejected(file, 1, header, reasons.MALFORMED_CSV, f"header: expected {','.join(TALLY_COLUMNS)} "
                    f"(and optionally ,{CONTEST_COLUMN})", "header", kind)


def _rows(data: bytes, start: int, limits: Limits) -> Iterator[tuple[int, str, list[str], Problem | None]]:
    """The CSV rows (RFC 4180) of ``data``: (first line, raw text, fields, problem or None).

    A quoted field may hold line ends, so a row may span lines; its line is its first. A row that is not
    UTF-8, longer than the record limit or badly quoted (an unclosed quote, text after a closing quote) comes
    with its problem and the fields of its first line as well as they can be read, so it still joins its
    station (which is then rejected as a whole); reading goes on at the line after the row's first.
    """
    max_bytes = limits.max_record_bytes
    lines = split_lines_keepends(data)
    n, i = len(lines), 0
    while i < n:
        line_bytes, line = lines[i], start + i
        if len(line_bytes) > max_bytes:
            text = line_bytes[: RAW_HEAD_CHARS * 4].decode("utf-8", "replace")
            yield line, head(text), split_row(text.rstrip("\r\n")), (
                reasons.RECORD_TOO_LARGE, f"line {line}: longer than {max_bytes} bytes "
                "(BALLOTSTREAM_INGEST_MAX_RECORD_BYTES)", None)
            i += 1
            continue
        try:
            text = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = encoding_error("", line, line_bytes.rstrip(b"\r\n"), exc, None)
            yield line, bad.raw, split_row(line_bytes.decode("utf-8", "replace").rstrip("\r\n")), (
                bad.reason_code, bad.reason, None)
            i += 1
            continue
        if '"' not in text:
            raw = text.rstrip("\r\n")
            yield line, raw, raw.split(",") if raw else [], None
            i += 1
            continue
        row, end, problem = _quoted_row(lines, i, start, max_bytes)
        if row is None:
            raw = text.rstrip("\r\n")
            yield line, raw, split_row(raw), problem
            i += 1
            continue
        yield line, "".join(lines[j].decode("utf-8") for j in range(i, end)).rstrip("\r\n"), row, None
        i = end


def _quoted_row(lines: list[bytes], i: int, start: int, max_bytes: int) -> tuple[list[str] | None, int, Problem]:
    """The row starting at ``lines[i]`` read by the csv module, which lets a quoted field span lines: (fields,
    the index of the line after the row, _) or (None, _, the problem)."""
    stop: list[str] = []
    end = i

    def feed() -> Iterator[str]:
        nonlocal end
        size = 0
        while end < len(lines):
            part = lines[end]
            size += len(part)
            if size > max_bytes:
                stop.append(f"still open after {max_bytes} bytes (BALLOTSTREAM_INGEST_MAX_RECORD_BYTES)")
                return
            try:
                decoded = part.decode("utf-8")
            except UnicodeDecodeError:
                stop.append(f"still open at line {start + end}, which is not UTF-8")
                return
            end += 1
            yield decoded

    try:
        return next(csv.reader(feed(), strict=True)), end, (reasons.MALFORMED_CSV, "", None)
    except csv.Error as exc:
        # An unclosed quote runs on over the rows below: reject this row and read on at the next line.
        why = f"a quoted field is {stop[0]}: an unclosed quote?" if stop else str(exc)
        return None, end, (reasons.MALFORMED_CSV, f"line {start + i}: {why}", None)


def csv_items(file: str, data: bytes, start: int, kind: str | None, topic: TopicSpec | None,
              limits: Limits = DEFAULT_LIMITS, columns: tuple[str, ...] = TALLY_COLUMNS) -> Iterator[Parsed | Rejected]:
    """Tallies of CSV bytes after the header; ``start`` is the file line number of the first row, ``columns``
    what the header declared.

    A chunk of a file must hold whole stations (see :mod:`pipelines.ingest.chunks`): a station's rows are
    grouped only within one call. With a contest column, consecutive rows of one station but another contest
    start a new tally.
    """
    n = len(columns)
    contest = _CONTEST if CONTEST_COLUMN in columns else None
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    raws: list[str] = []
    problems: list[Problem | None] = []
    station: list[str] | None = None
    for line, raw, row, problem in _rows(data, start, limits):
        if not row:
            continue
        if len(row) < 2:
            # Cannot tell which station this row belongs to: reject it alone.
            code, reason, field = problem or (reasons.MALFORMED_CSV,
                                              f"line {line}: expected {n} columns, got {len(row)}", None)
            yield Rejected(file, line, raw, code, reason, field, kind)
            continue
        if rows and (row[1] != station[1] or row[0] != station[0]  # type: ignore[index]
                     or (contest is not None and _cell(row, contest) != _cell(station, contest))):  # type: ignore[arg-type]
            yield _finish(file, rows, line_numbers, raws, problems, kind, topic, limits, columns)
            rows, line_numbers, raws, problems = [], [], [], []
        station = row
        rows.append(row)
        line_numbers.append(line)
        raws.append(raw)
        problems.append(problem)
    if rows:
        yield _finish(file, rows, line_numbers, raws, problems, kind, topic, limits, columns)


def _cell(row: list[str], index: int) -> str | None:
    # A short row has no such cell; _check_rows rejects it with its column count.
    return row[index] if index < len(row) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def tally_rows(value: dict[str, Any], occurred_at: str, columns: tuple[str, ...] = TALLY_COLUMNS) -> list[list[str]]:
    """The CSV rows of a StationTally (``occurred_at`` as its ISO text) for a file with ``columns``, the inverse
    of :func:`rows_to_tally` (null figures and ids become empty cells)."""
    source = value["source"]
    head = [value["election_id"], value["station_id"], _text(value.get("municipality_id")), value["status"],
            *(_text(value.get(c)) for c in _INT_COLUMNS)]
    tail = [occurred_at, source["organisation"], source["kind"], source["url"] or ""]
    if CONTEST_COLUMN in columns:
        tail.append(_text(value.get(CONTEST_COLUMN)))
    return [[*head, v["candidate_id"], str(v["votes"]), *tail] for v in value["votes"]]
