"""The local instance's event log (dagster_project/instance.py): every event stored and readable by another
instance (the webserver) while the publisher's connections stay open, and a running run's file changes so the
webserver's watcher sees new events."""

from __future__ import annotations

import threading
import time

import dagster as dg
import yaml

from dagster_project import instance as local


@dg.op
def _log_a_few(context):  # noqa: ANN001 (Dagster reads the hint, and a string one it refuses)
    for i in range(5):
        context.log.info(f"line {i}")
    return 5


@dg.job
def _small_job() -> None:
    _log_a_few()


def _instance(home) -> dg.DagsterInstance:
    local.write_instance_yaml(home)
    return dg.DagsterInstance.from_config(str(home))


def test_the_yaml_names_this_module_and_the_default_event_log_folder(tmp_path):
    config = yaml.safe_load(local.instance_yaml(tmp_path))
    assert config["telemetry"] == {"enabled": False}
    assert config["event_log_storage"]["module"] == local.PooledSqliteEventLogStorage.__module__
    assert config["event_log_storage"]["config"]["base_dir"] == str(tmp_path.resolve() / "history" / "runs")


def test_every_event_is_readable_by_another_instance_while_connections_stay_open(tmp_path):
    with _instance(tmp_path) as publisher:
        assert isinstance(publisher.event_log_storage, local.PooledSqliteEventLogStorage)
        result = _small_job.execute_in_process(instance=publisher)
        assert result.success
        written = publisher.all_logs(result.run_id)
        with dg.DagsterInstance.from_config(str(tmp_path)) as webserver:  # another reader of the same files
            read = webserver.all_logs(result.run_id)
            assert [e.message for e in read] == [e.message for e in written]
            assert sum("line " in e.message for e in read) == 5
            assert webserver.get_run_by_id(result.run_id).is_success
    # Closed and opened again: nothing was only in memory.
    with dg.DagsterInstance.from_config(str(tmp_path)) as again:
        assert len(again.all_logs(result.run_id)) == len(written)


def test_a_running_runs_file_changes_so_a_watcher_sees_new_events(tmp_path, monkeypatch):
    # Without the checkpoint (CHECKPOINT_EVERY_S = 1e9) the watcher sees nothing until the publisher closes.
    monkeypatch.setattr(local, "CHECKPOINT_EVERY_S", 0.0)
    with _instance(tmp_path) as publisher:
        run = publisher.create_run_for_job(_small_job)
        publisher.report_engine_event("first", run)
        seen = threading.Event()
        with dg.DagsterInstance.from_config(str(tmp_path)) as webserver:
            webserver.event_log_storage.watch(run.run_id, None, lambda *_: seen.set())
            try:
                time.sleep(0.5)  # the watcher is scheduled on its own thread
                publisher.report_engine_event("second", run)  # the connection stays open: only a checkpoint shows it
                assert seen.wait(10), "the watcher saw no change of the run's database"
            finally:
                webserver.event_log_storage.end_watch(run.run_id, next(iter(
                    webserver.event_log_storage._watchers[run.run_id])))


def test_a_table_found_is_not_looked_up_again_and_one_missing_is(tmp_path, monkeypatch):
    lookups: list[str] = []
    base = local.SqliteEventLogStorage.has_table

    def counted(self, table_name):  # noqa: ANN001, ANN202
        lookups.append(table_name)
        return base(self, table_name)

    monkeypatch.setattr(local.SqliteEventLogStorage, "has_table", counted)
    with _instance(tmp_path) as publisher:
        storage = publisher.event_log_storage
        assert all(storage.has_table("asset_check_executions") for _ in range(3))
        assert not any(storage.has_table("no_such_table") for _ in range(3))
        assert lookups == ["asset_check_executions"] + ["no_such_table"] * 3
        storage.wipe()  # drops and creates the tables again: what was seen is asked again
        assert storage.has_table("asset_check_executions")
        assert lookups.count("asset_check_executions") == 2
