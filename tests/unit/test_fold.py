"""Fold: corrections, retractions, duplicates, arrival order, the latest-version rule, traces, determinism."""

from __future__ import annotations

import io
import random
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.fold import TABLE_NAMES, fold
from pipelines.fold import tables as t
from tests.support.factories import ELECTION, REFERENDUM, T0, Log, muni, small_election, station

VOTES = {"candidate:aysel": 300, "candidate:babek": 200}


def _votes(tables: dict[str, pa.Table], station_id: str, contest_id: str = ELECTION) -> dict[str, int]:
    """Votes at one station in one contest (the default contest unless told)."""
    rows = tables[t.STATION_RESULTS].to_pylist()
    return {r["candidate_id"]: r["votes"] for r in rows
            if r["station_id"] == station_id and r["contest_id"] == contest_id}


def _status(tables: dict[str, pa.Table], event_id: str) -> list[str]:
    """The status of each events row of ``event_id``: as noncurrent_events lists it, else current."""
    listed = {r["event_id"]: r["status"] for r in tables[t.NONCURRENT_EVENTS].to_pylist()}
    return [listed.get(event_id, "current") for r in tables[t.EVENTS].to_pylist() if r["event_id"] == event_id]


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def test_correction_supersedes_its_target() -> None:
    log = Log()
    first = log.tally(station(1), muni("a"), VOTES)
    fixed = log.tally(station(1), muni("a"), {"candidate:aysel": 310, "candidate:babek": 190}, supersedes=first,
                      reason="typo in protocol")
    tables = fold(log.records)
    assert _votes(tables, station(1)) == {"candidate:aysel": 310, "candidate:babek": 190}
    assert _status(tables, first.value["event_id"]) == ["superseded"]
    assert _status(tables, fixed.value["event_id"]) == ["current"]
    [corr] = tables[t.CORRECTIONS].to_pylist()
    assert (corr["correction_event_id"], corr["target_event_id"], corr["kind"], corr["reason"], corr["key"]) == (
        fixed.value["event_id"], first.value["event_id"], "supersede", "typo in protocol", first.key)
    assert corr["target_found"] is True


def test_chain_of_corrections_and_correction_read_before_target() -> None:
    log = Log()
    a = log.tally(station(1), muni("a"), VOTES)
    b = log.tally(station(1), muni("a"), {"candidate:aysel": 301, "candidate:babek": 200}, supersedes=a)
    # c is recorded *before* b (an earlier recorded_at) but corrects b: supersession beats the latest rule.
    c = log.tally(station(1), muni("a"), {"candidate:aysel": 302, "candidate:babek": 200}, supersedes=b,
                  recorded_at=T0 - timedelta(hours=1))
    for records in (log.records, [c, b, a]):
        tables = fold(records)
        assert _votes(tables, station(1))["candidate:aysel"] == 302
        assert [_status(tables, r.value["event_id"])[0] for r in (a, b, c)] == ["superseded", "superseded", "current"]


def test_retraction_removes_from_current_tables_but_keeps_history() -> None:
    log = small_election()
    target = next(r for r in log.records if r.record_type == "StationTally")
    retraction = log.retract(target, reason="station did not exist")
    tables = fold(log.records)
    assert _votes(tables, station(1)) == {}
    turnout = tables[t.STATION_TURNOUT].to_pylist()
    assert (ELECTION, station(1)) not in {(r["contest_id"], r["station_id"]) for r in turnout}
    # The referendum's tally at that station has its own key: retracting the other contest's leaves it.
    assert (REFERENDUM, station(1)) in {(r["contest_id"], r["station_id"]) for r in turnout}
    assert _status(tables, target.value["event_id"]) == ["retracted"]
    assert _status(tables, retraction.value["event_id"]) == ["current"]
    [corr] = [c for c in tables[t.CORRECTIONS].to_pylist() if c["kind"] == "retract"]
    assert corr["target_event_id"] == target.value["event_id"] and corr["key"] == target.key
    assert corr["target_record_type"] == "StationTally" and corr["reason"] == "station did not exist"


