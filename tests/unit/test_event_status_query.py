"""docs/releases.md's query for every event with its status runs on a release's two tables and gives the status
the fold resolved: an event's status is the ``noncurrent_events`` row, else current."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipelines.fold import fold
from pipelines.fold import tables as t
from tests.support.factories import muni, small_election, station

DOC = Path(__file__).resolve().parents[2] / "docs" / "releases.md"


def _query() -> str:
    [sql] = re.findall(r"To see every event with its status:\n\n```sql\n(.*?)```", DOC.read_text(), flags=re.S)
    return sql


def test_the_documented_query_gives_each_event_its_resolved_status(tmp_path):
    log = small_election()
    first = next(r for r in log.records if r.record_type == "StationTally")
    fixed = log.tally(station(1), muni("a"), {"candidate:aysel": 299, "candidate:babek": 200}, supersedes=first)
    gone = next(r for r in log.records if r.record_type == "StationTally" and r not in (first, fixed))
    retraction = log.retract(gone)
    tables = fold(log.records)
    for name in (t.EVENTS, t.NONCURRENT_EVENTS):  # the files a reader downloads, named as the query names them
        pq.write_table(tables[name], tmp_path / f"{name}.parquet")
    con = duckdb.connect()
    for name in (t.EVENTS, t.NONCURRENT_EVENTS):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{tmp_path / name}.parquet')")
    status = dict(con.execute(f"SELECT event_id, status FROM ({_query()})").fetchall())
    assert len(status) == tables[t.EVENTS].num_rows
    assert status[first.value["event_id"]] == "superseded" and status[fixed.value["event_id"]] == "current"
    assert status[gone.value["event_id"]] == "retracted" and status[retraction.value["event_id"]] == "current"
    assert sum(s != "current" for s in status.values()) == tables[t.NONCURRENT_EVENTS].num_rows == 2
