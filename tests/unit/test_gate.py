"""Gate: a good dataset passes every check; each mutation makes exactly its own check fail."""

from __future__ import annotations

import json

import pytest

from pipelines.errors import ConfigError, GateFailed
from pipelines.fold import fold
from pipelines.fold import tables as t
from pipelines.gate import ALL_CHECKS, GateReport, checks_for_table, run_gate, run_table_checks
from pipelines.gate import names as n
from tests.support.factories import small_election
from tests.support.gate_mutations import MUTATIONS, Tables, edit, row_where


@pytest.fixture(scope="module")
def good() -> Tables:
    return fold(small_election().records)


@pytest.fixture(scope="module")
def good_report(good: Tables) -> GateReport:
    return run_gate(good)


def test_good_dataset_passes_every_check(good_report: GateReport) -> None:
    failed = [c.qualified_name for c in good_report.checks if not c.success]
    assert failed == [] and good_report.passed
    assert {(c.table, c.name) for c in good_report.checks} == {(s.table, s.name) for s in ALL_CHECKS}
    good_report.raise_if_failed()


@pytest.mark.parametrize("target", list(MUTATIONS), ids=lambda k: f"{k[0]}.{k[1]}")
def test_each_mutation_fails_exactly_its_check(good: Tables, target: tuple[str, str]) -> None:
    report = run_gate(MUTATIONS[target](good))
    failed = [(c.table, c.name) for c in report.checks if not c.success]
    assert failed == [target]
    result = report.result(*target)
    assert result.failing_rows >= 1 and 1 <= len(result.sample) <= 10
    id_column = t.EVENT_ID_COLUMNS[target[0]]
    for row in result.sample:
        if id_column is not None:
            assert row[id_column], row  # every failing sample row names the event it came from
        else:  # an aggregate: traceable through its key
            assert set(t.KEYS[target[0]]) <= set(row), row
    assert not report.passed
    with pytest.raises(GateFailed, match=f"{target[0]}.{target[1]}"):
        report.raise_if_failed()


def _summary_ok(tables: Tables, tolerance: float = 0.01) -> bool:
    results = run_table_checks(t.NATIONAL_SUMMARY, tables[t.NATIONAL_SUMMARY], tables, tolerance=tolerance)
    return [r.success for r in results if r.name == n.REPORTED_MATCHES_COMPUTED] == [True]


@pytest.mark.parametrize("reported, qualifier, tolerance, ok", [
    (1840.0, "EXACT", 0.01, True),       # 0.5% off, within the stated tolerance
    (1840.0, "EXACT", 0.001, False),     # ... but not within a stricter one
    (1900.0, "ABOUT", 0.001, True),      # "about": within the 5% approximate band either way
    (2000.0, "ABOUT", 0.001, False),     # 8.5% off
    (1900.0, "ALMOST", 0.001, True),     # "almost 1900": 1830 is below and within the band
    (1800.0, "ALMOST", 0.001, False),    # "almost 1800" cannot be 1830
    (1000.0, "MORE_THAN", 0.001, True),  # "more than 1000"
    (2000.0, "MORE_THAN", 0.001, False),
])
def test_tolerance_and_qualifiers(good: Tables, reported: float, qualifier: str, tolerance: float, ok: bool) -> None:
    row = row_where(good, t.NATIONAL_SUMMARY, metric="BALLOTS_CAST")  # 1830 computed
    edited = edit(good, t.NATIONAL_SUMMARY, row, reported=reported, qualifier=qualifier)
    assert _summary_ok(edited, tolerance) is ok


def test_report_document(good: Tables) -> None:
    report = run_gate(MUTATIONS[(t.STATION_TURNOUT, n.CAST_LE_REGISTERED)](good))
    doc = json.loads(report.to_json())
    assert doc["passed"] is False and doc["blocking_failed"] == ["station_turnout.cast_le_registered"]
    [check] = [c for c in doc["checks"] if not c["success"]]
    assert check["table"] == "station_turnout" and check["rule"] and check["failing_rows"] == 1
    assert check["sample"][0]["event_id"] and check["sample"][0]["offset"] == 0
    lines = report.summary_lines()
    assert lines[0].startswith("FAIL station_turnout.cast_le_registered") and "FAILED" in lines[-1]


