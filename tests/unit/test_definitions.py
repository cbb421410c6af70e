"""The Dagster definitions load, and their asset keys and check names are exactly the declared ones, so a
rename shows up here in review."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg

from dagster_project import keys
from dagster_project.definitions import defs
from dagster_project.reads import steps_in_this_process
from pipelines.fold.tables import TABLE_NAMES
from pipelines.gate import ALL_CHECKS


def test_definitions_load_with_one_job_sensor_and_schedule():
    assert defs.resolve_job_def(keys.PUBLISH_JOB) is not None
    assert defs.resolve_sensor_def("offsets_moved") is not None
    assert defs.resolve_schedule_def("hourly_publish") is not None


def test_asset_keys_are_topics_events_read_tables_snapshot_and_release():
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {
        *keys.TOPICS.values(), keys.READ, keys.STAGED, keys.RELEASE, *keys.TABLES.values()}
    assert {k.path[-1] for k in keys.TABLES.values()} == set(TABLE_NAMES)
    for topic in keys.TOPICS.values():
        assert graph.get(topic).is_observable


def test_one_asset_check_per_gate_rule_blocking_exactly_when_the_rule_blocks():
    graph = defs.resolve_asset_graph()
    checks = {(c.asset_key, c.name) for c in graph.asset_check_keys}
    assert checks == {(keys.TABLES[spec.table], spec.name) for spec in ALL_CHECKS}
    blocking = {(spec.table, spec.name): spec.blocking for spec in ALL_CHECKS}
    assert not all(blocking.values()) and any(blocking.values())  # both kinds exist
    for check_key in graph.asset_check_keys:
        assert graph.get_check_spec(check_key).blocking is blocking[(check_key.asset_key.path[-1], check_key.name)]


def test_tables_are_downstream_of_the_topics_through_the_read_and_release_of_every_table():
    graph = defs.resolve_asset_graph()
    assert graph.get(keys.READ).parent_keys == set(keys.TOPICS.values())
    assert graph.get(keys.TABLES["events"]).parent_keys == {keys.READ}
    assert set(keys.TABLES.values()) <= graph.get(keys.RELEASE).parent_keys


def test_the_read_is_a_plan_step_one_step_per_range_and_a_gather_step():
    job = defs.resolve_job_def(keys.PUBLISH_JOB)
    read = job.graph.node_named(keys.READ_NODE).definition
    assert {n.name for n in read.nodes} == {keys.PLAN_OP, keys.READ_RANGE_OP, keys.GATHER_OP}
    assert read.node_named(keys.PLAN_OP).definition.output_def_named("ranges").is_dynamic


def test_the_checkpoint_is_loaded_ahead_only_when_the_run_s_steps_share_its_process():
    def context(executor: dg.ExecutorDefinition, execution: dict | None = None) -> SimpleNamespace:
        return SimpleNamespace(job_def=SimpleNamespace(executor_def=executor),
                               run_config={"execution": execution} if execution is not None else {})

    job = defs.resolve_job_def(keys.PUBLISH_JOB)
    assert steps_in_this_process(context(job.as_ephemeral_job(resource_defs={}, input_values={}).executor_def))
    assert steps_in_this_process(context(dg.in_process_executor))
    assert steps_in_this_process(context(job.executor_def, {"config": {"in_process": {}}}))
    assert not steps_in_this_process(context(job.executor_def))  # the default: a process per step
    assert not steps_in_this_process(context(job.executor_def, {"config": {"multiprocess": {}}}))
    assert not steps_in_this_process(context(dg.multiprocess_executor))
