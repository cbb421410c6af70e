"""NIST SP 1500-100 v2 JSON (``ElectionReport``) of one election, built from a release's contest tables.

What goes where (docs/contests.md, "Export"): every division becomes a ``ReportingUnit`` whose
``ComposingGpUnitIds`` are the divisions naming it as ``parent_id`` or in ``member_of``; each contest becomes a
Candidate/Party/BallotMeasure/RetentionContest with one ``BallotSelection`` per selection and ``VoteCounts`` per
station and division (``total`` and each vote method a tally reported); over/under votes and write-ins become
``OtherCounts``. A figure the tables hold as null is left out, never written as 0.

Ids are Ballotstream's own (division, party, candidate and contest ids are already unique and stable); objects
that have no id of their own get ``<owner id>#<role>``. Every list is sorted, so one release always gives the
same document (``generated_at`` is the release's time, passed in).

The document is written as JSON text directly, a column at a time (``cdf_json``): a million-station election has
hundreds of thousands of counts, which as Python objects took 15 s to build and 13 s to serialise. It is
compact (no indentation, keys sorted) and published gzip-compressed (``release_documents``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.release import cdf_json as js
from pipelines.release import cdf_vocab as v
from pipelines.release.parquet import StagedFile, read_staged
from pipelines.release.store import Blob, Carried

log = logging.getLogger(__name__)

FOLDER = "cdf"
FORMAT = "NIST SP 1500-100 v2 JSON ElectionReport"
MEDIA_TYPE = "application/gzip"
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
# and a document of every station × selection of a large election would be gigabytes.
STATION_LEVEL_MAX_ROWS = 250_000
STATION_KINDS = frozenset({"POLLING_STATION", "PRECINCT"})
STATION, CONTEST = "station", "contest"  # contest_results levels (the third, "division", needs no name here)
OTHER_COUNTS = {"overvotes": "Overvotes", "undervotes": "Undervotes", "write_ins": "WriteIns"}
# The columns the export reads of each table (the trace columns and the rest are never read).
COLUMNS: dict[str, tuple[str, ...]] = {
    ELECTIONS: ("election_id", "name", "date", "kind", "country"),
    DIVISIONS: ("division_id", "name", "kind", "parent_id", "election_id", "label", "member_of"),
    PARTIES: ("party_id", "name", "abbreviation"),
    CANDIDATES: ("candidate_id", "election_id", "name", "party_id", "gender"),
    CONTESTS: ("contest_id", "election_id", "name", "kind", "office", "district_id", "number_elected",
               "votes_allowed"),
    SELECTIONS: ("contest_id", "selection_id", "kind", "label", "candidate_id", "party_id", "running_mates"),
    # A contest's results are its election's: rows are picked by contest, their election_id is not read.
    RESULTS: ("contest_id", "selection_id", "selection_kind", "level", "unit_id", "votes", *v.METHOD_TYPES),
    SUMMARY: ("election_id", "contest_id", "stations_reporting", "stations_expected", *OTHER_COUNTS),
    STATION_TURNOUT: ("election_id", "contest_id", "station_id", "registered_voters", "ballots_cast",
                      *OTHER_COUNTS),
}
TABLES = tuple(COLUMNS)
PRECINCT_FORMAT, SUMMARY_FORMAT = "precinct-level", "summary-contest"
# gzip level 1: a million-station document (200 MB of JSON) compresses to 9 MB in 0.4 s; level 6 saves another
# 1.5 MB for 0.5 s more.
GZIP_LEVEL = 1

Row = dict[str, Any]


def document_key(election_id: str) -> str:
    """Where the election's document sits in a release folder."""
    return f"{FOLDER}/{election_id}.json.gz"


@dataclass(frozen=True)
class ExportTables:
    """The tables as the documents use them, and the NIST ``Format`` that follows from their size.

    ``inputs`` (staged tables only) names what the documents are built from: the export's code and each table's
    sha256. Two releases with the same ``inputs`` have the same documents but for ``GeneratedDate``.
    """

    tables: Mapping[str, pa.Table]
    format: str
    inputs: str | None = None


def _export_version() -> str | None:
    """The digest of the export's code (this module and what it builds with), or None without its source."""
    digest = hashlib.sha256()
    try:
        for module in (__file__, js.__file__, v.__file__):
            digest.update(Path(module).read_bytes())
    except (OSError, TypeError):
        return None  # no source to tell versions apart: never carry a document over
    return digest.hexdigest()


EXPORT_VERSION = _export_version()


def at_reporting_level(tables: Mapping[str, pa.Table]) -> ExportTables:
    """Everything when the station rows fit (``STATION_LEVEL_MAX_ROWS``), else the tables without station rows,
    station figures and station units."""
    results = tables.get(RESULTS)
    if results is None or "level" not in results.column_names:
        return ExportTables(tables, PRECINCT_FORMAT)
    at_station = pc.equal(results["level"], STATION)
    if (pc.sum(at_station).as_py() or 0) <= STATION_LEVEL_MAX_ROWS:
        return ExportTables(tables, PRECINCT_FORMAT)
    out = dict(tables)
    out[RESULTS] = results.filter(pc.invert(at_station))
    out.pop(STATION_TURNOUT, None)
    if DIVISIONS in tables:
        out[DIVISIONS] = _without_stations(tables[DIVISIONS])
    return ExportTables(out, SUMMARY_FORMAT)