def test_retraction_removes_every_earlier_version_but_not_later_ones() -> None:
    log = Log()
    prelim = log.tally(station(1), muni("a"), VOTES, status="PRELIMINARY")
    final = log.tally(station(1), muni("a"), VOTES, status="FINAL")
    log.retract(final)
    assert fold(log.records)[t.STATION_TURNOUT].num_rows == 0  # the PRELIMINARY does not resurface
    _ = prelim
    again = log.tally(station(1), muni("a"), {"candidate:aysel": 1}, status="FINAL")
    tables = fold(log.records)
    assert tables[t.STATION_TURNOUT]["event_id"].to_pylist() == [again.value["event_id"]]


def test_retracting_a_retraction_restores_the_target() -> None:
    log = Log()
    tally = log.tally(station(1), muni("a"), VOTES)
    first = log.retract(tally)
    log.retract(first)
    tables = fold(log.records)
    assert _votes(tables, station(1)) == VOTES
    assert _status(tables, first.value["event_id"]) == ["retracted"]


def test_duplicates_count_once() -> None:
    log = small_election()
    tally = next(r for r in log.records if r.record_type == "StationTally")
    log.again(tally)  # a producer retry: same event_id, another offset
    log.records.append(log.records[-1])  # the same Kafka record read twice
    tables = fold(log.records)
    assert _votes(tables, station(1)) == VOTES
    # One row per event: the re-delivery is counted (deliveries 2), not repeated; the repeated read is not.
    assert _status(tables, tally.value["event_id"]) == ["current"]
    rows = [r for r in tables[t.EVENTS].to_pylist() if r["event_id"] == tally.value["event_id"]]
    assert [r["deliveries"] for r in rows] == [2]
    baseline = fold(small_election().records)
    assert tables[t.NATIONAL_SUMMARY].equals(baseline[t.NATIONAL_SUMMARY])
    assert tables[t.EVENTS].num_rows == baseline[t.EVENTS].num_rows


def test_ingesting_every_event_twice_changes_only_the_deliveries() -> None:
    log = small_election()
    baseline = fold(log.records)
    for record in list(log.records):
        log.again(record)
    twice = fold(log.records)
    assert twice[t.EVENTS].num_rows == baseline[t.EVENTS].num_rows
    assert set(twice[t.EVENTS]["deliveries"].to_pylist()) == {2}
    assert set(baseline[t.EVENTS]["deliveries"].to_pylist()) == {1}
    assert twice[t.EVENTS].drop_columns(["deliveries"]).equals(baseline[t.EVENTS].drop_columns(["deliveries"]))
    for name in TABLE_NAMES:
        if name != t.EVENTS:
            assert twice[name].equals(baseline[name]), name


def test_latest_version_rule() -> None:
    log = Log()
    prelim = log.tally(station(1), muni("a"), VOTES, status="PRELIMINARY")
    final = log.tally(station(1), muni("a"), {"candidate:aysel": 305, "candidate:babek": 205}, status="FINAL")
    # An older report read later in offset order: recorded_at decides, not the offset.
    late = log.tally(station(1), muni("a"), {"candidate:aysel": 1, "candidate:babek": 1}, status="PRELIMINARY",
                     recorded_at=T0 - timedelta(days=1))
    tables = fold(log.records)
    assert _votes(tables, station(1)) == {"candidate:aysel": 305, "candidate:babek": 205}
    assert tables[t.STATION_TURNOUT]["status"].to_pylist() == ["FINAL"]
    assert [_status(tables, r.value["event_id"])[0] for r in (prelim, final, late)] == [
        "outdated", "current", "outdated"]


def test_noncurrent_events_lists_events_rows_at_their_log_positions() -> None:
    log = small_election()
    first = next(r for r in log.records if r.record_type == "StationTally")
    log.tally(station(1), muni("a"), VOTES | {"candidate:aysel": 299}, supersedes=first, invalid=11)
    log.again(first)  # a second delivery of a superseded event is not listed twice
    log.retract(next(r for r in log.records if r.record_type == "StationTally" and r is not first))
    log.tally(station(1), muni("a"), VOTES, status="PRELIMINARY", recorded_at=T0 - timedelta(days=1))
    tables = fold(log.records)
    noncurrent = tables[t.NONCURRENT_EVENTS].to_pylist()
    events = {r["event_id"]: r for r in tables[t.EVENTS].to_pylist()}
    assert sorted(r["status"] for r in noncurrent) == ["outdated", "retracted", "superseded"]
    for row in noncurrent:
        event = events[row["event_id"]]
        assert [row[c] for c in t.LOG_ORDER] == [event[c] for c in t.LOG_ORDER]
    assert len({r["event_id"] for r in noncurrent}) == len(noncurrent)


