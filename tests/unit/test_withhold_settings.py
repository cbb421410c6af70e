"""BALLOTSTREAM_GATE_WITHHOLD: validated eagerly against the gate's per-tally rules; a withheld failure does not
block the report."""

from __future__ import annotations

import pytest

from pipelines.errors import ConfigError
from pipelines.gate import ALL_CHECKS, CheckResult, GateReport
from pipelines.gate.checks import WITHHOLD_TABLES
from pipelines.settings import WITHHOLDABLE_RULES, Settings


def test_the_setting_lists_rules_and_accepts_spaces() -> None:
    s = Settings.from_env({"BALLOTSTREAM_GATE_WITHHOLD": "station_turnout.cast_le_registered, "
                                                         "station_results.votes_sum_eq_valid"})
    assert s.withheld_rules == {"station_turnout.cast_le_registered", "station_results.votes_sum_eq_valid"}
    assert Settings.from_env({}).withheld_rules == frozenset()


@pytest.mark.parametrize("rule", ["station_turnout.no_such_rule", "cast_le_registered",
                                  "national_summary.reported_matches_computed", "station_turnout.key_unique",
                                  "observations.division_id_resolves"])
def test_unknown_or_not_per_tally_rules_are_refused(rule: str) -> None:
    with pytest.raises(ConfigError, match=rf"BALLOTSTREAM_GATE_WITHHOLD: '{rule}' is not a gate rule that can "):
        Settings.from_env({"BALLOTSTREAM_GATE_WITHHOLD": f"station_turnout.cast_le_registered,{rule}"})


def test_every_withholdable_rule_is_a_blocking_gate_rule_of_a_tally_table() -> None:
    blocking = {s.qualified_name: s for s in ALL_CHECKS if s.blocking}
    assert WITHHOLDABLE_RULES <= set(blocking)
    assert {blocking[r].table for r in WITHHOLDABLE_RULES} == set(WITHHOLD_TABLES)


def test_a_withheld_failure_is_reported_but_does_not_block() -> None:
    failed = CheckResult("cast_le_registered", "station_turnout", "cast <= registered", True, False, 1, 10)
    assert not GateReport([failed], 0.001).passed
    held = GateReport([CheckResult(**{**failed.__dict__, "withheld": 1})], 0.001)
    assert held.passed and held.withheld_rules == {"station_turnout.cast_le_registered": 1}
    assert held.to_dict()["withheld"] == {"station_turnout.cast_le_registered": 1}
    assert held.summary_lines()[0].startswith("WARN ") and "(1 tallies withheld)" in held.summary_lines()[0]


def test_status_shows_the_latest_manifests_withheld_units_when_withholding_is_on() -> None:
    from pipelines.release.status import WITHHOLDING, withholding

    manifest = {"withheld": {"units": 2, "rules": {"station_turnout.cast_le_registered": 2}}}
    assert withholding(Settings(), manifest) == (0, WITHHOLDING)
    on = Settings(gate_withhold="station_turnout.cast_le_registered")
    units, text = withholding(on, manifest)
    assert units == 2 and "station_turnout.cast_le_registered: 2" in text
    assert withholding(on, None)[0] == 0 and withholding(on, {"withheld": {"units": 0, "rules": {}}})[0] == 0
