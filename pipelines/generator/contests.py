"""The contests a synthetic station counts besides its municipal council (docs/contests.md).

With ``contests`` = N per station (default 3):

1. the municipal council (CANDIDATE, one per municipality; written by :class:`~pipelines.generator.core.Emitter`);
2. a regional assembly elected from party lists (PARTY_LIST, one per region, ``number_elected`` its seats);
3. a national referendum (BALLOT_MEASURE, ``option:yes`` / ``option:no``, ``number_elected`` 1), whose tallies
   carry ``by_method`` (election day, early, mail) and ``blank_votes`` and are therefore written as JSONL (the
   CSV format has no column for either);
4. and beyond: national contests alternating a party list (``National list k``) and a multi-option advisory
   question (``Question k``, options ``option:choice-1`` ...), so any N can be asked for.

``selections`` = M sets the number of parties on every list and of options on every question (the council gets
M candidates, see :mod:`pipelines.generator.synth`); the referendum always has its two options. Without M, the
lists carry the four declared parties and questions three options. Parties beyond the four named ones are
declared as ``party:xs-p<k>``.

Every tally repeats its station's registered voters and ballots cast (they are the station's figures), has its
own invalid ballots, valid + invalid = cast, and its votes sum to its valid ballots. All draws come from the
``rng`` given (separate from the council's), so the council figures do not depend on N or M.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pipelines.contract.ids import contest_id
from pipelines.generator.core import GENERATOR_SOURCE, Emitter, Municipality, Station, allocate
from pipelines.generator.files import RESULTS
from pipelines.ingest.tally_csv import tally_rows

DEFAULT_CONTESTS = 3
DEFAULT_OPTIONS = 3
NATIONAL_LIST_SEATS = 101
METHODS = ("ELECTION_DAY", "EARLY", "MAIL")
METHOD_WEIGHTS = [0.7, 0.2, 0.1]


@dataclass(slots=True)
class Contest:
    """A declared contest with its selections and their base popularity."""

    contest_id: str
    selections: list[str]
    weights: list[float]
    region_id: str | None = None  # None: held in every region
    methods: bool = False  # tallies carry by_method and blank votes (written as JSONL)


def party_list(named: list[tuple[str, str, float]], selections: int | None, rng: random.Random
               ) -> list[tuple[str, str, float]]:
    """(party id, name, weight) of the parties on every list: the named ones, cut or extended to ``selections``."""
    if selections is None:
        return list(named)
    out = named[:selections]
    for k in range(len(out) + 1, selections + 1):
        out.append((f"party:xs-p{k}", f"Party {k}", rng.uniform(0.1, 1.5)))
    return out


class ContestPlan:
    """Declares the contests after the council and writes their tallies, station by station."""

    def __init__(self, em: Emitter, rng: random.Random, *, contests: int, selections: int | None,
                 parties: list[tuple[str, str, float]], country_id: str) -> None:
        """Args:
            em: the emitter of the election (files, event ids, times).
            rng: this plan's own random source.
            contests: contests per station, the council included (>= 1).
            selections: parties per list and options per question; None for the defaults.
            parties: (party id, name, weight) on every list (see :func:`party_list`).
            country_id: the country division (district of the national contests).
        """
        self.em, self.rng, self.n = em, rng, contests
        self.options = selections or DEFAULT_OPTIONS
        self.parties = parties
        self.country_id = country_id
        self.national: list[Contest] = []
        self.regional: dict[str, Contest] = {}

    def _declare(self, slug: str, name: str, kind: str, district: str, number_elected: int | None,
                 selections: list[dict[str, Any]]) -> str:
        cid = contest_id(self.em.election_id, slug)
        self.em.files.write("reference.jsonl", self.em.event(
            "ContestDeclared", self.em.times.registered, contest_id=cid, election_id=self.em.election_id, name=name,
            kind=kind, office=None, district_id=district, number_elected=number_elected, votes_allowed=1,
            selections=selections))
        return cid

    def _list(self, slug: str, name: str, district: str, seats: int, region_id: str | None) -> Contest:
        sels = [{"selection_id": p, "kind": "PARTY", "label": label, "candidate_id": None, "party_id": p}
                for p, label, _ in self.parties]
        cid = self._declare(slug, name, "PARTY_LIST", district, seats, sels)
        return Contest(cid, [p for p, _, _ in self.parties], [w for _, _, w in self.parties], region_id)

    def _measure(self, slug: str, name: str, options: list[tuple[str, str]], methods: bool) -> Contest:
        sels = [{"selection_id": o, "kind": "OPTION", "label": label, "candidate_id": None, "party_id": None}
                for o, label in options]
        cid = self._declare(slug, name, "BALLOT_MEASURE", self.country_id, 1, sels)
        return Contest(cid, [o for o, _ in options], [self.rng.uniform(0.6, 1.4) for _ in options],
                       methods=methods)

    def declare(self, regions: list[tuple[str, str]]) -> int:
        """Write every ContestDeclared beyond the councils (regions: (division id, name)); returns how many."""
        if self.n >= 2:
            for region_id, name in regions:
                slug = f"{region_id.rsplit(':', 1)[-1]}-assembly"
                self.regional[region_id] = self._list(slug, f"Regional assembly of {name}", region_id,
                                                      self.rng.randint(5, 15), region_id)
        if self.n >= 3:
            self.national.append(self._measure("referendum", "National referendum",
                                               [("option:yes", "Yes"), ("option:no", "No")], methods=True))
        for extra in range(1, self.n - 2):
            k = (extra + 1) // 2
            if extra % 2:
                self.national.append(self._list(f"national-list-{k}", f"National list {k}", self.country_id,
                                                NATIONAL_LIST_SEATS, None))
            else:
                options = [(f"option:choice-{i}", f"Choice {i}") for i in range(1, self.options + 1)]
                self.national.append(self._measure(f"question-{k}", f"Question {k}", options, methods=False))
        return len(self.regional) + len(self.national)

    def tallies(self, m: Municipality) -> None:
        """Write the tallies of every contest (but the council) at each of ``m``'s stations."""
        contests = ([self.regional[m.region_id]] if m.region_id in self.regional else []) + self.national
        for c in contests:
            # Local popularity: the same contest leans differently in each municipality.
            weights = [w * self.rng.uniform(0.6, 1.4) for w in c.weights]
            for s in m.stations:
                self._tally(c, weights, m, s)

    def _tally(self, c: Contest, weights: list[float], m: Municipality, s: Station) -> None:
        blank = round(s.cast * self.rng.uniform(0.002, 0.012)) if c.methods else None
        invalid = round(s.cast * self.rng.uniform(0.005, 0.03)) + (blank or 0)
        votes = allocate(s.cast - invalid, weights, self.rng)
        tally: dict[str, Any] = {
            "election_id": self.em.election_id, "station_id": s.station_id, "contest_id": c.contest_id,
            "municipality_id": m.municipality_id, "status": "FINAL", "registered_voters": s.registered,
            "ballots_cast": s.cast, "valid_ballots": s.cast - invalid, "invalid_ballots": invalid,
            "votes": [{"candidate_id": sel, "votes": v} for sel, v in zip(c.selections, votes)]}
        if not c.methods:
            tally["source"] = GENERATOR_SOURCE
            self.em.files.write_tally(tally_rows(tally, self.em.times.counted, self.em.files.columns))
            return
        tally["blank_votes"] = blank  # counted among the invalid ballots
        for item in tally["votes"]:
            split = allocate(item["votes"], METHOD_WEIGHTS, self.rng)
            item["by_method"] = [{"method": k, "votes": v} for k, v in zip(METHODS, split)]
        self.em.files.write(RESULTS, self.em.event("StationTally", self.em.times.counted, **tally))