def export_inputs(files: Mapping[str, StagedFile]) -> str | None:
    """What a release's documents are built from, as one digest: the export's code and settings, and the sha256
    of each staged table it reads (``ExportTables.inputs``); None when the code cannot be told apart."""
    if EXPORT_VERSION is None:
        return None
    lines = [f"{EXPORT_VERSION} {STATION_LEVEL_MAX_ROWS} {GZIP_LEVEL}\n",
             *(f"{n} {files[n].sha256}\n" for n in TABLES if n in files)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _read(files: Mapping[str, StagedFile], name: str, condition: pc.Expression | None = None) -> pa.Table:
    """A staged table's ``COLUMNS`` (those it has), and only the rows ``condition`` keeps."""
    present = set(pq.read_schema(files[name].paths()[0]).names)
    return read_staged(files[name], [c for c in COLUMNS[name] if c in present], condition)


def read_export_tables(files: Mapping[str, StagedFile]) -> ExportTables:
    """``at_reporting_level`` of a release's staged tables, reading only what the documents use: the columns of
    ``COLUMNS``, and for a large election no station rows at all (a million stations' contest_results are
    13 million rows; their count comes from the file's row count, not from reading them)."""
    tables = {n: _read(files, n) for n in TABLES if n in files and n not in (RESULTS, STATION_TURNOUT)}
    results = files.get(RESULTS)
    if results is not None and "level" in pq.read_schema(results.paths()[0]).names:
        above = _read(files, RESULTS, pc.field("level") != STATION)
        if results.rows - above.num_rows > STATION_LEVEL_MAX_ROWS:
            tables[RESULTS] = above
            if DIVISIONS in tables:
                # Read whole and filtered here: a filtered read of a million string rows took three times longer.
                tables[DIVISIONS] = _without_stations(tables[DIVISIONS])
            return ExportTables(tables, SUMMARY_FORMAT, export_inputs(files))
    tables.update({n: _read(files, n) for n in (RESULTS, STATION_TURNOUT) if n in files})
    return ExportTables(tables, PRECINCT_FORMAT, export_inputs(files))


def _without_stations(divisions: pa.Table) -> pa.Table:
    return divisions.filter(pc.invert(pc.is_in(divisions["kind"], pa.array(sorted(STATION_KINDS)))))


# --- small helpers ------------------------------------------------------------------------------------------------

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_NONE = pa.scalar(None, js.TEXT)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _text(content: str) -> dict[str, Any]:
    return {"@type": "ElectionResults.InternationalizedText",
            "Text": [{"@type": "ElectionResults.LanguageString", "Content": content, "Language": LANGUAGE}]}


def _column(table: pa.Table, name: str, type_: pa.DataType = js.TEXT) -> pa.Array:
    """A column as one plain array (all nulls when the table lacks it)."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, type_)
    column = table[name]
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or \
            pa.types.is_dictionary(column.type):
        return js.plain(column)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _truthy(values: pa.Array) -> pa.Array:
    """Non-null and non-empty (what ``if value`` meant for the tables' strings)."""
    return pc.and_(values.is_valid(), pc.not_equal(pc.binary_length(values.fill_null("")), 0))


def _of_election(table: pa.Table | None, election_id: str, *, unassigned: bool = False) -> pa.Table | None:
    """The rows of ``election_id`` (and, with ``unassigned``, rows of no election) when the table says."""
    if table is None or "election_id" not in table.column_names:
        return table
    column = _column(table, "election_id")
    keep = pc.equal(column, election_id).fill_null(False)
    if unassigned:
        keep = pc.or_(keep, column.is_null())
    return table.filter(keep)


def _last_per_key(table: pa.Table, key: str) -> pa.Table:
    """One row per ``key``, the table's last (as a dict keyed by it kept), sorted by key."""
    order = np.arange(table.num_rows)[::-1]
    indexed = table.take(pa.array(order))
    indexed = indexed.set_column(indexed.column_names.index(key), key, _column(indexed, key))
    # Stable: of equal keys, the latest row comes first.
    ordered = indexed.take(pc.sort_indices(indexed, sort_keys=[(key, "ascending")]))
    return ordered.take(pa.array(js.runs(ordered[key].combine_chunks())[:-1]))


def _lookup(keys: pa.Array, table_keys: pa.Array, values: pa.Array) -> pa.Array:
    """``values`` of ``table_keys`` at each of ``keys`` (null where absent)."""
    return pc.take(values, pc.index_in(keys, value_set=table_keys))


def _pairs(*columns: pa.Array) -> pa.Array:
    """One string per row joining the columns (a compound key for ``is_in``)."""
    return pc.binary_join_element_wise(*[c.cast(js.TEXT).fill_null("\x00") for c in columns],
                                       pa.scalar("\x1f", js.TEXT))


def _starts(*keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts in rows sorted by them, and the row count at the end."""
    n = len(keys[0])
    change = np.zeros(n, bool)
    if n:
        change[0] = True
        for key in keys:
            change[1:] |= key[1:] != key[:-1]
    return np.append(np.flatnonzero(change), n)


def _code(values: pa.Array, value: str) -> int:
    """The code of ``value`` among ``ranked`` values (-2, matching no row, when absent)."""
    found = pc.index(values, value).as_py()
    return -2 if found < 0 else found


class _Results:
    """The election's contest_results rows as numpy: each id column as codes (``cdf_json.ranked``: sorting or
    grouping codes is sorting or grouping the ids), each count as (known, value). A million-station summary has
    900,000 rows; nothing here decodes their dictionary-encoded ids."""

    IDS = ("contest_id", "selection_id", "unit_id", "level", "selection_kind")

    def __init__(self, table: pa.Table | None, contest_ids: pa.Array):
        table = table if table is not None else pa.table({"contest_id": pa.array([], js.TEXT)})
        self.ids: dict[str, tuple[np.ndarray, pa.Array]] = {
            name: js.ranked(table[name]) if name in table.column_names else
            (np.full(table.num_rows, -1), pa.array([], js.TEXT)) for name in self.IDS}
        contest, values = self.ids["contest_id"]
        # The election's rows: those of its contests.
        keep = np.append(pc.is_in(values, value_set=contest_ids).to_numpy(zero_copy_only=False), False)[contest]
        self.ids = {name: (codes[keep], values) for name, (codes, values) in self.ids.items()}
        self.figures = {}
        for column in ("votes", *v.METHOD_TYPES):
            if column in table.column_names:
                self.figures[column] = (table[column].is_valid().to_numpy(zero_copy_only=False)[keep],
                                        table[column].fill_null(0).to_numpy().astype(np.int64)[keep])
            else:
                self.figures[column] = (np.zeros(int(keep.sum()), bool), np.zeros(int(keep.sum()), np.int64))
        self.rows = int(keep.sum())


class _Report:
    """One election's tables, filtered to what its document holds, and what the parts of it collect."""

    def __init__(self, export: ExportTables, election: Row):
        tables = export.tables
        eid = election["election_id"]
        self.scope = f"ocd-division/country:{election['country']}"
        contests = _of_election(tables.get(CONTESTS), eid)
        self.contests = sorted(contests.select([c for c in COLUMNS[CONTESTS] if c in contests.column_names])
                               .to_pylist(), key=lambda r: r["contest_id"])
        self.contest_ids = pa.array([c["contest_id"] for c in self.contests], js.TEXT)
        self.districts = pa.array([c.get("district_id") or self.scope for c in self.contests], js.TEXT)
        summary = _of_election(tables.get(SUMMARY), eid)
        self.summary = {} if summary is None else {r["contest_id"]: r for r in summary.to_pylist()}
        self.results = _Results(tables.get(RESULTS), self.contest_ids)
        declared = tables.get(SELECTIONS)
        self.declared = None if declared is None else declared.filter(
            pc.is_in(_column(declared, "contest_id"), value_set=self.contest_ids))
        turnout = _of_election(tables.get(STATION_TURNOUT), eid)
        self.turnout = turnout if turnout is not None and "contest_id" in turnout.column_names else None
        divisions = _of_election(tables.get(DIVISIONS), eid, unassigned=True)
        self.divisions = None if divisions is None else _last_per_key(divisions, "division_id")
        candidates = _of_election(tables.get(CANDIDATES), eid)
        self.candidates = None if candidates is None else _last_per_key(candidates, "candidate_id")
        parties = tables.get(PARTIES)
        self.parties = {} if parties is None else {r["party_id"]: r for r in parties.to_pylist()}
        # Units results name without declaring them: the ids at station level, and those at any other.
        self.stations_named: list[pa.Array] = []
        self.units_named: list[pa.Array] = [self.districts]
        self.party_refs: list[pa.Array] = []
        self.labels: list[pa.Table] = []  # (person, label, rank): a selection's ballot label for each person
        self.offices: list[tuple[str, str]] = []  # (id, JSON)
        self.notes: list[str] = []


# --- counts -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Counts:
    """VoteCounts JSON, grouped by selection: ``items`` (each but a group's first led by a comma) in runs
    beginning at ``starts``, one run per (``contest_id``, ``selection_id``)."""

    contest_id: pa.Array
    selection_id: pa.Array
    starts: np.ndarray
    items: pa.Array


def _vote_counts(report: _Report) -> _Counts:
    """Every selection's VoteCounts.

    Each station and division row gives its unit's counts; the contest row gives the district's, unless a row of
    the district itself already did. Of two rows for one unit the contest row wins, then the station row.
    """
    r = report.results
    c, contests = r.ids["contest_id"]
    s, selections = r.ids["selection_id"]
    u0, units = r.ids["unit_id"]
    lv, levels = r.ids["level"]
    is_contest, at_station = (lv == _code(levels, CONTEST)), (lv == _code(levels, STATION))
    at_unit = ~is_contest & (u0 >= 0)
    report.stations_named.append(units.take(pa.array(np.unique(u0[at_unit & at_station]))))
    report.units_named.append(units.take(pa.array(np.unique(u0[at_unit & ~at_station]))))
    # One code space for the units the rows name and the contests' districts.
    districts = _lookup(contests, report.contest_ids, report.districts)
    all_units = pc.unique(pa.concat_arrays([units, districts]))
    all_units = all_units.take(pc.sort_indices(all_units))
    u = np.append(pc.index_in(units, value_set=all_units).to_numpy(), -1)[u0]
    d = pc.index_in(districts, value_set=all_units).to_numpy()[c] if len(c) else np.zeros(0, np.int64)
    votes_known, _ = r.figures["votes"]
    pair = c * (len(selections) + 1) + s
    covered = np.isin(pair, pair[at_unit & (u == d) & votes_known])
    usable = ~(is_contest & covered) & (is_contest | (u >= 0))
    unit = np.where(is_contest, d, u)
    priority = np.where(is_contest, 2, np.where(at_station, 1, 0))
    parts: list[tuple[np.ndarray, ...]] = []
    for order, column in enumerate(["votes", *v.METHOD_TYPES]):
        known, count = r.figures[column]
        keep = known & usable
        parts.append((c[keep], s[keep], unit[keep], np.full(int(keep.sum()), order), priority[keep], count[keep]))
    c, s, unit, order, priority, count = (np.concatenate(p) for p in zip(*parts, strict=True))
    sort = np.lexsort((-priority, order, unit, s, c))
    c, s, unit, order, count = c[sort], s[sort], unit[sort], order[sort], count[sort]
    first = _starts(c, s, unit, order)[:-1]
    c, s, unit, order, count = c[first], s[first], unit[first], order[first], count[first]
    types = [v.TOTAL, *v.METHOD_TYPES.values()]
    starts = _starts(c, s)
    items = js.obj(len(c), [
        ("@type", '"ElectionResults.VoteCounts"'), ("Count", pa.array(count, pa.int64()).cast(js.TEXT)),
        ("GpUnitId", pc.take(js.string(all_units), pa.array(unit, pa.int64()))),
        ("OtherType", pc.if_else(pa.array(order == types.index(v.OTHER)),
                                 pa.scalar(_dumps(v.OTHER_METHOD), js.TEXT), _NONE)),
        ("Type", pc.take(pa.array([_dumps(t) for t in types], js.TEXT), pa.array(order, pa.int64())))],
        before=js.separators(starts))
    return _Counts(contests.take(pa.array(c[starts[:-1]], pa.int64())),
                   selections.take(pa.array(s[starts[:-1]], pa.int64())), starts, items)


def _other_counts(report: _Report) -> dict[str, str]:
    """``{contest_id: OtherCounts JSON array}``: over/under votes and write-ins per station, and for the district
    where every station reported them (a sum over only some stations is not the district's figure)."""
    t = report.turnout
    if t is None or t.num_rows == 0:
        return {}
    t = t.filter(pc.is_in(_column(t, "contest_id"), value_set=report.contest_ids))
    contest, station = _column(t, "contest_id"), _column(t, "station_id")
    figures = {col: _column(t, col, pa.int64()) for col in OTHER_COUNTS}
    known = pa.array(np.zeros(t.num_rows, bool))
    for figure in figures.values():
        known = pc.or_(known, figure.is_valid())
    report.stations_named.append(station.filter(known))
    rows = pc.sum(known).as_py() or 0
    station_items = js.obj(rows, [
        ("@type", '"ElectionResults.OtherCounts"'), ("GpUnitId", js.string(station.filter(known))),
        *[(nist, js.integer(figures[col].filter(known))) for col, nist in OTHER_COUNTS.items()]])
    # The district's figure: the contest's sum, where every one of its station rows has the figure.
    complete: dict[str, dict[str, int]] = {}
    per_contest = pa.table({"contest_id": contest, **figures}).group_by("contest_id").aggregate(
        [("contest_id", "count", pc.CountOptions(mode="all"))] + [(col, "count") for col in OTHER_COUNTS])
    for row in per_contest.to_pylist():
        summary = report.summary.get(row["contest_id"]) or {}
        items = {nist: summary[col] for col, nist in OTHER_COUNTS.items()
                 if summary.get(col) is not None and row[f"{col}_count"] == row["contest_id_count"]}
        if items:
            complete[row["contest_id"]] = items
    district_of = dict(zip(report.contest_ids.to_pylist(), report.districts.to_pylist(), strict=True))
    district_rows = sorted(complete)
    items = pa.table({
        "contest_id": pa.concat_arrays([contest.filter(known), pa.array(district_rows, js.TEXT)]),
        "unit": pa.concat_arrays([station.filter(known), pa.array([district_of[c] for c in district_rows], js.TEXT)]),
        "tie": pa.concat_arrays([pa.array(np.zeros(rows, np.int8)), pa.array(np.ones(len(district_rows), np.int8))]),
        "item": pa.concat_arrays([station_items, pa.array(
            [_dumps({"@type": "ElectionResults.OtherCounts", "GpUnitId": district_of[c], **complete[c]})
             for c in district_rows], js.TEXT)])})
    items = items.take(pc.sort_indices(items, sort_keys=[("contest_id", "ascending"), ("unit", "ascending"),
                                                         ("tie", "ascending")]))
    contest = items["contest_id"].combine_chunks()
    starts = js.runs(contest)
    grouped = js.arrays(items["item"].combine_chunks(), starts)
    return dict(zip(contest.take(pa.array(starts[:-1])).to_pylist(), grouped.to_pylist(), strict=True))


# --- selections ---------------------------------------------------------------------------------------------------

def _selection_rows(report: _Report) -> pa.Table:
    """Declared selections, plus any selection with results but no declaration (a v1 default contest's), sorted
    by contest and selection."""
    names = ("contest_id", "selection_id", "kind", "label", "candidate_id", "party_id")
    parts = []
    declared_pairs = pa.array([], js.TEXT)
    if report.declared is not None and report.declared.num_rows:
        d = report.declared
        keyed = d.append_column("_key", _pairs(_column(d, "contest_id"), _column(d, "selection_id")))
        declared = _last_per_key(keyed, "_key")
        declared_pairs = declared["_key"].combine_chunks()
        mates = declared["running_mates"].combine_chunks() if "running_mates" in declared.column_names else \
            pa.nulls(declared.num_rows, pa.list_(pa.string()))
        parts.append(pa.table({**{n: _column(declared, n) for n in names},
                               "running_mates": mates.cast(pa.list_(js.TEXT))}))
    r = report.results
    if r.rows:
        c, contests = r.ids["contest_id"]
        s, selections = r.ids["selection_id"]
        k, kinds = r.ids["selection_kind"]
        pair = c * (len(selections) + 1) + s
        # Each pair once, with its first kind in code order (the rows of one selection share it).
        order = np.lexsort((np.where(k < 0, len(kinds), k), pair))
        first = order[_starts(pair[order])[:-1]]
        contest = contests.take(pa.array(c[first], pa.int64()))
        selection = selections.take(pa.array(s[first], pa.int64()))
        kind = kinds.take(pa.array(np.maximum(k[first], 0), pa.int64(), mask=k[first] < 0))
        new = pc.invert(pc.is_in(_pairs(contest, selection), value_set=declared_pairs))
        contest, selection, kind = contest.filter(new), selection.filter(new), kind.filter(new)
        kind = pc.if_else(_truthy(kind), kind, pa.scalar("OTHER", js.TEXT))
        none = pa.nulls(len(selection), js.TEXT)
        parts.append(pa.table({
            "contest_id": contest, "selection_id": selection, "kind": kind, "label": none,
            "candidate_id": pc.if_else(pc.equal(kind, "CANDIDATE"), selection, none),
            "party_id": pc.if_else(pc.equal(kind, "PARTY"), selection, none),
            "running_mates": pa.nulls(len(selection), pa.list_(js.TEXT))}))
    if not parts:
        return pa.table({**{n: pa.array([], js.TEXT) for n in names},
                         "running_mates": pa.array([], pa.list_(js.TEXT))})
    rows = pa.concat_tables(parts)
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("contest_id", "ascending"), ("selection_id", "ascending")]))
    return pa.table({n: rows[n].combine_chunks() for n in rows.column_names})


