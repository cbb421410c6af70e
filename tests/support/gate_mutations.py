"""One mutation per gate rule: each breaks a good data set so that exactly that rule fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from pipelines.fold import tables as t
from pipelines.gate import names as n

Tables = dict[str, pa.Table]


def edit(tables: Tables, table: str, row: int, **values: Any) -> Tables:
    rows = tables[table].to_pylist()
    rows[row].update(values)
    return {**tables, table: pa.Table.from_pylist(rows, schema=tables[table].schema)}


def append_copy(tables: Tables, table: str, **values: Any) -> Tables:
    """Add a copy of the first row with ``values`` changed (so nothing else loses its reference)."""
    rows = tables[table].to_pylist()
    return {**tables, table: pa.Table.from_pylist([*rows, {**rows[0], **values}], schema=tables[table].schema)}


def row_where(tables: Tables, table: str, **match: Any) -> int:
    rows = tables[table].to_pylist()
    return next(i for i, r in enumerate(rows) if all(r[k] == v for k, v in match.items()))


def append_row(tables: Tables, table: str, row: int, **values: Any) -> Tables:
    """Add a copy of row ``row`` with ``values`` changed."""
    rows = tables[table].to_pylist()
    return {**tables, table: pa.Table.from_pylist([*rows, {**rows[row], **values}], schema=tables[table].schema)}


def copy_key(tables: Tables, table: str) -> Tables:
    first = tables[table].to_pylist()[0]
    return edit(tables, table, 1, **{k: first[k] for k in t.KEYS[table]})


def _station_row(ts: Tables, station_suffix: str, selection: str) -> int:
    rows = ts[t.CONTEST_RESULTS].to_pylist()
    return next(i for i, r in enumerate(rows) if r["level"] == t.LEVEL_STATION and r["selection_id"] == selection
                and r["unit_id"].endswith(station_suffix))


DECLARED = 1  # contests row 0 is the default contest (no event), row 1 the declared referendum

MUTATIONS: dict[tuple[str, str], Callable[[Tables], Tables]] = {
    (t.OBSERVATIONS, n.KEY_PRESENT): lambda ts: edit(ts, t.OBSERVATIONS, 0, incident_id=None),
    (t.OBSERVATIONS, n.KEY_UNIQUE): lambda ts: copy_key(ts, t.OBSERVATIONS),
    (t.PARTIES, n.KEY_UNIQUE): lambda ts: append_copy(ts, t.PARTIES),
    (t.OBSERVATIONS, n.COUNTS_NON_NEGATIVE): lambda ts: edit(ts, t.OBSERVATIONS, 0, count=-1),
    (t.STATION_TURNOUT, n.CAST_LE_REGISTERED): lambda ts: edit(ts, t.STATION_TURNOUT, 0, registered_voters=500),
    (t.STATION_TURNOUT, n.VALID_PLUS_INVALID_EQ_CAST): lambda ts: edit(ts, t.STATION_TURNOUT, 1,
                                                                        invalid_ballots=11),
    (t.STATION_TURNOUT, n.TURNOUT_IN_RANGE): lambda ts: edit(ts, t.STATION_TURNOUT, 2, turnout=1.5),
    (t.STATION_RESULTS, n.VOTES_SUM_EQ_VALID): lambda ts: edit(ts, t.STATION_RESULTS, 0, votes=301),
    (t.STATION_RESULTS, n.KEY_UNIQUE): lambda ts: edit(ts, t.STATION_RESULTS, 1, candidate_id="candidate:aysel"),
    (t.STATION_RESULTS, n.CANDIDATE_RESOLVES): lambda ts: edit(ts, t.STATION_RESULTS, 3,
                                                                candidate_id="candidate:ghost"),
    (t.CANDIDATES, n.PARTY_RESOLVES): lambda ts: edit(ts, t.CANDIDATES, 0, party_id="party:ghost"),
    (t.SEATS, n.CANDIDATE_RESOLVES): lambda ts: edit(ts, t.SEATS, 0, candidate_id="candidate:ghost"),
    (t.DIVISIONS, n.PARENT_RESOLVES): lambda ts: edit(ts, t.DIVISIONS, 1, parent_id="ocd-division/country:zz"),
    (t.OBSERVATIONS, n.CATEGORY_IN_VOCABULARY): lambda ts: edit(ts, t.OBSERVATIONS, 1, category="ARSON"),
    (t.CANDIDATES, n.GENDER_IN_VOCABULARY): lambda ts: edit(ts, t.CANDIDATES, 2, gender="F"),
    (t.ELECTIONS, n.ELECTION_ID_FORMAT): lambda ts: append_copy(ts, t.ELECTIONS, election_id="Local AZ 2025"),
    (t.CONTESTS, n.KEY_PRESENT): lambda ts: append_row(ts, t.CONTESTS, DECLARED, contest_id=None),
    (t.CONTESTS, n.KEY_UNIQUE): lambda ts: append_row(ts, t.CONTESTS, DECLARED),
    (t.CONTESTS, n.CONTEST_ID_FORMAT): lambda ts: append_row(ts, t.CONTESTS, DECLARED, contest_id="Referendum"),
    (t.CONTESTS, n.KIND_IN_VOCABULARY): lambda ts: edit(ts, t.CONTESTS, DECLARED, kind="PLEBISCITE"),
    (t.CONTESTS, n.ELECTION_RESOLVES): lambda ts: edit(ts, t.CONTESTS, DECLARED, election_id="local.az.2099-01-01"),
    (t.CONTESTS, n.DISTRICT_RESOLVES): lambda ts: edit(ts, t.CONTESTS, DECLARED,
                                                       district_id="ocd-division/country:zz"),
    (t.CONTEST_SELECTIONS, n.KEY_UNIQUE): lambda ts: append_row(ts, t.CONTEST_SELECTIONS, 0),
    (t.CONTEST_SELECTIONS, n.KIND_IN_VOCABULARY): lambda ts: edit(ts, t.CONTEST_SELECTIONS, 0, kind="MAYBE"),
    (t.CONTEST_SELECTIONS, n.CONTEST_RESOLVES): lambda ts: append_row(ts, t.CONTEST_SELECTIONS, 0,
                                                                      contest_id="local.az.ghost.2025-01-29"),
    (t.CONTEST_RESULTS, n.KEY_PRESENT): lambda ts: edit(ts, t.CONTEST_RESULTS, 0, unit_id=None),
    (t.CONTEST_RESULTS, n.KEY_UNIQUE): lambda ts: copy_key(ts, t.CONTEST_RESULTS),
    (t.CONTEST_RESULTS, n.COUNTS_NON_NEGATIVE): lambda ts: edit(ts, t.CONTEST_RESULTS, 0, votes=-1),
    (t.CONTEST_RESULTS, n.SELECTION_DECLARED): lambda ts: edit(
        ts, t.CONTEST_RESULTS, _station_row(ts, "polling_station:2", "option:yes"), selection_id="option:maybe"),
    (t.CONTEST_RESULTS, n.METHODS_SUM_EQ_VOTES): lambda ts: edit(
        ts, t.CONTEST_RESULTS, _station_row(ts, "polling_station:1", "option:yes"), votes_mail=30),
    (t.CONTEST_SUMMARY, n.KEY_UNIQUE): lambda ts: copy_key(ts, t.CONTEST_SUMMARY),
    (t.CONTEST_SUMMARY, n.TURNOUT_IN_RANGE): lambda ts: edit(ts, t.CONTEST_SUMMARY, 1, turnout=1.5),
    (t.CONTEST_SUMMARY, n.REPORTING_LE_EXPECTED): lambda ts: edit(ts, t.CONTEST_SUMMARY, 1, stations_reporting=5),
    (t.STATION_TURNOUT, n.VOTES_LE_CAST_TIMES_ALLOWED): lambda ts: edit(
        ts, t.STATION_TURNOUT, row_where(ts, t.STATION_TURNOUT, contest_id="local.az.constitution.2025-01-29"),
        overvotes=0, undervotes=200),  # with blank votes reported, all three are known: the rule applies
    (t.NATIONAL_SUMMARY, n.REPORTED_MATCHES_COMPUTED): lambda ts: edit(
        ts, t.NATIONAL_SUMMARY, row_where(ts, t.NATIONAL_SUMMARY, metric="REGISTERED_VOTERS"), reported=4000.0),
}