def test_tallies_of_two_contests_at_one_station_both_stay_current() -> None:
    # The data loss of a per-station key: a second contest's tally at the same station used to get the same
    # key and so marked the first one outdated. Keys are per contest x station now (docs/contests.md, rule 2).
    log = Log()
    council = log.tally(station(1), muni("a"), VOTES, contest_id="local.az.a.2025-01-29")
    measure = log.tally(station(1), muni("a"), {"option:yes": 350, "option:no": 150},
                        contest_id="local.az.a.referendum.2025-01-29")
    assert council.key != measure.key
    tables = fold(log.records)
    assert _status(tables, council.value["event_id"]) == ["current"]
    assert _status(tables, measure.value["event_id"]) == ["current"]
    assert _votes(tables, station(1), "local.az.a.2025-01-29") == VOTES
    assert _votes(tables, station(1), "local.az.a.referendum.2025-01-29") == {"option:yes": 350, "option:no": 150}


def test_v2_tally_with_unknown_municipality_and_figures_folds() -> None:
    log = small_election()
    log.contest("local.az.x.2025-01-29", ["candidate:aysel"])
    tally = log.tally(station(9), None, {"candidate:aysel": 7}, contest_id="local.az.x.2025-01-29")
    tally.value.update(registered_voters=None, ballots_cast=None, invalid_ballots=None, overvotes=None)
    tables = fold(log.records)
    assert _status(tables, tally.value["event_id"]) == ["current"]
    assert _votes(tables, station(9), "local.az.x.2025-01-29") == {"candidate:aysel": 7}


def test_out_of_order_arrival_gives_the_same_tables() -> None:
    log = small_election()
    first = next(r for r in log.records if r.record_type == "StationTally")
    log.tally(station(1), muni("a"), VOTES | {"candidate:aysel": 299}, supersedes=first, invalid=11)
    log.again(log.records[3])
    shuffled = list(log.records)
    random.Random(7).shuffle(shuffled)
    a, b = fold(log.records), fold(reversed(shuffled))
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), name


def test_every_row_traces_to_the_event_that_made_it() -> None:
    tables = fold(small_election().records)
    events = {(r["topic"], r["partition"], r["offset"]): r for r in tables[t.EVENTS].to_pylist()}
    noncurrent = set(tables[t.NONCURRENT_EVENTS]["event_id"].to_pylist())
    for name in TABLE_NAMES:
        if name in (t.EVENTS, t.NONCURRENT_EVENTS, t.CORRECTIONS) or "event_id" not in tables[name].column_names:
            continue
        for row in tables[name].to_pylist():
            if row["event_id"] is None:  # national_summary metrics nobody reported
                continue
            event = events[(row["topic"], row["partition"], row["offset"])]
            assert event["event_id"] == row["event_id"] and event["event_id"] not in noncurrent, name


def test_two_folds_write_identical_parquet_bytes() -> None:
    log = small_election()
    shuffled = list(log.records)
    random.Random(3).shuffle(shuffled)
    a, b = fold(log.records, dataset="az-2025"), fold(shuffled, dataset="az-2025")
    assert list(a) == list(TABLE_NAMES)
    for name in TABLE_NAMES:
        assert a[name].schema.equals(t.SCHEMAS[name].with_metadata(a[name].schema.metadata))
        assert _parquet(a[name]) == _parquet(b[name]), name


def test_tables_are_in_their_declared_order_and_their_keys_are_unique() -> None:
    tables = fold(small_election().records)
    for name in TABLE_NAMES:
        table = tables[name]
        keys = [tuple(r[k] for k in t.KEYS[name]) for r in table.select(list(t.KEYS[name])).to_pylist()]
        order = [tuple(r[k] for k in t.ORDER[name]) for r in table.select(list(t.ORDER[name])).to_pylist()]
        assert order == sorted(order) and len(set(keys)) == len(keys), name
    # The history tables are in log order: topic by topic, each topic's partitions merged offset by offset.
    events = tables[t.EVENTS]
    topics = events["topic"].to_pylist()
    assert topics == sorted(topics) and len(set(topics)) > 1 and t.ORDER[t.EVENTS] != t.KEYS[t.EVENTS]
    for topic in set(topics):
        offsets = [o for o, tp in zip(events["offset"].to_pylist(), topics, strict=True) if tp == topic]
        assert offsets == sorted(offsets), topic