def _people_lists(s: pa.Table, candidate_class: pa.Array) -> tuple[pa.Table, pa.Array]:
    """The persons of each candidate selection (its candidate, then its running mates, empty ones left out) as
    (row, position, person), and each row's ``CandidateIds`` JSON (null where it has none)."""
    candidate, mates = s["candidate_id"].combine_chunks(), s["running_mates"].combine_chunks()
    first = pc.and_(_truthy(candidate), candidate_class)
    flat = pc.list_flatten(mates)
    parent = pc.list_parent_indices(mates)
    offsets = mates.offsets.to_numpy()
    offsets = offsets - offsets[0]
    position = np.arange(len(flat)) - offsets[parent.to_numpy()] + 1 if len(flat) else np.zeros(0, np.int64)
    keep = pc.and_(_truthy(flat), pc.take(candidate_class, parent))
    people = pa.table({
        "row": pa.concat_arrays([pa.array(np.flatnonzero(first.to_numpy(zero_copy_only=False)), pa.int64()),
                                 parent.filter(keep).cast(pa.int64())]),
        "position": pa.concat_arrays([pa.array(np.zeros(pc.sum(first).as_py() or 0, np.int64)),
                                      pa.array(position, pa.int64()).filter(keep)]),
        "person": pa.concat_arrays([candidate.filter(first), js.plain(flat.filter(keep))])})
    people = people.take(pc.sort_indices(people, sort_keys=[("row", "ascending"), ("position", "ascending")]))
    rows = people["row"].combine_chunks()
    starts = js.runs(rows)
    lists = js.arrays(js.string(people["person"]), starts)
    at = np.full(s.num_rows, -1, np.int64)
    at[rows.take(pa.array(starts[:-1], pa.int64())).to_numpy()] = np.arange(len(starts) - 1)
    return people, pc.take(lists, pa.array(np.maximum(at, 0), mask=at < 0))


