"""The sample election agrees with every figure the CEC and OC Media reported (see pipelines.generator.sample)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipelines.generator.files import FILES
from pipelines.generator.sample import build_sample
from pipelines.ingest.checks import KnownIds, with_references
from pipelines.ingest.readers import Parsed, Rejected, read_path


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[Parsed]:
    out = tmp_path_factory.mktemp("sample")
    build_sample(out)
    known = KnownIds()
    items = [i for name in FILES for i in with_references(read_path(out / name), known)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert rejected == [], rejected[:3]  # every id valid, every reference resolves
    return [i for i in items if isinstance(i, Parsed)]


def of(events: list[Parsed], record_type: str) -> list[dict]:
    return [e.value for e in events if e.record_type == record_type]


def test_candidates_exact(events: list[Parsed]) -> None:
    cands = of(events, "CandidateRegistered")
    assert sum(c["party_id"] is not None for c in cands) == 8424
    assert sum(c["party_id"] is None for c in cands) == 7588
    n = len(cands)
    assert round(sum(c["gender"] == "FEMALE" for c in cands) / n, 2) == 0.31
    assert round(sum(c["education"] == "HIGHER" for c in cands) / n, 2) == 0.82
    assert round(sum(c["age_band"] == "AGE_21_35" for c in cands) / n, 2) == 0.41
    assert sum(c["party_id"] == "party:musavat" for c in cands) == 30
    assert not any(c["party_id"] == "party:popular-front" for c in cands)


def test_registered_and_turnout(events: list[Parsed]) -> None:
    tallies = of(events, "StationTally")
    registered = sum(t["registered_voters"] for t in tallies)
    cast = sum(t["ballots_cast"] for t in tallies)
    assert registered == 6_326_764 and round(cast / registered, 4) == 0.3145
    for t in tallies:
        assert t["valid_ballots"] + t["invalid_ballots"] == t["ballots_cast"] <= t["registered_voters"]
        assert sum(v["votes"] for v in t["votes"]) == t["valid_ballots"] and t["status"] == "FINAL"


def test_divisions(events: list[Parsed]) -> None:
    kinds = Counter(d["kind"] for d in of(events, "DivisionDeclared") if d["supersedes"] is None)
    assert 680 <= kinds["MUNICIPALITY"] < 700 and kinds["CONSTITUENCY"] == 125 and 60 <= kinds["REGION"] <= 70
    assert 4900 <= kinds["POLLING_STATION"] <= 5100
    station = "ocd-division/country:az/constituency:23/polling_station:32"
    fixed = [d for d in of(events, "DivisionDeclared") if d["division_id"] == station and d["supersedes"]]
    assert fixed and "/region:baku/" in fixed[0]["municipality_id"]
    assert any(t["station_id"] == station for t in of(events, "StationTally"))


def test_seats_follow_votes_and_real_wins_exactly_five(events: list[Parsed]) -> None:
    totals: Counter[str] = Counter()
    for t in of(events, "StationTally"):
        for v in t["votes"]:
            totals[v["candidate_id"]] += v["votes"]
    cands = {c["candidate_id"]: c for c in of(events, "CandidateRegistered")}
    seats = of(events, "SeatAllocation")
    assert sum(s["total_seats"] for s in seats) > 8000
    real: Counter[str] = Counter()
    for s in seats:
        mine = [c for c, v in cands.items() if v["municipality_id"] == s["municipality_id"]]
        top = sorted(mine, key=lambda c: (-totals[c], c))[: s["total_seats"]]
        assert [e["candidate_id"] for e in s["elected"]] == top
        for e in s["elected"]:
            if e["party_id"] == "party:real":
                real[s["municipality_id"].rsplit(":", 1)[1]] += 1
    assert real == {"absheron": 2, "ganja": 1, "imishli": 1, "gakh": 1}


def test_generated_events_are_synthetic_and_real_facts_are_not(events: list[Parsed]) -> None:
    for e in events:
        generated = e.value["source"]["kind"] == "GENERATOR"
        assert e.value["synthetic"] is generated
    summary = of(events, "DivisionSummary")[0]
    figures = {f["metric"]: (f["value"], f["qualifier"]) for f in summary["figures"]}
    assert figures["TURNOUT"] == (0.3145, "EXACT") and figures["REGISTERED_VOTERS"][0] == 6326764
    assert figures["MEMBERS_ELECTED"] == (8000, "MORE_THAN") and figures["MUNICIPALITIES"] == (700, "ALMOST")


def test_each_municipal_council_is_a_candidate_contest_and_every_tally_names_it(events: list[Parsed]) -> None:
    contests = {c["contest_id"]: c for c in of(events, "ContestDeclared")}
    munis = {d["division_id"]: d for d in of(events, "DivisionDeclared") if d["kind"] == "MUNICIPALITY"}
    assert len(contests) == len(munis) == len(of(events, "SeatAllocation"))
    by_district = {c["district_id"]: c for c in contests.values()}
    assert set(by_district) == set(munis)
    cands: dict[str, list[str]] = {}
    for c in of(events, "CandidateRegistered"):
        cands.setdefault(c["municipality_id"], []).append(c["candidate_id"])
    for muni_id, c in by_district.items():
        slug = muni_id.rsplit(":", 1)[1]
        assert c["contest_id"] == f"local.az.{slug}.2025-01-29" and c["election_id"] == "local.az.2025-01-29"
        assert (c["kind"], c["office"], c["votes_allowed"]) == ("CANDIDATE", "Municipal council", 1)
        assert c["name"] == f"Municipal council of {munis[muni_id]['name']}"
        assert c["number_elected"] == munis[muni_id]["seats"]
        assert [s["selection_id"] for s in c["selections"]] == cands[muni_id]
        assert all(s["kind"] == "CANDIDATE" and s["candidate_id"] == s["selection_id"] for s in c["selections"])
    tallies = [e for e in events if e.record_type == "StationTally"]
    for t in tallies:
        contest = contests[t.value["contest_id"]]
        assert contest["district_id"] == t.value["municipality_id"]
        assert {v["candidate_id"] for v in t.value["votes"]} <= {s["selection_id"] for s in contest["selections"]}
        assert t.key == f"{t.value['election_id']}|{t.value['contest_id']}|{t.value['station_id']}"
    # One contest per station: as many current tally keys as stations.
    assert len({t.key for t in tallies}) == len({t.value["station_id"] for t in tallies})
