"""Synthetic elections: deterministic per seed, and faults.jsonl predicts exactly what the readers reject."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.generator.files import FAULTS, FILES
from pipelines.generator.synth import synthesize
from pipelines.ingest.checks import KnownIds, with_references
from pipelines.ingest.readers import Parsed, Rejected, read_path


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b = synthesize(tmp_path / "a", 300, seed=5, faults=0.05), synthesize(tmp_path / "b", 300, seed=5, faults=0.05)
    assert a.events == b.events
    for name in (*FILES, FAULTS):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    synthesize(tmp_path / "c", 300, seed=6)
    assert (tmp_path / "c" / "results.csv").read_bytes() != (tmp_path / "a" / "results.csv").read_bytes()


def test_clean_synth_is_all_valid(tmp_path: Path) -> None:
    synthesize(tmp_path, 500, seed=1)
    known = KnownIds()
    items = [i for n in FILES for i in with_references(read_path(tmp_path / n), known)]
    assert items and not [i for i in items if isinstance(i, Rejected)]


def test_faults_match_rejections_line_by_line(tmp_path: Path) -> None:
    report = synthesize(tmp_path, 2000, seed=3, faults=0.03)
    faults = [json.loads(x) for x in (tmp_path / FAULTS).read_text().splitlines()]
    kinds = {f["fault"] for f in faults}
    assert {"correction", "retraction", "duplicate", "malformed_json", "malformed_csv", "negative_count",
            "invalid_id", "unknown_enum_symbol", "unknown_reference"} <= kinds, report.faults
    known = KnownIds()
    rejected: dict[tuple[str, int], str] = {}
    accepted: set[tuple[str, int]] = set()
    for name in FILES:
        for item in with_references(read_path(tmp_path / name), known):
            where = (Path(item.file).name, item.line)
            if isinstance(item, Rejected):
                assert where not in rejected
                rejected[where] = item.reason_code
            else:
                accepted.add(where)
    expected = {(f["file"], f["line"]): f["reason_code"] for f in faults if f["expect"] == "dead_letter"}
    assert rejected == expected
    assert {(f["file"], f["line"]) for f in faults if f["expect"] == "accepted"} <= accepted


def test_corrections_supersede_real_tally_ids(tmp_path: Path) -> None:
    synthesize(tmp_path, 400, seed=9, faults=0.1)
    ids = {i.value["event_id"] for i in read_path(tmp_path / "results.csv") if isinstance(i, Parsed)}
    fixes = [i.value for i in read_path(tmp_path / "results.jsonl")
             if isinstance(i, Parsed) and i.record_type == "StationTally" and i.value["supersedes"]]
    assert fixes and all(f["supersedes"]["event_id"] in ids for f in fixes)
    assert all(sum(v["votes"] for v in f["votes"]) == f["valid_ballots"] for f in fixes)