def _selections(report: _Report, counts: _Counts) -> tuple[pa.Table, pa.Array, pa.Array, np.ndarray]:
    """The selections (contest_id, kind, candidate_id, sorted), each one's JSON up to its ``VoteCounts`` array
    (opened, or the object closed when it has none), and for each run of ``counts`` the row it belongs to."""
    s = _selection_rows(report)
    n = s.num_rows
    contest, sid = s["contest_id"].combine_chunks(), s["selection_id"].combine_chunks()
    kind, label = s["kind"].combine_chunks(), s["label"].combine_chunks()
    candidate, party = s["candidate_id"].combine_chunks(), s["party_id"].combine_chunks()
    has_candidate, has_party = _truthy(candidate), _truthy(party)
    other = pc.equal(kind, "OTHER").fill_null(False)
    candidate_class = pc.or_(pc.is_in(kind, value_set=pa.array(["CANDIDATE", "WRITE_IN"], js.TEXT)),
                             pc.and_(other, has_candidate))
    party_class = pc.and_(pc.invert(candidate_class),
                          pc.or_(pc.equal(kind, "PARTY").fill_null(False), pc.and_(other, has_party)))
    measure_class = pc.invert(pc.or_(candidate_class, party_class))
    people, candidate_ids = _people_lists(s, candidate_class)
    # A person's ballot label is the first selection's naming them (contests and selections in document order).
    person_rows = people["row"].combine_chunks()
    person_label = pc.take(label, person_rows)
    report.labels.append(pa.table({
        "person": people["person"].combine_chunks(),
        "label": pc.if_else(_truthy(person_label), person_label, people["person"].combine_chunks()),
        "rank": pc.add(pc.multiply(person_rows, 1 << 20), people["position"].combine_chunks())}))
    endorsed = pc.and_(candidate_class, has_party)
    party_ids = pc.if_else(has_party, party, sid)
    report.party_refs += [party.filter(endorsed), party_ids.filter(party_class)]
    kind_json = pc.if_else(candidate_class, '"ElectionResults.CandidateSelection"',
                           pc.if_else(party_class, '"ElectionResults.PartySelection"',
                                      '"ElectionResults.BallotMeasureSelection"')).cast(js.TEXT)
    group_row = pc.index_in(_pairs(counts.contest_id, counts.selection_id), value_set=_pairs(contest, sid))
    group_row = group_row.to_numpy(zero_copy_only=False).astype(np.int64)
    has_counts = np.zeros(n, bool)
    has_counts[group_row] = True
    one = np.arange(n + 1)
    items = js.obj(n, [
        ("@id", js.string(pc.binary_join_element_wise(contest, sid, pa.scalar("#", js.TEXT)))),
        ("@type", kind_json),
        ("CandidateIds", candidate_ids),
        ("EndorsementPartyIds", pc.if_else(endorsed, js.arrays(js.string(party.fill_null("")), one), _NONE)),
        ("IsWriteIn", pc.if_else(pc.and_(candidate_class, pc.equal(kind, "WRITE_IN").fill_null(False)),
                                 pa.scalar("true", js.TEXT), _NONE)),
        ("PartyIds", pc.if_else(party_class, js.arrays(js.string(party_ids), one), _NONE)),
        ("Selection", pc.if_else(measure_class, js.text(pc.if_else(_truthy(label), label, sid), LANGUAGE), _NONE))],
        before=js.separators(js.runs(contest)),
        after=pc.if_else(pa.array(has_counts), pa.scalar(',"VoteCounts":[', js.TEXT), pa.scalar("}", js.TEXT)))
    return pa.table({"contest_id": contest, "kind": kind, "candidate_id": candidate}), items, \
        pa.array(has_counts), group_row


