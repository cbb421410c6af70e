"""The Dagster definitions load, and their asset keys and check names are exactly the declared ones, so a
rename shows up here in review."""

from __future__ import annotations

from dagster_project import keys
from dagster_project.definitions import defs
from pipelines.fold.tables import TABLE_NAMES


def test_definitions_load_with_one_job_sensor_and_schedule():
    assert defs.resolve_job_def(keys.PUBLISH_JOB) is not None
    assert defs.resolve_sensor_def("offsets_moved") is not None
    assert defs.resolve_schedule_def("hourly_publish") is not None


def test_asset_keys_are_one_per_table_plus_snapshot_and_release():
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {keys.STAGED, keys.RELEASE, *keys.TABLES.values()}
    assert {k.path[-1] for k in keys.TABLES.values()} == set(TABLE_NAMES)


def test_every_table_has_one_blocking_gate_check():
    graph = defs.resolve_asset_graph()
    checks = {(c.asset_key, c.name) for c in graph.asset_check_keys}
    assert checks == {(keys.TABLES[t], keys.gate_check_name(t)) for t in TABLE_NAMES}
    for check_key in graph.asset_check_keys:
        assert graph.get_check_spec(check_key).blocking


def test_release_depends_on_every_table():
    graph = defs.resolve_asset_graph()
    parents = graph.get(keys.RELEASE).parent_keys
    assert set(keys.TABLES.values()) <= parents
