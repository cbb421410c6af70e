"""Two publish runs at once keep their step outputs apart: a run's release step loads its own staged snapshot,
never the one a concurrent run wrote last (Dagster's default IO manager keys values by asset alone)."""

from __future__ import annotations

import dagster as dg
import pytest

from dagster_project import keys
from dagster_project.io import RunScopedIOManager


def _write(io: RunScopedIOManager, run_id: str, value: object) -> None:
    io.handle_output(dg.build_output_context(run_id=run_id, asset_key=keys.STAGED), value)


def _read(io: RunScopedIOManager, run_id: str) -> object:
    upstream = dg.build_output_context(run_id=run_id, asset_key=keys.STAGED)
    return io.load_input(dg.build_input_context(upstream_output=upstream, asset_key=keys.STAGED))


def test_each_run_loads_what_it_wrote_even_when_another_run_wrote_later(tmp_path):
    io = RunScopedIOManager(base_dir=str(tmp_path))
    _write(io, "run-a", {"snapshot": "a"})
    _write(io, "run-b", {"snapshot": "b"})
    assert _read(io, "run-a") == {"snapshot": "a"}
    assert _read(io, "run-b") == {"snapshot": "b"}


def test_a_value_the_run_never_wrote_is_a_clear_failure(tmp_path):
    io = RunScopedIOManager(base_dir=str(tmp_path))
    _write(io, "run-a", 1)
    with pytest.raises(dg.Failure, match="was not materialized in this run"):
        _read(io, "run-c")


def test_outputs_of_the_read_steps_are_kept_apart_by_run_step_and_range(tmp_path):
    """The read's steps have no asset key: their outputs are found by step key, output name and mapping key."""
    io = RunScopedIOManager(base_dir=str(tmp_path))
    step = f"{keys.READ_NODE}.{keys.PLAN_OP}"

    def out(run_id: str, mapping_key: str) -> dg.OutputContext:
        return dg.build_output_context(run_id=run_id, step_key=step, name="ranges", mapping_key=mapping_key)

    for run_id in ("run-a", "run-b"):
        for key in ("range_0", "range_1"):
            io.handle_output(out(run_id, key), f"{run_id}/{key}")
    assert io.load_input(dg.build_input_context(upstream_output=out("run-a", "range_1"))) == "run-a/range_1"
    assert io.load_input(dg.build_input_context(upstream_output=out("run-b", "range_0"))) == "run-b/range_0"
    with pytest.raises(dg.Failure, match=f"{step} was not materialized in this run"):
        io.load_input(dg.build_input_context(upstream_output=out("run-c", "range_0")))