# --- contests -----------------------------------------------------------------------------------------------------

def _contest_class(contest: Row, kinds: set[Any]) -> str:
    """The NIST class of a contest: by kind, or for OTHER (a v1 default contest) by what its selections are."""
    kind = contest.get("kind")
    if kind in v.CONTEST_TYPES:
        return v.CONTEST_TYPES[kind]
    if kinds and kinds <= {"PARTY"}:
        return v.PARTY_CONTEST
    if kinds and kinds <= {"OPTION"}:
        return v.MEASURE_CONTEST
    return v.CANDIDATE_CONTEST


def _required(report: _Report, contest: Row, typ: str, people: list[str], out: dict[str, Any]) -> str:
    """Fill what NIST requires but the tables may lack, noting each stand-in; returns the final contest class.

    NIST requires VotesAllowed on a CandidateContest and a CandidateId on a RetentionContest; where the tables
    do not know them, the document says what it did instead in the report's Notes.
    """
    cid = contest["contest_id"]
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
        if len(people) == 1:
            out["CandidateId"] = people[0]
        else:
            typ = v.MEASURE_CONTEST
            out["Type"] = v.OTHER
            report.notes.append(f"{cid}: retention contest without one known candidate; exported as a "
                                "BallotMeasureContest.")
    return typ


def _contest_section(report: _Report) -> pa.Buffer:
    """Every contest's JSON, in contest order and comma-separated, with its selections, counts and reporting
    progress.

    The pieces (each contest's head and tail, each selection's head and tail, each count) are put in document
    order by one sort and one ``take``: the counts, most of the document's bytes, are copied once.
    """
    counts = _vote_counts(report)
    selections, selection_heads, has_counts, group_row = _selections(report, counts)
    other_counts = _other_counts(report)
    contest_of = selections["contest_id"].combine_chunks()
    runs = js.runs(contest_of)
    run_contests = contest_of.take(pa.array(runs[:-1], pa.int64())).to_pylist()
    end_of = dict(zip(run_contests, runs[1:].tolist(), strict=True))
    # What a contest's class and required fields depend on: its selections' kinds (a contest of kind OTHER) and
    # candidates (a retention contest).
    kinds: dict[str, set[Any]] = {}
    people: dict[str, set[str]] = {}
    looked_at = [c["contest_id"] for c in report.contests if c.get("kind") not in v.CONTEST_TYPES
                 or v.CONTEST_TYPES[c["kind"]] == v.RETENTION_CONTEST]
    if looked_at:
        sub = selections.filter(pc.is_in(contest_of, value_set=pa.array(looked_at, js.TEXT)))
        for cid, kind, candidate in zip(*(sub[c].to_pylist() for c in ("contest_id", "kind", "candidate_id")),
                                        strict=True):
            kinds.setdefault(cid, set()).add(kind)
            if candidate:
                people.setdefault(cid, set()).add(candidate)
    heads, tails = [], []
    retention_labels: list[tuple[str, int]] = []
    for i, contest in enumerate(report.contests):
        cid = contest["contest_id"]
        district = report.districts[i].as_py()
        fields: dict[str, Any] = {}
        typ = _required(report, contest, _contest_class(contest, kinds.get(cid, set())),
                        sorted(people.get(cid, ())), fields)
        if "CandidateId" in fields:
            # Named after the contest's selections and before the next contest's (ranks as in _selections).
            retention_labels.append((fields["CandidateId"], (end_of[cid] << 20) - 1))
        office = contest.get("office")
        if office and typ in (v.CANDIDATE_CONTEST, v.RETENTION_CONTEST):
            office_id = f"{cid}#office"
            report.offices.append((office_id, _dumps({"@id": office_id, "@type": "ElectionResults.Office",
                                                      "ElectionDistrictId": district, "Name": _text(office)})))
            if typ == v.CANDIDATE_CONTEST:
                fields["OfficeIds"] = [office_id]
            else:
                fields["OfficeId"] = office_id
        summary = report.summary.get(cid) or {}
        if summary.get("stations_reporting") is not None:
            fields["SubUnitsReported"] = summary["stations_reporting"]
        if summary.get("stations_expected") is not None:
            fields["TotalSubUnits"] = summary["stations_expected"]
        fields.update({"@id": cid, "@type": typ, "ElectionDistrictId": district, "Name": contest.get("name") or cid})
        # The sorted keys around ContestSelection (written by the pieces between head and tail) and OtherCounts
        # (JSON text already).
        head = _dumps({k: x for k, x in fields.items() if k < "ContestSelection"})
        heads.append(("," if i else "") + head[:-1] + ',"ContestSelection":[')
        middle = _dumps({k: x for k, x in fields.items() if "ContestSelection" < k < "OtherCounts"})
        end = _dumps({k: x for k, x in fields.items() if k > "OtherCounts"})
        other = other_counts.get(cid)
        tail = "]," + middle[1:-1] + (f',"OtherCounts":{other}' if other is not None else "")
        tails.append(tail + ("," + end[1:] if end != "{}" else "}"))
    if retention_labels:
        report.labels.append(pa.table({"person": pa.array([p for p, _ in retention_labels], js.TEXT),
                                       "label": pa.array([p for p, _ in retention_labels], js.TEXT),
                                       "rank": pa.array([r for _, r in retention_labels], pa.int64())}))
    # Document order: contest, then its selections, each with its counts; within a contest its head first and
    # its tail last.
    n_contests, n_selections, n_items = len(report.contests), selections.num_rows, len(counts.items)
    contest_at = pc.index_in(contest_of, value_set=report.contest_ids).to_numpy(zero_copy_only=False)
    contest_at = contest_at.astype(np.int64) if n_selections else np.zeros(0, np.int64)
    item_row = np.repeat(group_row, np.diff(counts.starts))
    closed = np.flatnonzero(has_counts.to_numpy(zero_copy_only=False))
    every, selected = np.arange(n_contests), np.arange(n_selections)
    zeros = np.zeros
    keys = [np.concatenate(k) for k in zip(
        (every, zeros(n_contests), zeros(n_contests), zeros(n_contests), zeros(n_contests)),
        (contest_at, np.ones(n_selections), selected, zeros(n_selections), zeros(n_selections)),
        (contest_at[item_row], np.ones(n_items), item_row, np.ones(n_items), np.arange(n_items)),
        (contest_at[closed], np.ones(len(closed)), closed, np.full(len(closed), 2), zeros(len(closed))),
        (every, np.full(n_contests, 2), zeros(n_contests), zeros(n_contests), zeros(n_contests)), strict=True)]
    texts = pa.concat_arrays([pa.array(heads, js.TEXT), selection_heads, counts.items,
                              js.constant("]}", len(closed)), pa.array(tails, js.TEXT)])
    order = np.lexsort(keys[::-1])
    return js.concatenated(texts.take(pa.array(order, pa.int64())))


