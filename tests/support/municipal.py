"""A municipal election of four councils for tests of the fold's scope (``pipelines.fold.scope``) and of a
publish staged from it: histories and deltas for hypothesis to draw."""

from __future__ import annotations

from hypothesis import strategies as st

from pipelines.contract import vocabulary as v
from tests.support.factories import COUNTRY, REFERENDUM, Log, muni, station

MUNICIPALITIES = ("a", "b", "c", "d")
STATIONS = 8  # two a municipality


def council(m: str) -> str:
    return f"local.az.council-{m}.2025-01-29"


def home(n: int) -> str:
    return MUNICIPALITIES[(n - 1) // 2]


def municipal_election() -> Log:
    """Four municipal councils, one contest each, two stations each; a referendum at the last two stations."""
    log = Log()
    log.election()
    log.division(COUNTRY, "COUNTRY", None)
    for m in MUNICIPALITIES:
        log.division(muni(m), "MUNICIPALITY", COUNTRY, seats=1)
    log.division(f"{COUNTRY}/constituency:23", "CONSTITUENCY", COUNTRY)
    for n in range(1, STATIONS + 1):
        log.division(station(n), "POLLING_STATION", f"{COUNTRY}/constituency:23", municipality_id=muni(home(n)))
    log.party("party:real", "Republican Alternative")
    for m in MUNICIPALITIES:
        log.candidate(f"candidate:{m}1", muni(m), "party:real")
        log.candidate(f"candidate:{m}2", muni(m), None)
        log.contest(council(m), [f"candidate:{m}1", f"candidate:{m}2"], district_id=muni(m))
    log.contest(REFERENDUM, ["option:yes", "option:no"], kind="BALLOT_MEASURE", district_id=COUNTRY,
                number_elected=None)
    log.seats(muni("a"), {"candidate:a1": "party:real"}, 1)
    return log


def tally(log: Log, n: int, stray: bool = False) -> None:
    """A tally of station ``n % 8 + 1``'s council (the referendum at stations 7 and 8, every third draw); a
    ``stray`` one names another municipality, which joins the two councils' scopes."""
    s = n % STATIONS + 1
    m = home(s) if not stray else MUNICIPALITIES[(n // 8) % 4]
    if s > 6 and n % 3 == 0:
        log.tally2(station(s), REFERENDUM, {"option:yes": n, "option:no": 7}, municipality_id=muni(m))
    else:
        log.tally2(station(s), council(home(s)), {f"candidate:{home(s)}1": n, f"candidate:{home(s)}2": 100 - n % 100},
                   municipality_id=muni(m), registered=1000 + n % 7)


def correct(log: Log, n: int) -> None:
    tallies = [r for r in log.records if r.record_type == v.STATION_TALLY]
    if tallies:
        target = tallies[n % len(tallies)]
        log.emit(target.record_type, target.key, {**{k: x for k, x in target.value.items()
                                                     if k not in ("event_id", "supersedes")},
                                                  "registered_voters": 2000 + n}, supersedes=target)


def redeliver(log: Log, n: int, kinds: tuple[str, ...]) -> None:
    records = [r for r in log.records if r.record_type in kinds]
    if records:
        log.again(records[n % len(records)], partition=n % 2)


def apply_history(log: Log, op: str, n: int) -> None:
    if op == "tally":
        tally(log, n)
    elif op == "stray":
        tally(log, n, stray=True)
    elif op == "correct":
        correct(log, n)
    elif op == "retract":
        events = [r for r in log.records if r.record_type != v.RETRACTION]
        log.retract(events[n % len(events)])
    elif op == "redeliver":
        redeliver(log, n, tuple({r.record_type for r in log.records}))
    elif op == "incident":
        log.incident(f"incident:{n % 5}", muni(home(n % STATIONS + 1)), station_id=station(n % STATIONS + 1))


def apply_delta(log: Log, op: str, n: int) -> None:
    """An operation of a delta of tallies alone: a re-delivery is of a tally."""
    if op == "redeliver":
        redeliver(log, n, (v.STATION_TALLY,))
    elif op in ("tally", "stray", "correct"):
        apply_history(log, op, n)


# Strays are rare, or most scopes would be every contest.
HISTORY = st.lists(st.tuples(st.sampled_from(("tally",) * 8 + ("stray", "correct", "correct", "retract",
                                                               "redeliver", "redeliver", "incident")),
                             st.integers(0, 1_000)), max_size=25)
DELTA = st.lists(st.tuples(st.sampled_from(("tally",) * 5 + ("stray", "correct", "correct", "redeliver")),
                           st.integers(0, 1_000)), min_size=1, max_size=5)
