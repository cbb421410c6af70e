"""The scope of a delta of tallies (``pipelines.fold.scope``): folding the scope alone gives the scope's rows of a
full fold, and no row outside the scope changes.

Hypothesis draws a history (tallies in four municipal contests and a referendum, corrections, retractions,
re-deliveries, incidents) and then a delta; for a delta of tallies alone it checks, table by table, against full
folds before and after the delta:

- the scoped fold's rows of the scope equal the full fold's (same values, same order);
- the full fold's rows outside the scope are the ones it had before the delta;
- the tables the scope does not name are unchanged, but national_summary.

A delta holding anything else must have no scope.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings

from pipelines.contract import vocabulary as v
from pipelines.fold import TABLE_NAMES
from pipelines.fold.core import extract_all, fold_extracted
from pipelines.fold.extract import extract, merge
from pipelines.fold.scope import SCOPED_BY, UNSCOPED, _valid, in_scope, restrict, tally_scope
from tests.support.factories import ELECTION, Log, muni, station
from tests.support.municipal import (
    DELTA,
    HISTORY,
    STATIONS,
    apply_delta,
    apply_history,
    council,
    municipal_election,
    tally,
)


def _rows(table: pa.Table, mask: pa.Array) -> list[dict]:
    return table.filter(mask).to_pylist()


def check_delta(log: Log, upto: int) -> float | None:
    """Check the scope of the records after ``upto``; its share of the tallies (None: no scope)."""
    ex = merge([extract(log.records[:upto]), extract(log.records[upto:])])
    new = np.arange(ex.envelope.num_rows) >= ex.envelope.num_rows - (len(log.records) - upto)
    before = fold_extracted(extract_all(log.records[:upto]))
    after = fold_extracted(extract_all(log.records))
    told: list[str] = []  # the callers of a memory-mapped extraction let go of its pages when told
    scope = tally_scope(ex, new, lambda: told.append("scope"))
    if scope is None:
        return None
    columns = ex.envelope.num_columns
    scoped = fold_extracted(restrict(ex, scope, lambda: told.append("restrict")))
    assert told.count("scope") >= 1 and told.count("restrict") > columns  # a column at a time
    for name in TABLE_NAMES:
        if name in UNSCOPED:
            continue
        if name not in SCOPED_BY:
            assert after[name].equals(before[name]), name
            continue
        inside = in_scope(name, after[name], scope)
        assert _rows(after[name], inside) == _rows(scoped[name], in_scope(name, scoped[name], scope)), name
        was_inside = in_scope(name, before[name], scope)
        assert _rows(after[name], pc.invert(inside)) == _rows(before[name], pc.invert(was_inside)), name
    return scope.share


@settings(max_examples=120, deadline=None)
@given(history=HISTORY, delta=DELTA)
def test_a_scoped_fold_gives_the_scope_s_rows_and_leaves_the_rest(history, delta) -> None:
    log = municipal_election()
    for op, n in history:
        apply_history(log, op, n)
    upto = len(log.records)
    for op, n in delta:
        apply_delta(log, op, n)
    if len(log.records) > upto:
        check_delta(log, upto)


def test_one_council_s_tally_scopes_one_contest_and_municipality() -> None:
    log = municipal_election()
    for n in range(STATIONS * 3):
        tally(log, n)
    upto = len(log.records)
    log.tally2(station(1), council("a"), {"candidate:a1": 5, "candidate:a2": 6}, municipality_id=muni("a"))
    ex = merge([extract(log.records[:upto]), extract(log.records[upto:])])
    new = np.arange(ex.envelope.num_rows) == ex.envelope.num_rows - 1
    scope = tally_scope(ex, new)
    assert scope is not None
    assert scope.contests.to_pylist() == [council("a")]
    assert scope.municipalities.to_pylist() == [muni("a")]
    assert 0 < scope.share < 0.5
    assert check_delta(log, upto) == scope.share


def test_a_stray_municipality_joins_its_councils_into_one_scope() -> None:
    log = municipal_election()
    for n in range(STATIONS):
        tally(log, n)
    # Station 3 (municipality b) reports municipality a: municipality_results of a sums b's council too.
    log.tally2(station(3), council("b"), {"candidate:b1": 5}, municipality_id=muni("a"))
    upto = len(log.records)
    log.tally2(station(1), council("a"), {"candidate:a1": 5, "candidate:a2": 6}, municipality_id=muni("a"))
    ex = merge([extract(log.records[:upto]), extract(log.records[upto:])])
    scope = tally_scope(ex, np.arange(ex.envelope.num_rows) >= ex.envelope.num_rows - 1)
    assert sorted(scope.contests.to_pylist()) == [council("a"), council("b")]
    check_delta(log, upto)


def _a_tally_of(log: Log, contest: str):
    return next(r for r in log.records if r.record_type == v.STATION_TALLY and r.value["contest_id"] == contest)


@pytest.mark.parametrize("link", ["event id", "key", "correction"])
def test_a_tally_linked_to_another_council_s_joins_their_scopes(link: str) -> None:
    log = municipal_election()
    for n in range(STATIONS):
        tally(log, n)
    a, b = _a_tally_of(log, council("a")), _a_tally_of(log, council("b"))
    fields = {k: x for k, x in b.value.items() if k not in ("event_id", "supersedes")}
    if link == "event id":  # council b's tally delivered again under the id of council a's: a duplicate
        log.emit(v.STATION_TALLY, b.key, {**fields, "registered_voters": 1}, event_id=a.value["event_id"])
    elif link == "key":  # council b's tally under council a's message key: a later version of a's
        log.emit(v.STATION_TALLY, a.key, {**fields, "registered_voters": 1})
    else:  # a correction in council b of council a's tally
        log.emit(v.STATION_TALLY, b.key, {**fields, "registered_voters": 1}, supersedes=a)
    upto = len(log.records)
    log.tally2(station(2), council("a"), {"candidate:a1": 5, "candidate:a2": 6}, municipality_id=muni("a"))
    ex = merge([extract(log.records[:upto]), extract(log.records[upto:])])
    scope = tally_scope(ex, np.arange(ex.envelope.num_rows) >= upto)
    assert sorted(scope.contests.to_pylist()) == [council("a"), council("b")]
    check_delta(log, upto)


@pytest.mark.parametrize("delta", ["retract", "incident", "correct-reference", "retracted-before-arrival"])
def test_a_delta_of_more_than_tallies_has_no_scope(delta: str) -> None:
    log = municipal_election()
    for n in range(STATIONS):
        tally(log, n)
    upto = len(log.records)
    if delta == "retract":
        log.retract(log.records[-1])
    elif delta == "incident":
        log.incident("incident:1", muni("a"))
    elif delta == "correct-reference":
        division = next(r for r in log.records if r.record_type == v.DIVISION_DECLARED)
        last = log.records[-1]
        log.emit(v.STATION_TALLY, last.key, {k: x for k, x in last.value.items() if k not in ("event_id", "supersedes")},
                 supersedes=division)
    else:
        later, key = "00000000-0000-0000-0000-00000000ffff", f"{ELECTION}|{council('a')}|{station(1)}"
        log.emit(v.RETRACTION, key, {"target_event_id": later, "target_key": key, "reason": "wrong"},
                 topic=log.records[-1].topic)
        upto = len(log.records)
        log.tally2(station(1), council("a"), {"candidate:a1": 1}, municipality_id=muni("a"), event_id=later)
    ex = merge([extract(log.records[:upto]), extract(log.records[upto:])])
    new = np.arange(ex.envelope.num_rows) >= upto
    assert tally_scope(ex, new) is None


def _places_kept(log: Log, upto: int) -> set[str]:
    ex = merge([extract(log.records[:upto]), extract(log.records[upto:])])
    scope = tally_scope(ex, np.arange(ex.envelope.num_rows) >= upto)
    assert scope is not None
    divisions = restrict(ex, scope).content[v.DIVISION_DECLARED]
    return {d for d, k in zip(divisions["division_id"].to_pylist(), divisions["kind"].to_pylist(), strict=True)
            if k == "POLLING_STATION"}


@pytest.mark.parametrize("inside", ["none", "parent", "member", "same id"])
def test_the_scope_reads_only_its_own_polling_places_unless_a_division_lies_inside_one(inside: str) -> None:
    log = municipal_election()
    if inside == "parent":
        log.division(f"{station(5)}/booth:1", "OTHER", station(5))
    elif inside == "member":
        log.division("ocd-division/country:az/ward:9", "OTHER", None, member_of=[station(6)])
    elif inside == "same id":
        log.division(station(7), "OTHER", None)
    for n in range(STATIONS * 2):
        tally(log, n)
    upto = len(log.records)
    log.tally2(station(1), council("a"), {"candidate:a1": 5, "candidate:a2": 6}, municipality_id=muni("a"))
    kept = _places_kept(log, upto)
    everything = {station(n) for n in range(1, STATIONS + 1)}
    assert kept == ({station(1), station(2)} if inside == "none" else everything)
    assert check_delta(log, upto) is not None


def test_validity_is_read_from_null_counts_where_a_chunk_is_all_or_nothing():
    chunks = [pa.array([None, None], pa.string()), pa.array(["a", "b", "c"]), pa.array(["d", None, "e"]),
              pa.array([], pa.string())]
    got = _valid(pa.chunked_array(chunks, pa.string()))
    assert got.tolist() == [False, False, True, True, True, True, False, True]
    assert _valid(pa.chunked_array([], pa.string())).tolist() == []