# --- people, parties, units ---------------------------------------------------------------------------------------

def _people(report: _Report) -> tuple[pa.Buffer, pa.Buffer]:
    """(Candidate[], Person[]) as comma-separated JSON: every registered candidate of the election and every one
    a selection names, by id; a Person for each registered one."""
    labels = pa.concat_tables(report.labels) if report.labels else pa.table(
        {"person": pa.array([], js.TEXT), "label": pa.array([], js.TEXT), "rank": pa.array([], pa.int64())})
    labels = labels.take(pc.sort_indices(labels, sort_keys=[("person", "ascending"), ("rank", "ascending")]))
    labels = labels.take(pa.array(js.runs(labels["person"].combine_chunks())[:-1], pa.int64()))
    registered = report.candidates
    if registered is None:
        registered = pa.table({n: pa.array([], js.TEXT) for n in ("candidate_id", "name", "party_id", "gender")})
    rid = _column(registered, "candidate_id")
    ids = pc.unique(pa.concat_arrays([rid, labels["person"].combine_chunks()]))
    ids = ids.take(pc.sort_indices(ids))
    at = pc.index_in(ids, value_set=rid)
    has_row = at.is_valid()
    name = pc.take(_column(registered, "name"), at)
    party = pc.take(_column(registered, "party_id"), at)
    gender = pc.take(_column(registered, "gender"), at)
    label = _lookup(ids, labels["person"].combine_chunks(), labels["label"].combine_chunks())
    ballot = pc.if_else(_truthy(name), name, pc.if_else(label.is_valid(), label, ids))
    report.party_refs.append(_column(registered, "party_id").filter(_truthy(_column(registered, "party_id"))))
    person_id = pc.binary_join_element_wise(ids, pa.scalar("#person", js.TEXT), pa.scalar("", js.TEXT))
    candidates = js.obj(len(ids), [
        ("@id", js.string(ids)), ("@type", '"ElectionResults.Candidate"'), ("BallotName", js.text(ballot, LANGUAGE)),
        ("PartyId", pc.if_else(_truthy(party), js.string(party.fill_null("")), _NONE)),
        ("PersonId", pc.if_else(has_row, js.string(person_id), _NONE))],
        before=js.separators(np.array([0, len(ids)])))
    known = pc.and_(gender.is_valid(), pc.not_equal(gender, v.UNKNOWN).fill_null(False)).filter(has_row)
    full_name = pc.if_else(name.is_valid(), name, ids).filter(has_row)
    persons = pc.sum(has_row).as_py() or 0
    people = js.obj(persons, [
        ("@id", js.string(person_id.filter(has_row))), ("@type", '"ElectionResults.Person"'),
        ("FullName", js.text(full_name, LANGUAGE)),
        ("Gender", pc.if_else(known, js.string(pc.utf8_lower(gender.filter(has_row).fill_null(""))), _NONE))],
        before=js.separators(np.array([0, persons])))
    return js.concatenated(candidates), js.concatenated(people)


def _parties(report: _Report) -> list[str]:
    """Every party something in the document names, by id."""
    refs = pc.unique(pa.concat_arrays([r.cast(js.TEXT) for r in report.party_refs]))
    out = []
    for pid in sorted(p for p in refs.to_pylist() if p is not None):
        row = report.parties.get(pid) or {}
        party: dict[str, Any] = {"@id": pid, "@type": "ElectionResults.Party", "Name": _text(row.get("name") or pid)}
        if row.get("abbreviation"):
            party["Abbreviation"] = _text(row["abbreviation"])
        out.append(_dumps(party))
    return out


def _station_voters(report: _Report) -> pa.Table | None:
    """A station's registered voters and ballots cast, where every contest's tally agrees on them.

    The source repeats the station's figures on each of its contests' tallies; when they disagree, neither is
    the station's figure, so it stays unknown.
    """
    t = report.turnout
    if t is None or t.num_rows == 0:
        return None
    figures = ("registered_voters", "ballots_cast")
    table = pa.table({"station_id": _column(t, "station_id"), **{f: _column(t, f, pa.int64()) for f in figures}})
    grouped = table.group_by("station_id").aggregate(
        [(f, "count_distinct", pc.CountOptions(mode="all")) for f in figures] + [(f, "min") for f in figures])
    out = {"station_id": grouped["station_id"].combine_chunks()}
    for f in figures:
        agreed = pc.equal(grouped[f"{f}_count_distinct"], 1)
        out[f] = pc.if_else(agreed, grouped[f"{f}_min"], pa.scalar(None, pa.int64())).combine_chunks()
    return pa.table(out)


