"""The sample election: real facts about Azerbaijan's 29 January 2025 municipal elections plus a synthetic,
station-level election generated (fixed seed) to agree with every reported figure.

Exact targets (from the CEC as reported by OC Media): 6,326,764 registered, turnout 0.3145 (4 decimals),
8,424 party and 7,588 independent candidates, 31% women / 82% higher education / 41% aged 21-35 (4,964 /
13,130 / 6,565 of 16,012), more than 8,000 council seats, almost 700 municipalities, Musavat's 30 candidates,
REAL's five seats (two in Absheron, one each in Ganja, Imishli and Gakh) and nowhere else.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.contract.ids import slugify
from pipelines.generator import files as F
from pipelines.generator.core import Emitter, Municipality, Station, Times
from pipelines.generator.names import BAKU_SETTLEMENTS, REGIONS
from pipelines.generator.population import CandidateMix, exact_candidates, exact_total, exact_turnout, spread
from pipelines.ingest.convert import to_avro

FACTS_DIR = Path(__file__).resolve().parents[2] / "data" / "azerbaijan-2025"
ELECTION_ID = "local.az.2025-01-29"
COUNTRY_ID = "ocd-division/country:az"
SEED = 20250129
REGISTERED = 6_326_764
TURNOUT = 0.3145
MUNICIPALITIES = 690
CONSTITUENCIES = 125
STATIONS_PER_CONSTITUENCY = 40
BAKU_STATIONS_PER_MUNICIPALITY = 20
SEATS = 8_046
MIX = CandidateMix(
    party=8_424, independent=7_588, women=4_964, higher_education=13_130, aged_21_35=6_565,
    # Minor parties never win (the article: REAL was the only opposition party to win seats).
    minor={"party:musavat": 30, "party:civic-solidarity": 120, "party:motherland": 90, "party:great-order": 60,
           "party:whole-azerbaijan-popular-front": 50, "party:democratic-enlightenment": 40, "party:real": 40},
    winners={"Absheron": 2, "Ganja": 1, "Imishli": 1, "Gakh": 1},
    winner_party="party:real", ruling_party="party:new-azerbaijan",
)
MAMMADLI_STATION = (23, 32)
TIMES = Times(declared="2024-12-20T10:00:00+04:00", registered="2025-01-10T10:00:00+04:00",
              counted="2025-01-29T23:00:00+04:00", corrected="2025-01-30T12:00:00+04:00",
              allocated="2025-01-31T12:00:00+04:00")


@dataclass(frozen=True, slots=True)
class SampleSummary:
    """What :func:`build_sample` wrote, with the figures it guarantees."""

    out_dir: Path
    events: dict[str, int]
    regions: int
    municipalities: int
    constituencies: int
    stations: int
    registered_voters: int
    ballots_cast: int
    turnout: float
    candidates_party: int
    candidates_independent: int
    seats: int
    real_seats: dict[str, int] = field(default_factory=dict)


def _municipality_plan(rng: random.Random) -> list[tuple[str, str, int]]:
    """(region name, municipality name, station count) in output order; Baku first."""
    others = REGIONS[1:]
    per_region = spread(MUNICIPALITIES - len(BAKU_SETTLEMENTS), len(others), rng)
    other_counts = [n for r, n in zip(others, per_region) for _ in range(n)]
    baku_stations = len(BAKU_SETTLEMENTS) * BAKU_STATIONS_PER_MUNICIPALITY
    other_stations = spread(CONSTITUENCIES * STATIONS_PER_CONSTITUENCY - baku_stations, len(other_counts), rng)
    plan = [("Baku", name, BAKU_STATIONS_PER_MUNICIPALITY) for name in BAKU_SETTLEMENTS]
    i = 0
    for region, n in zip(others, per_region):
        for k in range(n):
            # The first municipality of a region carries the region's name (Absheron, Ganja, Imishli, Gakh...).
            plan.append((region, region if k == 0 else f"{region}-{k + 1}", other_stations[i]))
            i += 1
    return plan


def _copy_facts(files: F.EventFiles) -> dict[str, Any]:
    """Copy the real facts; returns the real declaration of Mammadli's polling station."""
    station: dict[str, Any] = {}
    for name in (F.REFERENCE, F.RESULTS, F.OBSERVATIONS, F.NEWS):
        for text in (FACTS_DIR / name).read_text(encoding="utf-8").splitlines():
            if text.strip():
                obj = json.loads(text)
                files.write(name, obj)
                if obj.get("kind") == "POLLING_STATION":
                    station = obj
    return station


