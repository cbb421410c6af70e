"""Real OpenElections files of two states through ``ballotstream ingest --format openelections`` and the publish
job (Georgia, Pennsylvania, Texas): the released ``contest_results`` per county equal the sums computed straight from the source files.

Needs the v2 schemas (ContestDeclared, StationTally v2...) and the contest tables of docs/contests.md.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from dagster_project.run import run_publish
from pipelines.cli import cli
from pipelines.release.s3 import s3_client
from tests.support.openelections import PSEUDO, expected_votes

DATA = Path(__file__).resolve().parents[1] / "data" / "openelections"
STATES = ("ga", "pa", "tx")


def _table(settings, manifest, name):
    key = f"{settings.dataset}/releases/{manifest['release_id']}/{manifest['tables'][name]['path']}"
    body = s3_client(settings).get_object(Bucket=settings.release_bucket, Key=key)["Body"].read()
    return pq.read_table(pa.py_buffer(body)).to_pylist()


def test_released_county_results_equal_the_source_files(isolated):
    files = sorted(p for s in STATES for p in (DATA / s).glob("*.csv"))
    env = {"BALLOTSTREAM_TOPIC_PREFIX": isolated.topic_prefix}
    result = CliRunner().invoke(cli, ["ingest", "--format", "openelections", *map(str, files)], env=env)
    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.output and "skipped county-total rows" in result.output
    again = CliRunner().invoke(cli, ["ingest", "--format", "openelections", *map(str, files)], env=env)
    assert again.exit_code == 0, again.output

    outcome = run_publish(isolated)
    assert outcome.manifest is not None
    rows = _table(isolated, outcome.manifest, "contest_results")
    got: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in rows:
        if r["level"] == "division" and "/county:" in r["unit_id"] and "/precinct:" not in r["unit_id"]:
            selection = "party:*" if r["selection_id"].startswith("party:") else r["selection_id"]
            got[(r["contest_id"], r["unit_id"], selection)] += r["votes"]
    expected: dict[tuple[str, str, str], int] = {}
    for path in files:
        precincts, _ = expected_votes(path)
        expected.update({k: v for k, v in precincts.items() if k[2] not in PSEUDO})
    assert dict(got) == expected
    # Re-ingesting created nothing new: one tally per contest × precinct made it into the tables.
    stations = [r for r in rows if r["level"] == "station"]
    assert len({(r["contest_id"], r["unit_id"], r["selection_id"]) for r in stations}) == len(stations)