def _gp_units(report: _Report) -> pa.Buffer:
    """Every division of the election (and each unit results name without a declaration) as a ReportingUnit,
    comma-separated, by id."""
    d = report.divisions
    declared = _column(d, "division_id") if d is not None else pa.array([], js.TEXT)
    named = pa.concat_arrays([a.cast(js.TEXT) for a in report.units_named])
    stations = pa.concat_arrays([a.cast(js.TEXT) for a in report.stations_named]) if report.stations_named else \
        pa.array([], js.TEXT)
    undeclared = pa.array([] if pc.any(pc.equal(declared, report.scope)).as_py() else [report.scope], js.TEXT)
    others = pc.unique(named.filter(pc.invert(pc.is_in(named, value_set=pa.concat_arrays([declared, undeclared])))))
    others = others.filter(pc.and_(others.is_valid(), pc.not_equal(others, report.scope).fill_null(False)))
    places = pc.unique(stations.filter(pc.invert(pc.is_in(
        stations, value_set=pa.concat_arrays([declared, undeclared, others])))))
    places = places.filter(places.is_valid())
    ids = pa.concat_arrays([declared, undeclared, others, places])
    order = pc.sort_indices(ids)
    ids = ids.take(order)
    n = len(ids)
    at = pc.index_in(ids, value_set=declared)
    # Type: the division's kind and label, or for units no division declares, what names them.
    extra_types = pa.array(["country"] * len(undeclared) + [v.OTHER] * len(others) + ["polling-place"] * len(places),
                           js.TEXT)
    extra_index = order.to_numpy().astype(np.int64) - len(declared)
    extra_type = pc.take(extra_types, pa.array(np.maximum(extra_index, 0), mask=extra_index < 0))
    if d is not None and d.num_rows:
        kind, label = _column(d, "kind"), _column(d, "label")
        combo = pc.dictionary_encode(_pairs(kind, label))
        first = pc.index_in(combo.dictionary, value_set=_pairs(kind, label)).to_pylist()
        mapped = [v.unit_type(kind[i].as_py(), label[i].as_py()) for i in first]
        typ = pc.take(pc.take(pa.array([t for t, _ in mapped], js.TEXT), combo.indices), at)
        other = pc.take(pc.take(pa.array([o for _, o in mapped], js.TEXT), combo.indices), at)
        typ = pc.if_else(at.is_valid(), typ, extra_type)
        name = pc.take(_column(d, "name"), at)
    else:
        typ = extra_type
        other = name = pa.nulls(n, js.TEXT)
    voters = _station_voters(report)
    figures = {}
    for f in ("ballots_cast", "registered_voters"):
        figures[f] = js.integer(_lookup(ids, voters["station_id"].combine_chunks(), voters[f].combine_chunks())) \
            if voters is not None else pa.nulls(n, js.TEXT)
    quoted = js.string(ids)
    units = js.obj(n, [
        ("@id", quoted), ("@type", '"ElectionResults.ReportingUnit"'), ("ComposingGpUnitIds", _composing(report, ids)),
        ("ExternalIdentifier", pc.if_else(pc.starts_with(ids, "ocd-division/"), pc.binary_join_element_wise(
            pa.scalar('[{"@type":"ElectionResults.ExternalIdentifier","Type":"ocd-id","Value":', js.TEXT), quoted,
            pa.scalar("}]", js.TEXT), pa.scalar("", js.TEXT)), _NONE)),
        ("Name", pc.if_else(_truthy(name), js.text(name.fill_null(""), LANGUAGE), _NONE)),
        ("OtherType", pc.if_else(_truthy(other), js.string(other.fill_null("")), _NONE)),
        ("Type", js.string(typ)),
        ("VotersParticipated", figures["ballots_cast"]), ("VotersRegistered", figures["registered_voters"])],
        before=js.separators(np.array([0, n])))
    return js.concatenated(units)


def _composing(report: _Report, ids: pa.Array) -> pa.Array:
    """Each unit's ``ComposingGpUnitIds`` JSON: the divisions naming it as parent or in member_of (null: none)."""
    d = report.divisions
    if d is None or d.num_rows == 0:
        return pa.nulls(len(ids), js.TEXT)
    child = _column(d, "division_id")
    parents = [_column(d, "parent_id")]
    children = [child]
    if "member_of" in d.column_names:
        member_of = d["member_of"].combine_chunks()
        parents.append(js.plain(pc.list_flatten(member_of)))
        children.append(pc.take(child, pc.list_parent_indices(member_of)))
    pairs = pa.table({"parent": pa.concat_arrays(parents), "child": pa.concat_arrays(children)})
    pairs = pairs.filter(_truthy(pairs["parent"].combine_chunks()))
    if pairs.num_rows == 0:
        return pa.nulls(len(ids), js.TEXT)
    pairs = pairs.take(pc.sort_indices(pairs, sort_keys=[("parent", "ascending"), ("child", "ascending")]))
    parent, child = pairs["parent"].combine_chunks(), pairs["child"].combine_chunks()
    pairs = pairs.take(pa.array(js.runs(parent, child)[:-1]))
    parent, child = pairs["parent"].combine_chunks(), pairs["child"].combine_chunks()
    starts = js.runs(parent)
    return _lookup(ids, parent.take(pa.array(starts[:-1])), js.arrays(js.string(child), starts))


def _status(report: _Report) -> str:
    """``unofficial-complete`` when every contest's stations all reported; the figures are never certified."""
    if not report.contests:
        return "unofficial-partial"  # nothing says the results are complete
    for contest in report.contests:
        s = report.summary.get(contest["contest_id"]) or {}
        if s.get("stations_expected") is None or s.get("stations_reporting") != s["stations_expected"]:
            return "unofficial-partial"
    return "unofficial-complete"


# --- the document -------------------------------------------------------------------------------------------------

Piece = bytes | pa.Buffer


