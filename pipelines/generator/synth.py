"""Synthetic elections of any size (up to millions of stations), streamed to disk, with optional faults.

Uses the generator core shared with :mod:`pipelines.generator.sample`; the country is the user-assigned code ``xs`` so
synthetic data can never be mistaken for (or collide with) a real election. With ``faults > 0`` it injects
rejectable lines, duplicates, corrections and retractions and logs each in ``faults.jsonl``
(``{file, line, fault, expect, reason_code}``). Every station counts ``contests`` contests (default 3: its
municipal council, its region's party list, the national referendum; see :mod:`pipelines.generator.contests`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from pipelines.generator import files as F
from pipelines.generator.contests import DEFAULT_CONTESTS, ContestPlan, party_list
from pipelines.generator.core import Candidate, Emitter, Municipality, Station, Times
from pipelines.generator.population import make_candidate, other_band, spread

ELECTION_ID = "local.xs.2030-05-05"
COUNTRY_ID = "ocd-division/country:xs"
STATIONS_PER_MUNICIPALITY = 100
MUNICIPALITIES_PER_REGION = 10
STATIONS_PER_CONSTITUENCY = 40
# party id -> (name, share of candidacies, weight range); None is independent.
PARTIES: dict[str | None, tuple[str, float, tuple[float, float]]] = {
    "party:xs-unity": ("Unity Party", 0.45, (1.0, 4.0)),
    None: ("independent", 0.35, (0.5, 2.5)),
    "party:xs-reform": ("Reform Party", 0.10, (0.5, 2.0)),
    "party:xs-green": ("Green Party", 0.06, (0.2, 1.0)),
    "party:xs-liberty": ("Liberty Party", 0.04, (0.1, 0.8)),
}
CATEGORIES = ("CAROUSEL_VOTING", "BALLOT_STUFFING", "PROTOCOL_NOT_POSTED", "OBSERVER_OBSTRUCTED", "THREAT")
INCIDENT_RATE = 0.25
TIMES = Times(declared="2030-03-01T10:00:00+00:00", registered="2030-04-01T10:00:00+00:00",
              counted="2030-05-05T22:00:00+00:00", corrected="2030-05-06T12:00:00+00:00",
              allocated="2030-05-08T12:00:00+00:00")


@dataclass(frozen=True, slots=True)
class SynthReport:
    """What :func:`synthesize` wrote."""

    out_dir: Path
    stations: int
    municipalities: int
    candidates: int
    events: dict[str, int]
    faults: dict[str, int]
    contests: int = 0  # declared contests, councils included


def _candidates(rng: random.Random, start: int, count: int | None) -> list[Candidate]:
    parties = list(PARTIES)
    shares = [PARTIES[p][1] for p in parties]
    out = []
    for k in range(start, start + (count or rng.randint(10, 15))):
        party = rng.choices(parties, shares)[0]
        lo, hi = PARTIES[party][2]
        band = "AGE_21_35" if rng.random() < 0.41 else other_band(rng)
        out.append(make_candidate(f"candidate:xs-{k + 1:07d}", k, party, rng.uniform(lo, hi), rng.random() < 0.31,
                                  rng.random() < 0.82, band, 2030, rng))
    return out


def synthesize(out_dir: Path, stations: int, seed: int, faults: float = 0.0, *, contests: int = DEFAULT_CONTESTS,
               selections: int | None = None) -> SynthReport:
    """Generate a synthetic election with ``stations`` polling stations into ``out_dir``.

    Args:
        out_dir: output directory (files are overwritten).
        stations: number of polling stations (about 100 per municipality).
        seed: the same seed always gives byte-identical files.
        faults: probability per written event of an injected fault (0 for clean data).
        contests: contests counted at every station (>= 1): the municipal council, a regional party list, a
            national referendum, then further national contests (see :mod:`pipelines.generator.contests`).
        selections: candidates per council, parties per list and options per question (>= 2); None: 10-15
            candidates, the four parties, three options.

    Returns:
        Counts of what was written, including faults per kind.
    """
    if stations < 1 or not 0.0 <= faults < 1.0 or contests < 1 or (selections is not None and selections < 2):
        raise ValueError("stations and contests must be >= 1, selections >= 2 and faults in [0, 1)")
    rng = random.Random(seed)
    files = F.EventFiles(out_dir, faults=faults, fault_seed=seed + 1)
    em = Emitter(files, ELECTION_ID, TIMES, seed=seed, corrections=faults / 2)
    # Its own random source, so the councils' figures are the same whatever the other contests.
    plan_rng = random.Random(seed * 7919 + 3)
    named = [(p, name, sum(w) / 2) for p, (name, _, w) in PARTIES.items() if p is not None]
    plan = ContestPlan(em, plan_rng, contests=contests, selections=selections,
                       parties=party_list(named, selections, plan_rng), country_id=COUNTRY_ID)
    n_munis = max(1, round(stations / STATIONS_PER_MUNICIPALITY))
    n_contests = n_munis + _declare_reference(em, plan, math.ceil(n_munis / MUNICIPALITIES_PER_REGION), stations)
    k = n_candidates = 0
    for m_index, size in enumerate(spread(stations, n_munis, rng)):
        region_id = f"{COUNTRY_ID}/region:r{m_index // MUNICIPALITIES_PER_REGION + 1}"
        cands = _candidates(rng, n_candidates, selections)
        n_candidates += len(cands)
        m = Municipality(f"{region_id}/municipality:m{m_index + 1}", f"Municipality {m_index + 1}", region_id,
                         max(1, len(cands) // 2 + rng.randint(-2, 1)), cands)
        for _ in range(size):
            c, s = divmod(k, STATIONS_PER_CONSTITUENCY)
            registered = rng.randint(300, 2500)
            cast = round(registered * rng.uniform(0.2, 0.6))
            m.stations.append(Station(f"{COUNTRY_ID}/constituency:{c + 1}/polling_station:{s + 1}",
                                      f"Station {s + 1}, constituency {c + 1}", f"{COUNTRY_ID}/constituency:{c + 1}",
                                      registered, cast, round(cast * rng.uniform(0.005, 0.03))))
            k += 1
        em.municipality(m, rng)
        plan.tallies(m)
        if rng.random() < INCIDENT_RATE:
            _incident(em, rng, m, m_index, faults)
    files.write(F.NEWS, em.event(
        "ArticlePublished", TIMES.allocated, article_id="article:xs-results", outlet="Synthetic Times", url=None,
        headline="Unity Party wins most council seats", published_at=TIMES.allocated, language="en",
        summary="Synthetic article about the synthetic election.", people=[], organisations=["Unity Party"],
        places=["Synthland"], election_id=ELECTION_ID, division_ids=[COUNTRY_ID], statements=[]))
    files.close()
    return SynthReport(out_dir, stations, n_munis, n_candidates, dict(files.events), dict(files.fault_counts),
                       n_contests)


def _declare_reference(em: Emitter, plan: ContestPlan, n_regions: int, stations: int) -> int:
    """Write the election, parties, country, regions, constituencies and the contests beyond the councils;
    returns how many contests that declared."""
    em.files.write(F.REFERENCE, em.event("ElectionDeclared", TIMES.declared, election_id=ELECTION_ID,
                                         name="Synthetic municipal elections", date="2030-05-05", kind="MUNICIPAL",
                                         country="xs", seats_at_stake=None))
    declared = {p: name for p, (name, _, _) in PARTIES.items() if p is not None}
    declared.update({p: name for p, name, _ in plan.parties})
    for party, name in declared.items():
        em.files.write(F.REFERENCE, em.event("PartyDeclared", TIMES.declared, party_id=party, name=name,
                                             abbreviation=None))
    em.division(COUNTRY_ID, "Synthland", "COUNTRY", None)
    regions = [(f"{COUNTRY_ID}/region:r{r}", f"Region {r}") for r in range(1, n_regions + 1)]
    for region_id, name in regions:
        em.division(region_id, name, "REGION", COUNTRY_ID)
    for c in range(1, math.ceil(stations / STATIONS_PER_CONSTITUENCY) + 1):
        em.division(f"{COUNTRY_ID}/constituency:{c}", f"Constituency {c}", "CONSTITUENCY", COUNTRY_ID)
    return plan.declare(regions)


def _incident(em: Emitter, rng: random.Random, m: Municipality, m_index: int, faults: float) -> None:
    """An incident at one of the municipality's stations, its RECEIVED status, and maybe its retraction."""
    station = rng.choice(m.stations)
    incident_id = f"incident:xs-{m_index + 1}"
    report = em.event("IncidentReported", TIMES.counted, incident_id=incident_id, election_id=ELECTION_ID,
                      category=rng.choice(CATEGORIES), division_id=m.municipality_id, station_id=station.station_id,
                      reporter="Synthetic Observers", reporter_kind="OBSERVER_MISSION",
                      description="Synthetic incident report.", evidence_urls=[], count=rng.randint(1, 5))
    em.files.write(F.OBSERVATIONS, report)
    em.files.write(F.OBSERVATIONS, em.event("IncidentStatusChanged", TIMES.counted, incident_id=incident_id,
                                            status="RECEIVED", note=None))
    if faults and rng.random() < min(0.5, faults * 10):
        line = em.files.write(F.OBSERVATIONS, em.event(
            "Retraction", TIMES.corrected, target_event_id=report["event_id"], target_key=incident_id,
            reason="synthetic retraction: the observer withdrew the report"))
        em.files.log_fault(F.OBSERVATIONS, line, "retraction", None)
