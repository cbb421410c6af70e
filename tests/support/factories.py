"""Build decoded LogRecords the way the Avro readers hand them to the fold (fastavro-shaped dicts).

``Log`` appends events with increasing offsets and ``recorded_at`` so a test reads like a timeline;
``small_election`` is a complete, consistent dataset every gate check passes; ``generate_election`` streams
a large synthetic election for benchmarks without holding it in memory.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from types import EllipsisType
from typing import Any

from pipelines.contract.record_types import tally_key
from pipelines.contract.topics import NEWS, OBSERVATIONS, REFERENCE, RESULTS
from pipelines.kafka.log_record import LogRecord

T0 = datetime(2025, 1, 29, 20, 0, tzinfo=UTC)
ELECTION = "local.az.2025-01-29"
COUNTRY = "ocd-division/country:az"
SOURCE = {"organisation": "Central Election Commission", "kind": "ELECTION_AUTHORITY", "url": None}
_TOPIC_OF = {
    "ElectionDeclared": REFERENCE.name, "DivisionDeclared": REFERENCE.name, "PartyDeclared": REFERENCE.name,
    "CandidateRegistered": REFERENCE.name, "ContestDeclared": REFERENCE.name, "StationTally": RESULTS.name,
    "DivisionSummary": RESULTS.name, "SeatAllocation": RESULTS.name, "IncidentReported": OBSERVATIONS.name,
    "IncidentStatusChanged": OBSERVATIONS.name, "ArticlePublished": NEWS.name,
}


def muni(slug: str) -> str:
    """Division id of a municipality."""
    return f"{COUNTRY}/region:absheron/municipality:{slug}"


def station(n: int | str) -> str:
    """Division id of a polling station."""
    return f"{COUNTRY}/constituency:23/polling_station:{n}"


@dataclass
class Log:
    """An in-memory event log; each helper appends one event and returns its LogRecord."""

    records: list[LogRecord] = field(default_factory=list)
    _offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=itertools.count)

    def emit(self, record_type: str, key: str, fields: dict[str, Any], *, topic: str | None = None,
             partition: int = 0, event_id: str | None = None, recorded_at: datetime | None = None,
             occurred_at: datetime | None = None, supersedes: LogRecord | str | None = None,
             reason: str = "correction", source: dict[str, Any] | None = None) -> LogRecord:
        """Append an event; ``recorded_at`` defaults to one second after the previous event."""
        n = next(self._seq)
        topic = topic or _TOPIC_OF[record_type]
        offset = self._offsets.get((topic, partition), 0)
        self._offsets[(topic, partition)] = offset + 1
        target = supersedes.value["event_id"] if isinstance(supersedes, LogRecord) else supersedes
        value = {
            "event_id": event_id or str(uuid.UUID(int=n + 1)),
            "occurred_at": occurred_at or T0,
            "recorded_at": recorded_at or T0 + timedelta(seconds=n),
            "source": dict(source or SOURCE),
            "supersedes": {"event_id": target, "reason": reason} if target else None,
            "synthetic": True,
            **fields,
        }
        rec = LogRecord(topic=topic, partition=partition, offset=offset, key=key, record_type=record_type,
                        schema_id=1, value=value)
        self.records.append(rec)
        return rec

    def again(self, rec: LogRecord, *, partition: int | None = None) -> LogRecord:
        """The same event produced once more (a retry): same event_id, new offset."""
        p = rec.partition if partition is None else partition
        offset = self._offsets.get((rec.topic, p), 0)
        self._offsets[(rec.topic, p)] = offset + 1
        copy = replace(rec, partition=p, offset=offset)
        self.records.append(copy)
        return copy

    def election(self, election_id: str = ELECTION, **kw: Any) -> LogRecord:
        return self.emit("ElectionDeclared", election_id, {
            "election_id": election_id, "name": "Municipal elections 2025", "date": date(2025, 1, 29),
            "kind": "MUNICIPAL", "country": "az", "seats_at_stake": None}, **kw)

    def division(self, division_id: str, kind: str, parent_id: str | None, *, municipality_id: str | None = None,
                 seats: int | None = None, election_id: str | None = ELECTION, member_of: list[str] | None = None,
                 label: str | None = None, **kw: Any) -> LogRecord:
        """A DivisionDeclared; ``member_of`` or ``label`` make it a v2 record (v1 otherwise)."""
        fields = {
            "division_id": division_id, "name": division_id.rsplit(":", 1)[-1].title(), "kind": kind,
            "parent_id": parent_id, "election_id": election_id, "municipality_id": municipality_id,
            "seats": seats}
        if member_of is not None or label is not None:
            fields.update(member_of=list(member_of or ()), label=label)
        return self.emit("DivisionDeclared", division_id, fields, **kw)

    def contest(self, contest_id: str, selections: list[str | dict[str, Any]], *, kind: str = "CANDIDATE",
                name: str | None = None, office: str | None = None, district_id: str | None = None,
                number_elected: int | None = 1, votes_allowed: int | None = 1, election_id: str = ELECTION,
                **kw: Any) -> LogRecord:
        """A ContestDeclared (docs/contests.md); a selection given as an id gets its kind from the id's prefix."""
        items = [s if isinstance(s, dict) else selection(s) for s in selections]
        return self.emit("ContestDeclared", contest_id, {
            "contest_id": contest_id, "election_id": election_id, "name": name or contest_id, "kind": kind,
            "office": office, "district_id": district_id, "number_elected": number_elected,
            "votes_allowed": votes_allowed, "selections": items}, **kw)

    def party(self, party_id: str, name: str = "", **kw: Any) -> LogRecord:
        return self.emit("PartyDeclared", party_id, {"party_id": party_id, "name": name or party_id,
                                                     "abbreviation": None}, **kw)

    def candidate(self, candidate_id: str, municipality_id: str, party_id: str | None, *, gender: str = "MALE",
                  education: str = "HIGHER", age_band: str = "AGE_36_50", birth_year: int | None = None,
                  election_id: str = ELECTION, **kw: Any) -> LogRecord:
        return self.emit("CandidateRegistered", candidate_id, {
            "candidate_id": candidate_id, "election_id": election_id, "name": candidate_id.split(":")[1].title(),
            "party_id": party_id, "municipality_id": municipality_id, "gender": gender, "birth_year": birth_year,
            "age_band": age_band, "education": education}, **kw)

    def tally(self, station_id: str, municipality_id: str | None, votes: dict[str, int], *, registered: int = 1000,
              invalid: int = 10, cast: int | None = None, valid: int | None = None, status: str = "FINAL",
              election_id: str = ELECTION, contest_id: str | None = None, **kw: Any) -> LogRecord:
        valid = sum(votes.values()) if valid is None else valid
        key = tally_key({"election_id": election_id, "contest_id": contest_id, "station_id": station_id})
        return self.emit("StationTally", key, {
            "election_id": election_id, "station_id": station_id, "contest_id": contest_id,
            "municipality_id": municipality_id,
            "status": status, "registered_voters": registered,
            "ballots_cast": valid + invalid if cast is None else cast, "valid_ballots": valid,
            "invalid_ballots": invalid,
            "votes": [{"candidate_id": c, "votes": n} for c, n in votes.items()]}, **kw)

    def tally2(self, station_id: str, contest_id: str | None, votes: dict[str, int | dict[str, int | None]], *,
               municipality_id: str | None = None, registered: int | None = 1000, cast: int | None = None,
               valid: int | None | EllipsisType = ..., invalid: int | None = 0, overvotes: int | None = None,
               undervotes: int | None = None, blank_votes: int | None = None, write_ins: int | None = None,
               status: str = "FINAL", election_id: str = ELECTION, **kw: Any) -> LogRecord:
        """A v2 StationTally of one contest. A selection's votes given as ``{method: votes}`` become its
        ``by_method`` (its total is their sum, or give ``"total"``); ``valid`` defaults to the votes' sum (give
        None for an unknown figure) and ``cast`` to valid + invalid (null when either is)."""
        items = []
        for sel, n in votes.items():
            if isinstance(n, dict):
                methods = {m: x for m, x in n.items() if m != "total"}
                total = n.get("total", sum(x or 0 for x in methods.values()))
                items.append({"candidate_id": sel, "votes": total,
                              "by_method": [{"method": m, "votes": x} for m, x in methods.items()]})
            else:
                items.append({"candidate_id": sel, "votes": n, "by_method": []})
        valid = sum(i["votes"] for i in items) if valid is ... else valid
        if cast is None and valid is not None and invalid is not None:
            cast = valid + invalid
        key = f"{election_id}|{station_id}" if contest_id in (None, election_id) \
            else f"{election_id}|{contest_id}|{station_id}"
        return self.emit("StationTally", key, {
            "election_id": election_id, "contest_id": contest_id, "station_id": station_id,
            "municipality_id": municipality_id, "status": status, "registered_voters": registered,
            "ballots_cast": cast, "valid_ballots": valid, "invalid_ballots": invalid, "overvotes": overvotes,
            "undervotes": undervotes, "blank_votes": blank_votes, "write_ins": write_ins, "votes": items}, **kw)

    def summary(self, figures: dict[str, float | tuple[float, str]], *, division_id: str = COUNTRY,
                election_id: str = ELECTION, **kw: Any) -> LogRecord:
        items = []
        for metric, fig in figures.items():
            value, qualifier = fig if isinstance(fig, tuple) else (fig, "EXACT")
            items.append({"metric": metric, "value": float(value), "qualifier": qualifier, "note": None})
        return self.emit("DivisionSummary", f"{election_id}|{division_id}", {
            "election_id": election_id, "division_id": division_id, "figures": items}, **kw)

    def seats(self, municipality_id: str, elected: dict[str, str | None], total: int, *,
              election_id: str = ELECTION, **kw: Any) -> LogRecord:
        return self.emit("SeatAllocation", f"{election_id}|{municipality_id}", {
            "election_id": election_id, "municipality_id": municipality_id, "total_seats": total,
            "elected": [{"candidate_id": c, "party_id": p} for c, p in elected.items()]}, **kw)

    def incident(self, incident_id: str, division_id: str, *, station_id: str | None = None,
                 category: str = "CAROUSEL_VOTING", count: int | None = None, **kw: Any) -> LogRecord:
        return self.emit("IncidentReported", incident_id, {
            "incident_id": incident_id, "election_id": ELECTION, "category": category,
            "division_id": division_id, "station_id": station_id, "reporter": "Observer Mission",
            "reporter_kind": "OBSERVER_MISSION", "description": "seen", "evidence_urls": [], "count": count}, **kw)

    def status(self, incident_id: str, status: str, note: str | None = None, **kw: Any) -> LogRecord:
        return self.emit("IncidentStatusChanged", incident_id, {"incident_id": incident_id, "status": status,
                                                                "note": note}, **kw)

    def article(self, article_id: str, *, people: list[str] = (), division_ids: list[str] = (),
                **kw: Any) -> LogRecord:
        return self.emit("ArticlePublished", article_id, {
            "article_id": article_id, "outlet": "Daily", "url": None, "headline": "Results", "published_at": T0,
            "language": "en", "summary": "...", "people": list(people), "organisations": ["CEC"],
            "places": ["Absheron"], "election_id": ELECTION, "division_ids": list(division_ids),
            "statements": [{"speaker": "A", "organisation": None, "text": "t"}]}, **kw)

    def retract(self, target: LogRecord, reason: str = "wrong", **kw: Any) -> LogRecord:
        return self.emit("Retraction", target.key, {"target_event_id": target.value["event_id"],
                                                    "target_key": target.key, "reason": reason},
                         topic=target.topic, **kw)