def _report_pieces(export: ExportTables, election_id: str, generated_at: datetime) -> list[Piece]:
    """The ElectionReport of ``election_id`` as UTF-8 JSON in pieces (the large ones Arrow buffers, not copied
    into one string: ``compress`` reads them one after another)."""
    elections = export.tables[ELECTIONS]
    election = next((r for r in elections.select([c for c in COLUMNS[ELECTIONS] if c in elections.column_names])
                     .to_pylist() if r["election_id"] == election_id), None)
    if election is None:
        raise KeyError(election_id)
    report = _Report(export, election)
    if export.format == SUMMARY_FORMAT:
        report.notes.append(f"Polling-station counts are left out (more than {STATION_LEVEL_MAX_ROWS:,} station "
                            "rows); they are in the release's contest_results table.")
    contests = _contest_section(report)
    candidates, persons = _people(report)
    parties = _parties(report)
    units = _gp_units(report)
    etype, other = v.election_type(election.get("kind"))
    date = _dumps(election["date"].isoformat())
    generated = generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def member(key: str, items: Piece) -> list[Piece]:
        return [f'"{key}":['.encode(), items, b"],"] if len(items) else []

    return [
        b'{"@type":"ElectionResults.ElectionReport","Election":[{"@type":"ElectionResults.Election",',
        *member("Candidate", candidates), *member("Contest", contests),
        f'"ElectionScopeId":{_dumps(report.scope)},"EndDate":{date},"Name":{_dumps(_text(election["name"]))},'
        f'{f"{chr(34)}OtherType{chr(34)}:{_dumps(other)}," if other else ""}"StartDate":{date},'
        f'"Type":{_dumps(etype)}}}],"Format":{_dumps(export.format)},"GeneratedDate":{_dumps(generated)},'.encode(),
        *member("GpUnit", units),
        f'"Issuer":{_dumps(ISSUER)},"IssuerAbbreviation":{_dumps(ISSUER)},'.encode(),
        f'"Notes":{_dumps(" ".join(report.notes))},'.encode() if report.notes else b"",
        *member("Office", ",".join(item for _, item in sorted(report.offices)).encode()),
        *member("Party", ",".join(parties).encode()), *member("Person", persons),
        f'"SequenceEnd":1,"SequenceStart":1,"Status":{_dumps(_status(report))},'
        f'"VendorApplicationId":{_dumps(ISSUER)}}}'.encode()]


def _export(tables: Mapping[str, pa.Table] | ExportTables) -> ExportTables:
    return tables if isinstance(tables, ExportTables) else at_reporting_level(tables)


def election_report(tables: Mapping[str, pa.Table] | ExportTables, election_id: str, *, generated_at: datetime
                    ) -> bytes:
    """The ElectionReport of ``election_id`` from a release's tables (by name; see ``TABLES``) as UTF-8 JSON:
    compact, keys sorted, as ``json.dumps(..., ensure_ascii=False, separators=(",", ":"), sort_keys=True)``
    writes it.

    Raises:
        KeyError: ``election_id`` is not in the ``elections`` table.
    """
    return b"".join(_report_pieces(_export(tables), election_id, generated_at))


def _election_ids(tables: Collection[str], elections: pa.Table | None) -> list[str] | None:
    """The elections to export, or None (logged) when the release lacks the contest tables (folded before the
    contest model): there is then nothing a contest-based document could truthfully hold."""
    missing = [n for n in REQUIRED if n not in tables]
    if missing or elections is None:
        log.warning("no NIST SP 1500-100 export: the release has no %s table", ", ".join(missing))
        return None
    return sorted(e for e in set(_column(elections, "election_id").to_pylist()) if e is not None)


def cdf_documents(tables: Mapping[str, pa.Table] | ExportTables, *, generated_at: datetime) -> dict[str, bytes]:
    """``{cdf/<election_id>.json.gz: ElectionReport as UTF-8 JSON}`` for every election in ``elections`` (empty
    without the contest tables)."""
    export = _export(tables)
    return {document_key(e): election_report(export, e, generated_at=generated_at)
            for e in _election_ids(export.tables, export.tables.get(ELECTIONS)) or []}


def compress(pieces: Iterable[Piece]) -> bytes:
    """A document as published: gzip of its pieces one after another, without a file name or time, so the same
    JSON always gives the same bytes (``gzip.compress(json, GZIP_LEVEL, mtime=0)``'s)."""
    gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join([*(gz.compress(p) for p in pieces), gz.flush()])


def release_documents(tables: Mapping[str, pa.Table] | Mapping[str, StagedFile] | ExportTables, *,
                      generated_at: datetime, url: Callable[[str], str], previous: Mapping[str, Any] | None = None
                      ) -> tuple[dict[str, Blob | Carried], dict[str, dict[str, Any]]]:
    """What the release step writes beside ``datapackage.json``, and the manifest's ``documents`` entries.

    A document whose inputs (``export_inputs``) equal those of the previous release's is that release's
    document: it is carried over (copied in the bucket, with its ``GeneratedDate``), neither built nor uploaded,
    and the tables are not read.

    Args:
        tables: the release's staged tables (``Staged.files``), or tables by name (those of ``TABLES`` it has),
            or ``read_export_tables``'s.
        generated_at: the release's time (the documents' ``GeneratedDate``).
        url: the public URL of a key relative to the release folder.
        previous: the previous release's manifest, if any.

    Returns:
        (documents by key, gzip-compressed or carried over; ``{key: {path, url, format, media_type,
        election_id, inputs, bytes, sha256}}``, ``bytes`` and ``sha256`` those of the file as stored); both
        empty without contest tables.
    """
    export: ExportTables | None = None
    if not isinstance(tables, ExportTables) and tables and all(isinstance(t, StagedFile) for t in tables.values()):
        files: Mapping[str, StagedFile] = tables  # type: ignore[assignment]
        inputs, names = export_inputs(files), set(files)
        elections = _read(files, ELECTIONS) if ELECTIONS in files else None
    else:
        export = _export(tables)  # type: ignore[arg-type]
        inputs, names, elections = export.inputs, set(export.tables), export.tables.get(ELECTIONS)
    earlier = (previous or {}).get("documents") or {}
    documents: dict[str, Blob | Carried] = {}
    entries: dict[str, dict[str, Any]] = {}
    for election_id in _election_ids(names, elections) or []:
        key = document_key(election_id)
        entry = {"path": key, "url": url(key), "format": FORMAT, "media_type": MEDIA_TYPE,
                 "election_id": election_id, "inputs": inputs}
        same = earlier.get(key)
        if inputs is not None and previous is not None and same and same.get("inputs") == inputs:
            documents[key] = Carried(previous["release_id"], same["path"])
            entry.update(bytes=same["bytes"], sha256=same["sha256"])
        else:
            export = export or read_export_tables(files)
            body = compress(_report_pieces(export, election_id, generated_at))
            documents[key] = Blob(body, MEDIA_TYPE)
            entry.update(bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
        entries[key] = entry
    return documents, entries