def test_per_table_api(good: Tables) -> None:
    names = [s.name for s in checks_for_table(t.STATION_TURNOUT)]
    assert n.CAST_LE_REGISTERED in names and len(names) == len(set(names))
    results = run_table_checks(t.STATION_TURNOUT, good[t.STATION_TURNOUT], good)
    assert [r.name for r in results] == names and all(r.success for r in results)
    with pytest.raises(ConfigError):
        run_table_checks(t.CANDIDATES, good[t.CANDIDATES], {})
    with pytest.raises(ConfigError):
        checks_for_table("nope")


def test_context_needs_names_only_the_columns_checks_read():
    from pipelines.gate.checks import context_needs

    assert context_needs(t.STATION_RESULTS) == {
        t.CANDIDATES: ("candidate_id",), t.DIVISIONS: ("division_id",),
        t.STATION_TURNOUT: ("contest_id", "election_id", "station_id", "valid_ballots")}
    assert t.DIVISIONS not in context_needs(t.DIVISIONS)  # parent_id resolves within the table itself
    assert context_needs(t.EVENTS) == {}


def test_every_table_passes_its_checks_with_only_the_context_it_needs():
    from pipelines.gate.checks import OWN_COLUMNS, context_needs

    tables = fold(small_election().records)
    for name in t.TABLE_NAMES:
        context = {o: tables[o].select(list(cols)) for o, cols in context_needs(name).items()}
        own = tables[name].select(list(OWN_COLUMNS[name])) if name in OWN_COLUMNS else tables[name]
        results = run_table_checks(name, own, context)
        assert results and all(r.success for r in results), (name, [r.name for r in results if not r.success])


def _turnout_results(tables: Tables) -> dict[str, bool]:
    results = run_table_checks(t.STATION_TURNOUT, tables[t.STATION_TURNOUT], tables)
    return {r.name: r.success for r in results}


def test_a_rule_with_an_unknown_input_does_not_apply(good: Tables) -> None:
    row = row_where(good, t.STATION_TURNOUT, contest_id="local.az.constitution.2025-01-29")
    # Undervotes reported, overvotes not (blank votes are): the sum is unknown, so the rule does not apply.
    assert _turnout_results(edit(good, t.STATION_TURNOUT, row, undervotes=200))[n.VOTES_LE_CAST_TIMES_ALLOWED]
    # Cast unknown: neither cast <= registered nor valid + invalid = cast can be judged, and neither fails.
    unknown_cast = edit(good, t.STATION_TURNOUT, row, ballots_cast=None, registered_voters=1)
    assert all(_turnout_results(unknown_cast).values())
    # A national figure no station reports is not compared with what the source reported.
    summary_row = row_where(good, t.NATIONAL_SUMMARY, metric="REGISTERED_VOTERS")
    assert _summary_ok(edit(good, t.NATIONAL_SUMMARY, summary_row, computed=None, reported=4000.0))


def test_gx_judges_every_check_then_counts_only_the_failed_ones(good: Tables,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # BOOLEAN_ONLY first (no metric of unexpected values for checks that pass), then the failed check alone in the
    # format that counts and samples its rows: the same figures as one validation of every check in that format.
    from pipelines.gate import runner
    from pipelines.gate.frames import check_frame

    table, failing = t.STATION_TURNOUT, n.CAST_LE_REGISTERED
    tables = MUTATIONS[(table, failing)](good)
    specs = checks_for_table(table)
    calls: list[tuple[list[str], str]] = []
    real = runner._validate

    def validate(context, name, judged, frame, result_format):
        calls.append(([s.name for s in judged], result_format["result_format"]))
        return real(context, name, judged, frame, result_format)

    monkeypatch.setattr(runner, "_validate", validate)
    results = run_table_checks(table, tables[table], tables)
    assert calls == [([s.name for s in specs], "BOOLEAN_ONLY"), ([failing], "SUMMARY")]
    frame = check_frame(table, tables[table], tables, 0.01)
    _, once = real(runner.new_context(), table, specs, frame, runner._RESULT_FORMAT)
    for result in results:
        assert result.success == once[result.name].success
        assert result.failing_rows == (once[result.name].result.get("unexpected_count") or 0)
    assert [r.name for r in results if not r.success] == [failing] and results[0].checked_rows == frame.num_rows