def build_sample(out_dir: Path) -> SampleSummary:
    """Write the sample election (real facts + deterministic synthetic detail) to ``out_dir``.

    Args:
        out_dir: directory for reference.jsonl, results.csv, results.jsonl, observations.jsonl, news.jsonl.

    Returns:
        Counts and the exact figures the generated data satisfies.
    """
    rng = random.Random(SEED)
    files = F.EventFiles(out_dir)
    real_station = _copy_facts(files)
    em = Emitter(files, ELECTION_ID, TIMES, seed=SEED)
    plan = _municipality_plan(rng)
    region_ids = {r: f"{COUNTRY_ID}/region:{slugify(r)}" for r in REGIONS}
    for region, region_id in region_ids.items():
        em.division(region_id, region, "REGION", COUNTRY_ID)
    for c in range(1, CONSTITUENCIES + 1):
        if c != MAMMADLI_STATION[0]:  # constituency 23 is a real fact, already declared
            em.division(f"{COUNTRY_ID}/constituency:{c}", f"Constituency No. {c}", "CONSTITUENCY", COUNTRY_ID)
    sizes = [n for _, _, n in plan]
    registered = exact_total([rng.lognormvariate(0, 0.35) for _ in range(sum(sizes))], REGISTERED)
    cast = exact_turnout(registered, round(REGISTERED * TURNOUT), rng)
    names = [m for _, m, _ in plan]
    candidates, seats = exact_candidates(MIX, names, SEATS, rng, id_prefix="candidate:az-2025-", year=2025)
    real_seats: dict[str, int] = {}
    k = 0
    for (region, name, n), cands, n_seats in zip(plan, candidates, seats):
        muni_id = f"{region_ids[region]}/municipality:{slugify(name)}"
        m = Municipality(muni_id, name, region_ids[region], n_seats, cands)
        for _ in range(n):
            c, s = divmod(k, STATIONS_PER_CONSTITUENCY)
            invalid = round(cast[k] * rng.uniform(0.005, 0.03))
            m.stations.append(Station(f"{COUNTRY_ID}/constituency:{c + 1}/polling_station:{s + 1}",
                                      f"Polling station No. {s + 1}, constituency No. {c + 1}",
                                      f"{COUNTRY_ID}/constituency:{c + 1}", registered[k], cast[k], invalid,
                                      declared=(c + 1, s + 1) != MAMMADLI_STATION))
            k += 1
        winners = em.municipality(m, rng)
        won = sum(1 for w in winners if w.party_id == MIX.winner_party)
        if won:
            real_seats[name] = won
        if not all(s.declared for s in m.stations):
            _assign_real_station(em, real_station, muni_id)
    files.close()
    if real_seats != MIX.winners:
        raise AssertionError(f"generator bug: REAL seats {real_seats} != {MIX.winners}")
    return SampleSummary(out_dir, dict(files.events), len(REGIONS), len(plan), CONSTITUENCIES, k, sum(registered),
                         sum(cast), round(sum(cast) / sum(registered), 4), MIX.party, MIX.independent, sum(seats),
                         real_seats)


def _assign_real_station(em: Emitter, real: dict[str, Any], municipality_id: str) -> None:
    """Correct the real station declaration: the generator assigns it to a (synthetic) Baku municipality."""
    real_id = to_avro("DivisionDeclared", {k: v for k, v in real.items() if k != "type"})["event_id"]
    fields = {k: real[k] for k in ("division_id", "name", "kind", "parent_id", "election_id")}
    obj = em.event("DivisionDeclared", TIMES.declared, **fields, municipality_id=municipality_id, seats=None)
    obj["supersedes"] = {"event_id": real_id, "reason": "sample generator: assigned to a generated Baku municipality "
                         "so the station has a tally (the real municipality is unknown)"}
    em.files.write(F.REFERENCE, obj)