_SELECTION_KINDS = {"candidate": "CANDIDATE", "party": "PARTY", "option": "OPTION", "write-in": "WRITE_IN"}


def selection(selection_id: str, label: str | None = None, **fields: Any) -> dict[str, Any]:
    """A ContestSelection dict; its kind (and candidate or party id) follow from the id's prefix."""
    prefix = selection_id.split(":", 1)[0]
    kind = _SELECTION_KINDS.get(prefix, "OTHER")
    return {"selection_id": selection_id, "kind": kind, "label": label or selection_id.split(":", 1)[-1],
            "candidate_id": selection_id if kind == "CANDIDATE" else None,
            "party_id": selection_id if kind == "PARTY" else None, "running_mates": [], **fields}


REFERENDUM = "local.az.constitution.2025-01-29"


def small_election() -> Log:
    """A complete, consistent election: 2 municipalities, 4 stations, 4 candidates (v1 tallies: the default
    contest) and a referendum at every station (v2 tallies); every gate check passes."""
    log = Log()
    log.election()
    log.division(COUNTRY, "COUNTRY", None)
    log.division(f"{COUNTRY}/region:absheron", "REGION", COUNTRY)
    log.division(muni("a"), "MUNICIPALITY", f"{COUNTRY}/region:absheron", seats=1)
    log.division(muni("b"), "MUNICIPALITY", f"{COUNTRY}/region:absheron", seats=1)
    log.division(f"{COUNTRY}/constituency:23", "CONSTITUENCY", COUNTRY)
    for n, m in ((1, "a"), (2, "a"), (3, "b"), (4, "b")):
        log.division(station(n), "POLLING_STATION", f"{COUNTRY}/constituency:23", municipality_id=muni(m))
    log.party("party:real", "Republican Alternative")
    log.party("party:yap", "New Azerbaijan")
    log.candidate("candidate:aysel", muni("a"), "party:real", gender="FEMALE", age_band="AGE_21_35")
    log.candidate("candidate:babek", muni("a"), None, education="SECONDARY")
    log.candidate("candidate:cavid", muni("b"), "party:yap", birth_year=1995, age_band="UNKNOWN")
    log.candidate("candidate:dilara", muni("b"), "party:real", gender="FEMALE")
    log.tally(station(1), muni("a"), {"candidate:aysel": 300, "candidate:babek": 200})
    log.tally(station(2), muni("a"), {"candidate:aysel": 250, "candidate:babek": 100})
    log.tally(station(3), muni("b"), {"candidate:cavid": 400, "candidate:dilara": 150}, registered=800)
    log.tally(station(4), muni("b"), {"candidate:cavid": 90, "candidate:dilara": 300}, registered=700)
    log.contest(REFERENDUM, ["option:yes", "option:no"], kind="BALLOT_MEASURE", name="Constitutional referendum",
                district_id=COUNTRY, number_elected=None)
    # The referendum is on the same ballots: the station's registered and cast figures, the contest's own rest.
    log.tally2(station(1), REFERENDUM, {"option:yes": {"ELECTION_DAY": 280, "MAIL": 20}, "option:no": 190},
               municipality_id=muni("a"), invalid=20, blank_votes=5, cast=510)
    log.tally2(station(2), REFERENDUM, {"option:yes": 200, "option:no": 150}, municipality_id=muni("a"),
               invalid=10)
    log.tally2(station(3), REFERENDUM, {"option:yes": 260, "option:no": 290}, municipality_id=muni("b"),
               registered=800, invalid=10)
    log.tally2(station(4), REFERENDUM, {"option:yes": 100, "option:no": 290}, municipality_id=muni("b"),
               registered=700, invalid=10)
    log.seats(muni("a"), {"candidate:aysel": "party:real"}, 1)
    log.seats(muni("b"), {"candidate:cavid": "party:yap"}, 1)
    registered, cast = 1000 + 1000 + 800 + 700, 510 + 360 + 560 + 400
    log.summary({"REGISTERED_VOTERS": registered, "BALLOTS_CAST": (cast, "ABOUT"), "TURNOUT": cast / registered,
                 "MEMBERS_ELECTED": 2, "MUNICIPALITIES": 2, "CANDIDATES_PARTY": 3, "CANDIDATES_INDEPENDENT": 1,
                 "CANDIDATES_WOMEN_SHARE": 0.5, "CANDIDATES_HIGHER_EDUCATION_SHARE": 0.75,
                 "CANDIDATES_AGED_21_35_SHARE": 0.5})
    log.incident("incident:carousel-1", muni("a"), station_id=station(1), count=3)
    log.incident("incident:threat-1", muni("b"), category="THREAT")
    log.status("incident:carousel-1", "VERIFIED")
    log.article("article:results-day", people=["Aysel"], division_ids=[muni("a")])
    return log


