"""A synthetic election of five contests per station through ingest and the one publish path (the Dagster job):
nothing rejected, the gate passes, and the released contest tables agree with sums taken straight from the
generated files, winners included."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project.run import run_publish
from pipelines.generator.synth import synthesize
from pipelines.ingest.readers import Parsed, read_path
from pipelines.ingest.run import ingest
from pipelines.release.s3 import s3_client

STATIONS, CONTESTS, SELECTIONS = 60, 5, 4
METHOD_COLUMNS = {"ELECTION_DAY": "votes_election_day", "EARLY": "votes_early", "MAIL": "votes_mail"}


def _table(settings: Any, manifest: dict[str, Any], name: str) -> list[dict[str, Any]]:
    key = f"{settings.dataset}/releases/{manifest['release_id']}/{manifest['tables'][name]['path']}"
    body = s3_client(settings).get_object(Bucket=settings.release_bucket, Key=key)["Body"].read()
    return pq.read_table(pa.py_buffer(body)).to_pylist()


def _from_files(files: list[Path]) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[str, int]]]:
    """Declared contests, and per (contest, selection): votes and votes per method, summed over the tallies."""
    contests: dict[str, dict[str, Any]] = {}
    sums: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in files:
        for item in read_path(path):
            assert isinstance(item, Parsed)
            if item.record_type == "ContestDeclared":
                contests[item.value["contest_id"]] = item.value
            elif item.record_type == "StationTally":
                for v in item.value["votes"]:
                    sums[(item.value["contest_id"], v["candidate_id"])]["votes"] += v["votes"]
                    for m in v["by_method"]:
                        sums[(item.value["contest_id"], v["candidate_id"])][m["method"]] += m["votes"]
    return contests, sums


def test_synth_contests_publish_with_the_gate_passing(isolated, tmp_path):
    synthesize(tmp_path, STATIONS, seed=7, contests=CONTESTS, selections=SELECTIONS)
    files = sorted(p for p in tmp_path.iterdir() if p.name != "faults.jsonl")
    assert ingest(files, isolated).rejected_total == 0

    outcome = run_publish(isolated)
    assert outcome.manifest is not None and outcome.report is not None and outcome.report.passed
    declared, sums = _from_files(files)

    contests = {r["contest_id"]: r for r in _table(isolated, outcome.manifest, "contests")}
    assert set(contests) == set(declared)
    assert {r["kind"] for r in contests.values()} == {"CANDIDATE", "PARTY_LIST", "BALLOT_MEASURE"}
    results = [r for r in _table(isolated, outcome.manifest, "contest_results") if r["level"] == "contest"]
    got = {(r["contest_id"], r["selection_id"]): r for r in results}
    assert set(got) == set(sums)
    for key, want in sums.items():
        assert got[key]["votes"] == want["votes"]
        for method, column in METHOD_COLUMNS.items():
            assert got[key][column] == (want[method] if method in want else None)

    summary = {r["contest_id"]: r for r in _table(isolated, outcome.manifest, "contest_summary")}
    assert set(summary) == set(declared)
    for cid, contest in declared.items():
        ranked = sorted(((-s["votes"], sel) for (c, sel), s in sums.items() if c == cid))
        seats = 1 if contest["kind"] == "BALLOT_MEASURE" else contest["number_elected"]
        assert summary[cid]["winners"] == [sel for _, sel in ranked[:seats]], cid
        assert summary[cid]["total_votes"] == -sum(v for v, _ in ranked)
        # Every station of the district reports: all stations for national contests.
        if contest["district_id"] == "ocd-division/country:xs":
            assert summary[cid]["stations_reporting"] == summary[cid]["stations_expected"] == STATIONS
