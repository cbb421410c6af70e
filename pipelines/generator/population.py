"""Who stands and how much: candidate demographics, party mixes, seat counts and exact-sum integer splits."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipelines.generator.core import Candidate
from pipelines.generator.names import person_name

AGE_BANDS: dict[str, tuple[int, int]] = {
    "AGE_18_20": (18, 20), "AGE_21_35": (21, 35), "AGE_36_50": (36, 50), "AGE_51_65": (51, 65),
    "AGE_66_PLUS": (66, 85),
}
# Bands other than 21-35, with their relative frequency among the rest.
_OTHER_BANDS = (("AGE_18_20", 3), ("AGE_36_50", 45), ("AGE_51_65", 40), ("AGE_66_PLUS", 12))


@dataclass(frozen=True, slots=True)
class CandidateMix:
    """Exact candidate totals and who may win.

    Attributes:
        party / independent: candidate totals.
        women / higher_education / aged_21_35: exact counts over all candidates.
        minor: party id -> candidates who stand but never win (weak weights).
        winners: municipality name -> seats ``winner_party`` must win there (and nowhere else).
        winner_party: the party whose seats are pinned.
        ruling_party: takes every remaining party candidacy.
    """

    party: int
    independent: int
    women: int
    higher_education: int
    aged_21_35: int
    minor: dict[str, int]
    winners: dict[str, int]
    winner_party: str
    ruling_party: str


def spread(total: int, n: int, rng: random.Random) -> list[int]:
    """``n`` near-equal non-negative integers summing to ``total``; which ones get the extra is random."""
    base, extra = divmod(total, n)
    lucky = set(rng.sample(range(n), extra))
    return [base + (i in lucky) for i in range(n)]


def exact_total(weights: list[float], total: int) -> list[int]:
    """Integers proportional to ``weights`` summing exactly to ``total`` (largest remainders)."""
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    out = [int(s) for s in shares]
    for i in sorted(range(len(out)), key=lambda i: out[i] - shares[i])[: total - sum(out)]:
        out[i] += 1
    return out


def exact_turnout(registered: list[int], cast_total: int, rng: random.Random) -> list[int]:
    """Ballots cast per station (each between 1 and its register) summing exactly to ``cast_total``."""
    rate = cast_total / sum(registered)
    cast = [max(1, min(r, round(r * rate * rng.uniform(0.55, 1.45)))) for r in registered]
    order = list(range(len(cast)))
    rng.shuffle(order)
    while (gap := cast_total - sum(cast)) != 0:
        step = max(1, abs(gap) // len(cast))
        for i in order:
            if gap > 0 and cast[i] < registered[i]:
                d = min(step, gap, registered[i] - cast[i])
            elif gap < 0 and cast[i] > 1:
                d = -min(step, -gap, cast[i] - 1)
            else:
                continue
            cast[i] += d
            gap -= d
            if gap == 0:
                break
    return cast


def make_candidate(candidate_id: str, index: int, party_id: str | None, weight: float, female: bool,
                   higher: bool, age_band: str, year: int, rng: random.Random) -> Candidate:
    """One candidate whose birth year agrees with its age band on polling day (whatever the birthday)."""
    lo, hi = AGE_BANDS[age_band]
    age = rng.randint(lo + 1, hi - 1) if hi - lo >= 2 else lo
    return Candidate(candidate_id, person_name(female, index), party_id, "FEMALE" if female else "MALE", age_band,
                     year - age - 1, "HIGHER" if higher else "SECONDARY", weight)


def other_band(rng: random.Random) -> str:
    """An age band other than 21-35, with realistic frequencies."""
    bands, weights = zip(*_OTHER_BANDS)
    return rng.choices(bands, weights)[0]


def _seats(n: int, total: int, rng: random.Random) -> list[int]:
    seats = [rng.randint(9, 14) for _ in range(n)]
    order = list(range(n))
    while (gap := total - sum(seats)) != 0:
        rng.shuffle(order)
        for i in order[: abs(gap)]:
            if 7 <= seats[i] + (1 if gap > 0 else -1) <= 17:
                seats[i] += 1 if gap > 0 else -1
    return seats


def exact_candidates(mix: CandidateMix, municipalities: list[str], seats_total: int, rng: random.Random, *,
                     id_prefix: str, year: int) -> tuple[list[list[Candidate]], list[int]]:
    """Candidates per municipality meeting every exact count in ``mix``, and council seats per municipality.

    Every municipality gets at least seats + 3 candidates and at most two non-winning party candidates, so
    ruling-party and independent candidates always outnumber the seats and the pinned winners stay pinned.
    """
    n = len(municipalities)
    total = mix.party + mix.independent
    seats = _seats(n, seats_total, rng)
    extra = exact_total([float(s) for s in seats], total - sum(seats) - 3 * n)
    sizes = [s + 3 + e for s, e in zip(seats, extra)]
    slots: list[list[tuple[str | None, float]]] = [[] for _ in range(n)]
    index = {name: i for i, name in enumerate(municipalities)}
    for name, won in mix.winners.items():
        slots[index[name]] += [(mix.winner_party, rng.uniform(8.0, 10.0)) for _ in range(won)]
    minor = [p for p, count in mix.minor.items() for _ in range(count)]
    eligible = [i for i in range(n) if municipalities[i] not in mix.winners]
    for i, party in zip(rng.sample(eligible, len(minor)), minor):
        slots[i].append((party, rng.uniform(0.02, 0.1)))
    ruling = mix.party - len(minor) - sum(mix.winners.values())
    pool: list[str | None] = [mix.ruling_party] * ruling + [None] * mix.independent
    rng.shuffle(pool)
    it = iter(pool)
    for i in range(n):
        while len(slots[i]) < sizes[i]:
            party = next(it)
            slots[i].append((party, rng.uniform(1.0, 4.0) if party else rng.uniform(0.5, 2.5)))
    women = set(rng.sample(range(total), mix.women))
    higher = set(rng.sample(range(total), mix.higher_education))
    young = set(rng.sample(range(total), mix.aged_21_35))
    out: list[list[Candidate]] = []
    k = 0
    for muni in slots:
        row = []
        for party, weight in muni:
            band = "AGE_21_35" if k in young else other_band(rng)
            row.append(make_candidate(f"{id_prefix}{k + 1:05d}", k, party, weight, k in women, k in higher, band,
                                      year, rng))
            k += 1
        out.append(row)
    return out, seats