def generate_election(stations: int, candidates_per_station: int = 12, stations_per_municipality: int = 100,
                      *, election_id: str = ELECTION) -> Iterator[LogRecord]:
    """Stream a synthetic election of ``stations`` polling stations (reference data first, then tallies).

    Each station declares a division and reports one FINAL tally with ``candidates_per_station`` (or one
    more, every other station) contestants; vote counts are arithmetic, so the output is reproducible.
    """
    munis = (stations + stations_per_municipality - 1) // stations_per_municipality
    topic_offsets: dict[str, int] = {}
    counter = itertools.count(1)
    recorded = T0 + timedelta(hours=1)
    parties = [f"party:p{i}" for i in range(8)]

    def rec(record_type: str, key: str, fields: dict[str, Any], partitions: int) -> LogRecord:
        n = next(counter)
        topic = _TOPIC_OF[record_type]
        off = topic_offsets.get(topic, 0)
        topic_offsets[topic] = off + 1
        value = {"event_id": str(uuid.UUID(int=n)), "occurred_at": T0, "recorded_at": recorded, "source": SOURCE,
                 "supersedes": None, "synthetic": True, **fields}
        return LogRecord(topic, n % partitions, off, key, record_type, 1, value)

    yield rec("ElectionDeclared", election_id, {"election_id": election_id, "name": "Big", "date": date(2025, 1, 29),
                                                "kind": "MUNICIPAL", "country": "az", "seats_at_stake": None}, 3)
    yield rec("DivisionDeclared", COUNTRY, {"division_id": COUNTRY, "name": "Az", "kind": "COUNTRY",
                                            "parent_id": None, "election_id": None, "municipality_id": None,
                                            "seats": None}, 3)
    for p in parties:
        yield rec("PartyDeclared", p, {"party_id": p, "name": p, "abbreviation": None}, 3)
    width = candidates_per_station + 1
    for m in range(munis):
        mid = muni(f"m{m}")
        yield rec("DivisionDeclared", mid, {"division_id": mid, "name": f"M{m}", "kind": "MUNICIPALITY",
                                            "parent_id": COUNTRY, "election_id": election_id,
                                            "municipality_id": None, "seats": 5}, 3)
        for c in range(width):
            cid = f"candidate:m{m}-c{c}"
            yield rec("CandidateRegistered", cid, {
                "candidate_id": cid, "election_id": election_id, "name": cid, "municipality_id": mid,
                "party_id": None if c % 5 == 4 else parties[c % len(parties)],
                "gender": "FEMALE" if c % 2 else "MALE", "birth_year": 1960 + c, "age_band": "UNKNOWN",
                "education": "HIGHER" if c % 3 else "SECONDARY"}, 3)
    for s in range(stations):
        m = s // stations_per_municipality
        sid, mid = station(s), muni(f"m{m}")
        yield rec("DivisionDeclared", sid, {"division_id": sid, "name": f"S{s}", "kind": "POLLING_STATION",
                                            "parent_id": COUNTRY, "election_id": election_id,
                                            "municipality_id": mid, "seats": None}, 3)
    for s in range(stations):
        m = s // stations_per_municipality
        k = candidates_per_station + (s % 2)
        votes = [{"candidate_id": f"candidate:m{m}-c{c}", "votes": (s * 7 + c * 13) % 97} for c in range(k)]
        valid = sum(v["votes"] for v in votes)
        yield rec("StationTally", f"{election_id}|{station(s)}", {
            "election_id": election_id, "station_id": station(s), "municipality_id": muni(f"m{m}"),
            "status": "FINAL", "registered_voters": 2000, "ballots_cast": valid + 5, "valid_ballots": valid,
            "invalid_ballots": 5, "votes": votes}, 6)