def test_national_summary_difference() -> None:
    log = small_election()
    log.summary({"REGISTERED_VOTERS": 3600, "TURNOUT": (0.5, "ABOUT")})  # a newer summary replaces the first
    tables = fold(log.records)
    rows = {r["metric"]: r for r in tables[t.NATIONAL_SUMMARY].to_pylist()}
    assert rows["REGISTERED_VOTERS"]["computed"] == 3500
    assert rows["REGISTERED_VOTERS"]["reported"] == 3600
    assert rows["REGISTERED_VOTERS"]["difference"] == -100
    assert rows["TURNOUT"]["qualifier"] == "ABOUT"
    assert rows["TURNOUT"]["difference"] == pytest.approx(1830 / 3500 - 0.5)
    assert rows["BALLOTS_CAST"]["reported"] is None and rows["BALLOTS_CAST"]["computed"] == 1830
    assert rows["STATIONS"]["computed"] == 4 and rows["MEMBERS_ELECTED"]["computed"] == 2
    assert rows["CANDIDATES_AGED_21_35_SHARE"]["computed"] == 0.5


def test_municipality_results_rank_and_seats() -> None:
    rows = fold(small_election().records)[t.MUNICIPALITY_RESULTS].to_pylist()
    a = [r for r in rows if r["municipality_id"] == muni("a")]
    assert [(r["candidate_id"], r["votes"], r["rank"], r["elected_by_votes"], r["elected"]) for r in a] == [
        ("candidate:aysel", 550, 1, True, True), ("candidate:babek", 300, 2, False, False)]
    assert all(r["election_id"] == ELECTION for r in rows)


def test_observations_status_and_counts() -> None:
    log = small_election()
    log.status("incident:carousel-1", "DISPUTED")
    log.status("incident:threat-1", "RETRACTED")
    tables = fold(log.records)
    status = {r["incident_id"]: r["status"] for r in tables[t.OBSERVATIONS].to_pylist()}
    assert status == {"incident:carousel-1": "DISPUTED", "incident:threat-1": "RETRACTED"}
    by_div = tables[t.OBSERVATIONS_BY_DIVISION].to_pylist()
    assert [(r["category"], r["incidents"], r["occurrences"]) for r in by_div] == [("CAROUSEL_VOTING", 1, 3)]


@pytest.mark.parametrize("parts", [2, 3, 5])
def test_merged_extractions_of_any_split_fold_to_the_same_bytes(parts: int) -> None:
    """Reading in several processes merges their extractions: the tables must not change by a byte."""
    from pipelines.fold.core import extract_all, fold_extracted
    from pipelines.fold.extract import merge

    log = small_election()
    first = next(r for r in log.records if r.record_type == "StationTally")
    log.tally(station(1), muni("a"), VOTES | {"candidate:aysel": 299}, supersedes=first, invalid=11)
    log.again(log.records[3])
    records = list(log.records)
    random.Random(parts).shuffle(records)
    shares = [records[i::parts] for i in range(parts)]
    merged = fold_extracted(merge([extract_all(share) for share in shares]), dataset="az-2025")
    whole = fold(log.records, dataset="az-2025")
    for name in TABLE_NAMES:
        assert _parquet(merged[name]) == _parquet(whole[name]), name


def test_split_deals_partitions_into_balanced_disjoint_parts() -> None:
    from pipelines.fold.read import split
    from pipelines.kafka.snapshot import Snapshot

    sizes = {("r", 0): 900, ("r", 1): 800, ("r", 2): 700, ("o", 0): 300, ("n", 0): 0, ("x", 0): 100}
    snap = Snapshot(start={tp: 5 for tp in sizes}, end={tp: 5 + n for tp, n in sizes.items()})
    parts = split(snap, 2)
    assert sorted(tp for p in parts for tp in p.end) == sorted(tp for tp, n in sizes.items() if n)  # empty left out
    assert sorted(p.total() for p in parts) == [1300, 1500]  # largest first, each to the lightest part
    assert all(p.start[tp] == 5 for p in parts for tp in p.start)
    assert len(split(snap, 10)) == 5 and len(split(snap, 1)) == 1
