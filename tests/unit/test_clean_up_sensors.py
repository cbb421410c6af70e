"""The clean-up sensors remove an ended publish run's staging folder and step outputs, and nothing else."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from dagster_project import keys
from dagster_project.automation import clean_up_sensors
from dagster_project.io import run_folder
from dagster_project.resources import BallotstreamResource
from pipelines.kafka.snapshot import Snapshot
from pipelines.release.pipeline import staging_folder


@dg.op
def _ends() -> int:
    return 1


@dg.job
def _a_run() -> None:
    _ends()


def _leftovers(settings, run_id: str) -> list[Path]:
    """What a run launched from the UI leaves: its staging folder and its step outputs."""
    folders = [staging_folder(settings, Snapshot(start={("t", 0): 0}, end={("t", 0): 5}), run_id),
               run_folder(run_id) / "steps"]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "a.parquet").write_bytes(b"x")
    return folders


@pytest.mark.parametrize("sensor", clean_up_sensors, ids=lambda s: s.name)
def test_an_ended_run_leaves_nothing_behind(sensor, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    resource = BallotstreamResource(staging_dir=str(tmp_path / "staging"))
    instance = dg.DagsterInstance.ephemeral()
    ended = _a_run.execute_in_process(instance=instance)
    other = _a_run.execute_in_process(instance=instance)  # another run, still going: its folders stay
    mine, theirs = _leftovers(resource.settings(), ended.run_id), _leftovers(resource.settings(), other.run_id)
    context = dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_instance=instance,
                                                 dagster_run=ended.dagster_run,
                                                 dagster_event=ended.get_run_success_event(),
                                                 resources={"ballotstream": resource})
    sensor(context)
    assert [f.exists() for f in mine] == [False, False]
    assert [f.exists() for f in theirs] == [True, True]


def test_there_is_a_clean_up_sensor_for_every_way_a_run_ends() -> None:
    assert set(keys.CLEAN_UP_SENSORS) == {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                                          dg.DagsterRunStatus.CANCELED}
    assert sorted(s.name for s in clean_up_sensors) == sorted(keys.CLEAN_UP_SENSORS.values())
