"""Synthetic contests beyond the council: every station counts N contests, each tally consistent on its own and
with its station, every selection declared by its contest, and faults still predicted line by line."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from pipelines.contract.ids import contest_matches_election
from pipelines.generator.files import FAULTS, FILES
from pipelines.generator.synth import ELECTION_ID, synthesize
from pipelines.ingest.checks import KnownIds, with_references
from pipelines.ingest.readers import Parsed, Rejected, read_path

COUNCIL = re.compile(r"local\.xs\.m\d+\.2030-05-05")


def _parsed(out: Path) -> list[Parsed]:
    known = KnownIds()
    items = [i for n in FILES for i in with_references(read_path(out / n), known)]
    assert not [i for i in items if isinstance(i, Rejected)]
    return [i for i in items if isinstance(i, Parsed)]


def _check_tally(t: dict[str, Any], contest: dict[str, Any]) -> None:
    assert t["valid_ballots"] + t["invalid_ballots"] == t["ballots_cast"] <= t["registered_voters"]
    assert t["valid_ballots"] >= 0 and t["invalid_ballots"] >= 0
    assert sum(v["votes"] for v in t["votes"]) == t["valid_ballots"]
    assert [v["candidate_id"] for v in t["votes"]] == [s["selection_id"] for s in contest["selections"]]
    for v in t["votes"]:
        if v["by_method"]:
            assert sum(m["votes"] for m in v["by_method"]) == v["votes"]
    if t["blank_votes"] is not None:
        assert t["blank_votes"] <= t["invalid_ballots"]


def test_every_station_counts_every_contest_consistently(tmp_path: Path) -> None:
    report = synthesize(tmp_path, 450, seed=2, contests=5, selections=10)
    parsed = _parsed(tmp_path)
    contests = {p.value["contest_id"]: p.value for p in parsed if p.record_type == "ContestDeclared"}
    assert report.contests == len(contests)
    assert all(contest_matches_election(c, ELECTION_ID) and v["votes_allowed"] == 1 for c, v in contests.items())
    by_station: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in parsed:
        if p.record_type == "StationTally":
            _check_tally(p.value, contests[p.value["contest_id"]])
            by_station[p.value["station_id"]].append(p.value)
    assert len(by_station) == 450
    for tallies in by_station.values():
        kinds = Counter(contests[t["contest_id"]]["kind"] for t in tallies)
        assert kinds == {"CANDIDATE": 1, "PARTY_LIST": 2, "BALLOT_MEASURE": 2}
        # The station's own figures, repeated on each of its contests.
        assert len({(t["registered_voters"], t["ballots_cast"], t["municipality_id"]) for t in tallies}) == 1
    sizes = sorted(len(c["selections"]) for c in contests.values())
    assert set(sizes) == {2, 10}  # the referendum's yes/no; ten candidates, parties or options elsewhere
    referendum = next(c for c in contests.values() if c["contest_id"].endswith("referendum.2030-05-05"))
    assert [s["selection_id"] for s in referendum["selections"]] == ["option:yes", "option:no"]
    assert referendum["number_elected"] in (None, 1)
    lists = [c for c in contests.values() if c["kind"] == "PARTY_LIST"]
    assert lists and all(c["number_elected"] >= 1 and c["district_id"] for c in lists)
    declared_parties = {p.value["party_id"] for p in parsed if p.record_type == "PartyDeclared"}
    assert {s["selection_id"] for c in lists for s in c["selections"]} <= declared_parties
    methods = [t for ts in by_station.values() for t in ts if any(v["by_method"] for v in t["votes"])]
    assert len(methods) == 450  # the referendum's tallies carry the vote-method breakdown


@pytest.mark.parametrize(("contests", "kinds"), [(1, {"CANDIDATE"}), (3, {"CANDIDATE", "PARTY_LIST",
                                                                        "BALLOT_MEASURE"})])
def test_default_and_single_contest(tmp_path: Path, contests: int, kinds: set[str]) -> None:
    synthesize(tmp_path, 120, seed=4, contests=contests)
    parsed = _parsed(tmp_path)
    declared = {p.value["contest_id"]: p.value["kind"] for p in parsed if p.record_type == "ContestDeclared"}
    assert set(declared.values()) == kinds
    per_station = Counter(p.value["station_id"] for p in parsed if p.record_type == "StationTally")
    assert set(per_station.values()) == {contests}


def test_council_figures_do_not_depend_on_the_other_contests(tmp_path: Path) -> None:
    synthesize(tmp_path / "one", 200, seed=8, contests=1)
    synthesize(tmp_path / "five", 200, seed=8, contests=5)
    councils = [{p.value["event_id"] for p in read_path(tmp_path / d / "results.csv") if isinstance(p, Parsed)
                 and COUNCIL.fullmatch(p.value["contest_id"])} for d in ("one", "five")]
    assert councils[0] and councils[0] == councils[1]


def test_faults_stay_exact_with_many_contests(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a", 1500, seed=3, faults=0.03, contests=5, selections=10)
    b = synthesize(tmp_path / "b", 1500, seed=3, faults=0.03, contests=5, selections=10)
    assert (a.events, a.faults, a.contests) == (b.events, b.faults, b.contests)
    for name in (*FILES, FAULTS):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    faults = [json.loads(x) for x in (tmp_path / "a" / FAULTS).read_text().splitlines()]
    known = KnownIds()
    rejected: dict[tuple[str, int], str] = {}
    accepted: set[tuple[str, int]] = set()
    for name in FILES:
        for item in with_references(read_path(tmp_path / "a" / name), known):
            where = (Path(item.file).name, item.line)
            if isinstance(item, Rejected):
                rejected[where] = item.reason_code
            else:
                accepted.add(where)
    expected = {(f["file"], f["line"]): f["reason_code"] for f in faults if f["expect"] == "dead_letter"}
    assert rejected == expected and len(expected) > 50
    assert {(f["file"], f["line"]) for f in faults if f["expect"] == "accepted"} <= accepted
