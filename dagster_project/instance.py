"""The local Dagster instance: its ``dagster.yaml`` (written once, here) and an event log that keeps its SQLite
connections open.

Dagster's SQLite event log opens, commits and closes a connection for every event; closing the last connection
of a WAL database checkpoints it, with fsyncs. A publish records about 450 events (each gate rule is an asset
check, every step several events) and on this class of disk that cost 5-15 s per publish, whatever the size of
the election: more than the whole budget of an election-night update. ``PooledSqliteEventLogStorage`` keeps one
connection per database (``synchronous=NORMAL``: in WAL mode a power cut may lose the last events, never corrupt
the file) and checkpoints a run's database at most every ``CHECKPOINT_EVERY_S`` while it is written, because the
webserver notices new events of a running run when that file changes.

Usage: ``python -m dagster_project.instance DAGSTER_HOME`` writes ``DAGSTER_HOME/dagster.yaml``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import create_db_conn_string
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

# A run's database is checkpointed (its events become visible as a change of its file) at most this often.
CHECKPOINT_EVERY_S = 1.0
# Databases kept open at once: a long-lived webserver reads many runs; the rest are opened again when needed.
OPEN_DATABASES = 16
BUSY_TIMEOUT_S = 30  # Dagster's own, for another process holding the write lock
MODULE = "dagster_project.instance"  # this module's name, also when it runs as ``python -m``


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with one open connection per database instead of one per event."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._checkpointed: dict[str, float] = {}
        self._tables_seen: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        # Called with ``_db_lock`` held (``_connect``): no other thread uses an engine this evicts.
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = sa.create_engine(create_db_conn_string(self._base_dir, shard), poolclass=StaticPool,
                                      connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})
            sa.event.listen(engine, "connect", _normal_sync)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_DATABASES:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    def has_table(self, table_name: str) -> bool:
        # The base class opens a database connection of its own for every answer, and asks before storing each
        # asset check event: a publish asked 200 times. A table that exists stays (only ``wipe`` drops them); one
        # that does not may be added by a migration in another process, so that answer is never kept.
        if table_name not in self._tables_seen and super().has_table(table_name):
            self._tables_seen.add(table_name)
        return table_name in self._tables_seen

    @contextlib.contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # The base class holds this lock for the whole use of a connection too; with one connection per database
        # it is also what keeps two threads (the webserver's watcher and a query) off the same connection.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME and time.monotonic() - self._checkpointed.get(shard, 0.0) >= \
                        CHECKPOINT_EVERY_S:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                    self._checkpointed[shard] = time.monotonic()

    def close_databases(self) -> None:
        """Close every open connection (the last one closed checkpoints its database); under ``_db_lock``, so never
        one a thread (the webserver's watcher) is using."""
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()
            self._checkpointed.clear()

    def wipe(self) -> None:
        self.close_databases()  # its files are deleted: no connection may outlive them
        self._tables_seen.clear()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()  # the watchers stop first: none of them reads through a connection closed below
        self.close_databases()


def _normal_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def instance_yaml(home: Path) -> str:
    """The ``dagster.yaml`` of a local instance in ``home``: SQLite storage with the pooled event log (in the
    folder Dagster's default uses), telemetry off."""
    return (
        "telemetry:\n  enabled: false\n"
        "event_log_storage:\n"
        f"  module: {MODULE}\n"
        f"  class: {PooledSqliteEventLogStorage.__name__}\n"
        "  config:\n"
        f"    base_dir: {str(Path(home).resolve() / 'history' / 'runs')!r}\n"
    )


def write_instance_yaml(home: Path) -> Path:
    """Write ``home/dagster.yaml`` (``instance_yaml``) atomically; return its path."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    tmp = path.with_name(f".dagster.yaml.{os.getpid()}")
    tmp.write_text(instance_yaml(home))
    tmp.replace(path)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m dagster_project.instance DAGSTER_HOME")
    print(write_instance_yaml(Path(sys.argv[1])))  # noqa: T201
