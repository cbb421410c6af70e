"""The fold leaves withheld tallies out of every derived table, consistently, and records them in ``withheld``."""

from __future__ import annotations

import pyarrow as pa

from pipelines.fold import tables as t
from pipelines.fold.core import extract_all, fold, fold_extracted
from pipelines.fold.withheld import REQUEST_SCHEMA
from tests.support.factories import ELECTION, REFERENDUM, muni, small_election, station

RULE = "station_turnout.cast_le_registered"


def _request(*units: tuple[str, str]) -> pa.Table:
    rows = [{"election_id": ELECTION, "contest_id": c, "station_id": s, "rule": RULE, "reason": "cast > registered"}
            for c, s in units]
    return pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA)


def _stations(table: pa.Table, contest: str, contest_column: str = "contest_id") -> set[str]:
    return {r["station_id"] for r in table.to_pylist() if r[contest_column] == contest}


def test_withheld_tally_is_absent_from_every_result_table_and_listed() -> None:
    log = small_election()
    full = fold(log.records)
    out = fold_extracted(extract_all(log.records), withhold=_request((ELECTION, station(3))))
    # station level: the tally is gone, the other contest at that station stays.
    assert _stations(out[t.STATION_TURNOUT], ELECTION) == _stations(full[t.STATION_TURNOUT], ELECTION) - {station(3)}
    assert station(3) in _stations(out[t.STATION_TURNOUT], REFERENDUM)
    assert _stations(out[t.STATION_RESULTS], ELECTION) == {station(1), station(2), station(4)}
    station_rows = [r for r in out[t.CONTEST_RESULTS].to_pylist()
                    if r["level"] == t.LEVEL_STATION and r["contest_id"] == ELECTION]
    assert {r["unit_id"] for r in station_rows} == {station(1), station(2), station(4)}
    # aggregates: station 3 gave cavid 400 and dilara 150.
    top = {r["selection_id"]: r["votes"] for r in out[t.CONTEST_RESULTS].to_pylist()
           if r["level"] == t.LEVEL_CONTEST and r["contest_id"] == ELECTION}
    assert top["candidate:cavid"] == 90 and top["candidate:dilara"] == 300
    muni_b = {r["candidate_id"]: r["votes"] for r in out[t.MUNICIPALITY_RESULTS].to_pylist()
              if r["municipality_id"] == muni("b")}
    assert muni_b == {"candidate:cavid": 90, "candidate:dilara": 300}
    summary = {r["contest_id"]: r for r in out[t.CONTEST_SUMMARY].to_pylist()}
    full_summary = {r["contest_id"]: r for r in full[t.CONTEST_SUMMARY].to_pylist()}
    assert summary[ELECTION]["stations_withheld"] == 1 and summary[REFERENDUM]["stations_withheld"] == 0
    assert summary[ELECTION]["stations_reporting"] == full_summary[ELECTION]["stations_reporting"] - 1
    assert full_summary[ELECTION]["stations_withheld"] == 0
    # the withheld table names the tally and traces it to its event.
    [row] = out[t.WITHHELD].to_pylist()
    tally = next(r for r in full[t.STATION_TURNOUT].to_pylist()
                 if r["station_id"] == station(3) and r["contest_id"] == ELECTION)
    assert (row["station_id"], row["rule"], row["event_id"], row["offset"]) == (
        station(3), RULE, tally["event_id"], tally["offset"])
    # history is untouched: the withheld tally's event is still current.
    assert tally["event_id"] in out[t.EVENTS]["event_id"].to_pylist()
    assert tally["event_id"] not in out[t.NONCURRENT_EVENTS]["event_id"].to_pylist()
    assert out[t.EVENTS].equals(full[t.EVENTS]) and out[t.NONCURRENT_EVENTS].equals(full[t.NONCURRENT_EVENTS])


def test_national_summary_leaves_out_a_station_withheld_in_every_contest() -> None:
    log = small_election()
    full = {r["metric"]: r for r in fold(log.records)[t.NATIONAL_SUMMARY].to_pylist()}
    out = fold_extracted(extract_all(log.records), withhold=_request((ELECTION, station(3)), (REFERENDUM, station(3))))
    national = {r["metric"]: r for r in out[t.NATIONAL_SUMMARY].to_pylist()}
    assert national["STATIONS"]["computed"] == full["STATIONS"]["computed"] - 1
    assert national["REGISTERED_VOTERS"]["computed"] == full["REGISTERED_VOTERS"]["computed"] - 800
    assert out[t.WITHHELD].num_rows == 2


def test_no_request_gives_an_empty_withheld_table_and_the_same_tables() -> None:
    log = small_election()
    full = fold(log.records)
    again = fold_extracted(extract_all(log.records), withhold=_request())
    assert full[t.WITHHELD].num_rows == 0 and full[t.WITHHELD].schema == t.SCHEMAS[t.WITHHELD]
    assert all(again[n].equals(full[n]) for n in t.TABLE_NAMES)


def test_a_request_naming_no_current_tally_is_recorded_without_trace() -> None:
    log = small_election()
    out = fold_extracted(extract_all(log.records), withhold=_request((ELECTION, "ocd-division/country:az/none")))
    [row] = out[t.WITHHELD].to_pylist()
    assert row["event_id"] is None and row["station_id"] == "ocd-division/country:az/none"
    assert out[t.STATION_TURNOUT].equals(fold(log.records)[t.STATION_TURNOUT])
