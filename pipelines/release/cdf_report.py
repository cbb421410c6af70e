"""One election's tables as the parts of its NIST document read them (``Report``), and the small column
operations those parts share.

``Report`` also collects what one part finds for another: the units results name, the parties and persons
selections name, the offices contests declare and the notes on stand-ins, so each part is built once.
"""

from __future__ import annotations

import copy
import json
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.release import cdf_json as js
from pipelines.release import cdf_vocab as v
from pipelines.release.cdf_tables import (
    CANDIDATES,
    COLUMNS,
    CONTESTS,
    DIVISIONS,
    PARTIES,
    RESULTS,
    SELECTIONS,
    STATION_TURNOUT,
    SUMMARY,
    ExportTables,
)

# Names come from sources in many languages and the tables do not say which: BCP 47 "und" (undetermined).
LANGUAGE = "und"
Row = dict[str, Any]
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
NONE = pa.scalar(None, js.TEXT)


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def text(content: str) -> dict[str, Any]:
    return {"@type": "ElectionResults.InternationalizedText",
            "Text": [{"@type": "ElectionResults.LanguageString", "Content": content, "Language": LANGUAGE}]}


def column(table: pa.Table, name: str, type_: pa.DataType = js.TEXT) -> pa.Array:
    """A column as one plain array (all nulls when the table lacks it)."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, type_)
    values = table[name]
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or \
            pa.types.is_dictionary(values.type):
        return js.plain(values)
    return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)


def truthy(values: pa.Array) -> pa.Array:
    """Non-null and non-empty (what ``if value`` meant for the tables' strings)."""
    return pc.and_(values.is_valid(), pc.not_equal(pc.binary_length(values.fill_null("")), 0))


def _of_election(table: pa.Table | None, election_id: str, *, unassigned: bool = False) -> pa.Table | None:
    """The rows of ``election_id`` (and, with ``unassigned``, rows of no election) when the table says."""
    if table is None or "election_id" not in table.column_names:
        return table
    elections = column(table, "election_id")
    keep = pc.equal(elections, election_id).fill_null(False)
    if unassigned:
        keep = pc.or_(keep, elections.is_null())
    return table.filter(keep)


def last_per_key(table: pa.Table, key: str) -> pa.Table:
    """One row per ``key``, the table's last (as a dict keyed by it kept), sorted by key."""
    order = np.arange(table.num_rows)[::-1]
    indexed = table.take(pa.array(order))
    indexed = indexed.set_column(indexed.column_names.index(key), key, column(indexed, key))
    # Stable: of equal keys, the latest row comes first.
    ordered = indexed.take(pc.sort_indices(indexed, sort_keys=[(key, "ascending")]))
    return ordered.take(pa.array(js.runs(ordered[key].combine_chunks())[:-1]))


def lookup(keys: pa.Array, table_keys: pa.Array, values: pa.Array) -> pa.Array:
    """``values`` of ``table_keys`` at each of ``keys`` (null where absent)."""
    return pc.take(values, pc.index_in(keys, value_set=table_keys))


def pairs(*columns: pa.Array) -> pa.Array:
    """One string per row joining the columns (a compound key for ``is_in``)."""
    return pc.binary_join_element_wise(*[c.cast(js.TEXT).fill_null("\x00") for c in columns],
                                       pa.scalar("\x1f", js.TEXT))


def starts(*keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts in rows sorted by them, and the row count at the end."""
    n = len(keys[0])
    change = np.zeros(n, bool)
    if n:
        change[0] = True
        for key in keys:
            change[1:] |= key[1:] != key[:-1]
    return np.append(np.flatnonzero(change), n)


class Results:
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
        for figure in ("votes", *v.METHOD_TYPES):
            if figure in table.column_names:
                self.figures[figure] = (table[figure].is_valid().to_numpy(zero_copy_only=False)[keep],
                                        table[figure].fill_null(0).to_numpy().astype(np.int64)[keep])
            else:
                self.figures[figure] = (np.zeros(int(keep.sum()), bool), np.zeros(int(keep.sum()), np.int64))
        self.rows = int(keep.sum())


class Report:
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
        self.results = Results(tables.get(RESULTS), self.contest_ids)
        declared = tables.get(SELECTIONS)
        self.declared = None if declared is None else declared.filter(
            pc.is_in(column(declared, "contest_id"), value_set=self.contest_ids))
        turnout = _of_election(tables.get(STATION_TURNOUT), eid)
        self.turnout = turnout if turnout is not None and "contest_id" in turnout.column_names else None
        self._tables, self._election_id = tables, eid
        # Units results name without declaring them: the ids at station level, and those at any other.
        self.stations_named: list[pa.Array] = []
        self.units_named: list[pa.Array] = [self.districts]
        self.party_refs: list[pa.Array] = []
        self.labels: list[pa.Table] = []  # (person, label, rank): a selection's ballot label for each person
        self.offices: list[tuple[str, str]] = []  # (id, JSON)
        self.notes: list[str] = []

    # Read by the document's frame alone (``cdf_frame``): not made when the frame is found in the cache.
    @cached_property
    def divisions(self) -> pa.Table | None:
        divisions = _of_election(self._tables.get(DIVISIONS), self._election_id, unassigned=True)
        return None if divisions is None else last_per_key(divisions, "division_id")

    @cached_property
    def candidates(self) -> pa.Table | None:
        candidates = _of_election(self._tables.get(CANDIDATES), self._election_id)
        return None if candidates is None else last_per_key(candidates, "candidate_id")

    @cached_property
    def parties(self) -> dict[str, Row]:
        parties = self._tables.get(PARTIES)
        return {} if parties is None else {r["party_id"]: r for r in parties.to_pylist()}

    def block(self, first: int, stop: int, results: pa.Table | None, declared: pa.Table | None,
              turnout: pa.Table | None) -> Report:
        """The report of contests ``first``..``stop - 1`` alone (a block of the Contest array: ``cdf_blocks``),
        given their rows of contest_results, contest_selections and station_turnout, with empty collections of
        its own: what its Contest JSON finds for the document's other parts."""
        out = copy.copy(self)
        out.contests = self.contests[first:stop]
        out.contest_ids = self.contest_ids.slice(first, stop - first)
        out.districts = self.districts.slice(first, stop - first)
        out.results = Results(results, out.contest_ids)
        out.declared, out.turnout = declared, turnout
        out.stations_named, out.units_named, out.party_refs, out.labels = [], [], [], []
        out.offices, out.notes = [], []
        return out

