"""The release tables the NIST SP 1500-100 export reads, the columns it reads of each, and the two detail levels a
document can have (docs/contests.md, "Export")."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa

from pipelines.release import cdf_vocab as v

ELECTIONS, DIVISIONS, PARTIES, CANDIDATES = "elections", "divisions", "parties", "candidates"
CONTESTS, SELECTIONS, RESULTS, SUMMARY = "contests", "contest_selections", "contest_results", "contest_summary"
STATION_TURNOUT = "station_turnout"
# Without these there is nothing to export (a release folded before the contest model existed).
REQUIRED = (ELECTIONS, CONTESTS, RESULTS)
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


class LazyTables(Mapping[str, pa.Table]):
    """Tables by name, those given as a function read when first used: the document's frame (``cdf_frame``) reads
    divisions, candidates and parties, a million stations' divisions alone 0.4 s and 0.15 GB at its peak, and a
    publish of new tallies finds the frame in the cache. ``without`` shares what was read."""

    def __init__(self, tables: Mapping[str, pa.Table | Callable[[], pa.Table]], hidden: frozenset[str] = frozenset()
                 ) -> None:
        self._tables = tables if isinstance(tables, dict) else dict(tables)
        self._hidden = hidden

    def __getitem__(self, name: str) -> pa.Table:
        if name in self._hidden:
            raise KeyError(name)
        table = self._tables[name]
        if not isinstance(table, pa.Table):
            table = self._tables[name] = table()
        return table

    def __contains__(self, name: object) -> bool:  # without reading it (``Mapping``'s would)
        return name in self._tables and name not in self._hidden

    def __iter__(self) -> Iterator[str]:
        return (n for n in self._tables if n not in self._hidden)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def without(self, name: str) -> LazyTables:
        return LazyTables(self._tables, self._hidden | {name})


@dataclass(frozen=True)
class ExportTables:
    """The tables as the documents use them, and the NIST ``Format`` that follows from their size.

    ``inputs`` (staged tables only) names what the documents are built from: the export's code and each table's
    sha256. Two releases with the same ``inputs`` have the same documents but for ``GeneratedDate``.
    """

    tables: Mapping[str, pa.Table]
    format: str
    inputs: str | None = None
