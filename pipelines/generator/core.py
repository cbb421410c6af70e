"""Generator building blocks: divisions, candidates, station tallies, corrections and seat allocations.

Each municipal council is a CANDIDATE contest (one vote per voter: votes sum to the valid ballots). Votes are
generated per municipality from candidate *weights* (popularity) with per-station noise, and the seat allocation is computed from the tallies actually written (top-N by votes, ties by candidate id), so the
allocation is always consistent with the results. Everything is driven by seeded ``random.Random`` objects.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from pipelines.contract.ids import contest_id
from pipelines.generator.files import RESULTS, EventFiles
from pipelines.ingest.convert import to_avro
from pipelines.ingest.tally_csv import rows_to_tally, tally_rows

GENERATOR_SOURCE: dict[str, Any] = {"organisation": "Ballotstream sample generator", "kind": "GENERATOR", "url": None}
CORRECTION_REASON = "corrected protocol: votes were transposed between two candidates"


@dataclass(slots=True)
class Candidate:
    """A generated candidate; ``weight`` is its relative popularity in its municipality."""

    candidate_id: str
    name: str
    party_id: str | None
    gender: str
    age_band: str
    birth_year: int
    education: str
    weight: float


@dataclass(slots=True)
class Station:
    """A generated polling station with its register and ballot counts.

    ``declared`` is False when the station is already declared elsewhere (e.g. by real facts).
    """

    station_id: str
    name: str
    constituency_id: str
    registered: int
    cast: int
    invalid: int
    declared: bool = True


@dataclass(slots=True)
class Municipality:
    """A generated municipality: its council seats, candidates and polling stations."""

    municipality_id: str
    name: str
    region_id: str
    seats: int
    candidates: list[Candidate]
    stations: list[Station] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Times:
    """ISO timestamps (with zone) of the generated phases of the election."""

    declared: str
    registered: str
    counted: str
    corrected: str
    allocated: str


def allocate(total: int, weights: list[float], rng: random.Random) -> list[int]:
    """Split ``total`` votes over candidates in proportion to noisy ``weights``; sums exactly to ``total``."""
    noisy = [w * (0.75 + 0.5 * rng.random()) for w in weights]
    scale = total / sum(noisy)
    shares = [x * scale for x in noisy]
    out = [int(x) for x in shares]
    missing = total - sum(out)
    if missing:
        # Largest remainders first: the rounding is then as fair as integer votes allow.
        for i in sorted(range(len(out)), key=lambda i: out[i] - shares[i])[:missing]:
            out[i] += 1
    return out


def top_n(totals: dict[str, int], n: int) -> list[str]:
    """The ``n`` candidate ids with most votes (ties broken by candidate id, so the result is deterministic)."""
    return sorted(totals, key=lambda c: (-totals[c], c))[:n]


class Emitter:
    """Writes one generated election's events through :class:`EventFiles`."""

    def __init__(self, files: EventFiles, election_id: str, times: Times, *, seed: int,
                 corrections: float = 0.0) -> None:
        """Args:
            files: where to write.
            election_id: the election every event belongs to.
            times: timestamps per phase.
            seed: seeds event ids and corrections (separately from the vote generator).
            corrections: probability per station of a tally correction (an accepted fault).
        """
        self.files = files
        self.election_id = election_id
        self.times = times
        self.corrections = corrections
        self._ids = random.Random(seed * 7919 + 1)
        self._fix = random.Random(seed * 7919 + 2)

    def event(self, record_type: str, occurred_at: str, **fields: Any) -> dict[str, Any]:
        """A synthetic plain-JSON event with envelope and a seeded random event id."""
        event_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
        return {"type": record_type, "event_id": event_id, "occurred_at": occurred_at,
                "source": GENERATOR_SOURCE, "synthetic": True, **fields}

    def division(self, division_id: str, name: str, kind: str, parent_id: str | None, *,
                 municipality_id: str | None = None, seats: int | None = None) -> dict[str, Any]:
        """Write a DivisionDeclared to reference.jsonl; returns the event."""
        obj = self.event("DivisionDeclared", self.times.declared, division_id=division_id, name=name, kind=kind,
                         parent_id=parent_id, election_id=self.election_id, municipality_id=municipality_id,
                         seats=seats)
        self.files.write("reference.jsonl", obj)
        return obj

    def contest(self, m: Municipality) -> str:
        """Write the ContestDeclared of a municipality's council (after its candidates: they are its
        selections); returns the contest id, ``<type>.<country>.<municipality slug>.<date>``."""
        cid = contest_id(self.election_id, m.municipality_id.rsplit(":", 1)[-1])
        selections = [{"selection_id": c.candidate_id, "kind": "CANDIDATE", "label": c.name,
                       "candidate_id": c.candidate_id, "party_id": c.party_id} for c in m.candidates]
        self.files.write("reference.jsonl", self.event(
            "ContestDeclared", self.times.registered, contest_id=cid, election_id=self.election_id,
            name=f"Municipal council of {m.name}", kind="CANDIDATE", office="Municipal council",
            district_id=m.municipality_id, number_elected=m.seats, votes_allowed=1, selections=selections))
        return cid

    def municipality(self, m: Municipality, rng: random.Random) -> list[Candidate]:
        """Write a municipality: division, stations, candidates, its council's contest, tallies, corrections,
        seat allocation.

        Returns:
            The elected candidates, most votes first.
        """
        self.division(m.municipality_id, m.name, "MUNICIPALITY", m.region_id, seats=m.seats)
        for s in m.stations:
            if s.declared:
                self.division(s.station_id, s.name, "POLLING_STATION", s.constituency_id,
                              municipality_id=m.municipality_id)
        for c in m.candidates:
            self.files.write("reference.jsonl", self.event(
                "CandidateRegistered", self.times.registered, candidate_id=c.candidate_id,
                election_id=self.election_id, name=c.name, party_id=c.party_id, municipality_id=m.municipality_id,
                gender=c.gender, birth_year=c.birth_year, age_band=c.age_band, education=c.education))
        cid = self.contest(m)
        weights = [c.weight for c in m.candidates]
        totals = dict.fromkeys((c.candidate_id for c in m.candidates), 0)
        for s in m.stations:
            votes = allocate(s.cast - s.invalid, weights, rng)
            tally = {"election_id": self.election_id, "station_id": s.station_id, "contest_id": cid,
                     "municipality_id": m.municipality_id, "status": "FINAL", "registered_voters": s.registered,
                     "ballots_cast": s.cast, "valid_ballots": s.cast - s.invalid, "invalid_ballots": s.invalid,
                     "votes": [{"candidate_id": c.candidate_id, "votes": v} for c, v in zip(m.candidates, votes)],
                     "source": GENERATOR_SOURCE}
            rows = tally_rows(tally, self.times.counted, self.files.columns)
            self.files.write_tally(rows)
            if self.corrections and self._fix.random() < self.corrections and len(votes) > 1:
                votes = self._correct(tally, rows, votes)
            for c, v in zip(m.candidates, votes):
                totals[c.candidate_id] += v
        by_id = {c.candidate_id: c for c in m.candidates}
        winners = [by_id[cid] for cid in top_n(totals, m.seats)]
        self.files.write(RESULTS, self.event(
            "SeatAllocation", self.times.allocated, election_id=self.election_id,
            municipality_id=m.municipality_id, total_seats=m.seats,
            elected=[{"candidate_id": c.candidate_id, "party_id": c.party_id} for c in winners]))
        return winners

    def _correct(self, tally: dict[str, Any], rows: list[list[str]], votes: list[int]) -> list[int]:
        """Write a correction of a CSV tally (votes moved between two candidates; sums unchanged)."""
        # The CSV tally has no event_id of its own: derive it exactly as the reader will.
        original_id = to_avro("StationTally", rows_to_tally(rows, self.files.columns))["event_id"]
        fixed = list(votes)
        src = max(range(len(fixed)), key=lambda i: fixed[i])
        dst = (src + 1 + self._fix.randrange(len(fixed) - 1)) % len(fixed)
        moved = min(fixed[src], 1 + self._fix.randrange(3))
        fixed[src] -= moved
        fixed[dst] += moved
        body = {k: v for k, v in tally.items() if k != "source"}
        body["votes"] = [{"candidate_id": t["candidate_id"], "votes": v} for t, v in zip(tally["votes"], fixed)]
        obj = self.event("StationTally", self.times.corrected, **body)
        obj["supersedes"] = {"event_id": original_id, "reason": CORRECTION_REASON}
        line = self.files.write(RESULTS, obj)
        if self.files.faults:
            self.files.log_fault(RESULTS, line, "correction", None)
        return fixed
