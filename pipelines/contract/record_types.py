"""Every record type: what it means, its message key, and (read off ``topics.py``) which topic carries it.

The key decides the partition and therefore the per-entity order, so it is the natural id of what the event
describes (docs/events.md, "Topics"). Which record types go on which topic is declared once, on each
:class:`~pipelines.contract.topics.TopicSpec`; :attr:`EventType.topics` is derived from it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.contract import topics
from pipelines.contract.ids import ARTICLE_PREFIX, INCIDENT_PREFIX
from pipelines.contract.topics import TopicSpec

KeyFn = Callable[[Mapping[str, Any]], str]
# Fixed namespace for derived event ids: changing it would change every derived id, so never do.
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ballotstream.io/events")
# Envelope fields that are not content: the same fact recorded twice must get the same id.
_NOT_CONTENT = frozenset({"event_id", "recorded_at"})
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              default=lambda v: _plain(v)).encode


@dataclass(frozen=True, slots=True)
class EventType:
    """A record type: its Avro short name, its key and its meaning.

    Attributes:
        name: short Avro record name, e.g. ``"StationTally"``.
        key: the message key of a value.
        doc: what the event means.
    """

    name: str
    key: KeyFn
    doc: str

    @property
    def topics(self) -> tuple[TopicSpec, ...]:
        """Topics carrying it (from ``TopicSpec.record_types``); one, except ``Retraction`` (which goes to the
        topic of what it retracts)."""
        return TOPICS_BY_RECORD_TYPE.get(self.name, ())

    @property
    def topic(self) -> TopicSpec:
        """The one topic of this record type.

        Raises:
            KeyError: the type goes to several topics (``Retraction``); use :func:`topic_of`.
        """
        if len(self.topics) != 1:
            raise KeyError(f"{self.name} goes to {len(self.topics)} topics; use topic_of(name, value)")
        return self.topics[0]


def _field(name: str) -> KeyFn:
    return lambda v: str(v[name])


def _pair(name: str) -> KeyFn:
    return lambda v: f"{v['election_id']}|{v[name]}"


def tally_key(value: Mapping[str, Any]) -> str:
    """A StationTally's key: one per contest x station (docs/contests.md, rule 2).

    A tally of the election's default contest (no ``contest_id``, as every v1 tally, or the election id itself)
    keeps the v1 key ``election_id|station_id``, so v2 corrections of v1 tallies still supersede them by key;
    any other contest gets ``election_id|contest_id|station_id``, so two contests at one station never replace
    each other.
    """
    election, contest = value["election_id"], value.get("contest_id")
    if contest is None or contest == election:
        return f"{election}|{value['station_id']}"
    return f"{election}|{contest}|{value['station_id']}"


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("ElectionDeclared", _field("election_id"),
              "An election exists: id, name, polling day and kind."),
    EventType("DivisionDeclared", _field("division_id"),
              "A division exists (country, region, municipality, constituency or polling station) in a hierarchy."),
    EventType("PartyDeclared", _field("party_id"), "A political party exists."),
    EventType("CandidateRegistered", _field("candidate_id"),
              "A candidate stands for a municipal council or in a contest, with party and demographics."),
    EventType("ContestDeclared", _field("contest_id"),
              "A contest of an election exists (office, party list, ballot measure, retention) with its selections."),
    EventType("StationTally", tally_key,
              "One polling station's result protocol for one contest: register, ballots and votes per selection."),
    EventType("DivisionSummary", _pair("division_id"),
              "Figures for a division exactly as an authority or source reported them, with qualifiers."),
    EventType("SeatAllocation", _pair("municipality_id"),
              "Who won the seats of a municipal council."),
    EventType("IncidentReported", _field("incident_id"),
              "Someone reports an irregularity: what, where, by whom, with evidence."),
    EventType("IncidentStatusChanged", _field("incident_id"),
              "An incident report's verification status moves along its lifecycle."),
    EventType("ArticlePublished", _field("article_id"),
              "A news article about the election, with the people, places and statements in it."),
    EventType("Retraction", _field("target_key"),
              "An earlier event is withdrawn from current state (kept in history)."),
    EventType("DeadLetter", lambda v: f"{v['file']}:{v['line']}",
              "An input record was rejected; carries the raw text, where it was and why."),
    EventType("ReleasePublished", _field("dataset"),
              "A dataset release passed the gate and was published."),
)
EVENT_TYPE_BY_NAME: dict[str, EventType] = {e.name: e for e in EVENT_TYPES}
# The other view of ``TopicSpec.record_types``: record type -> the topics declared to carry it, in ALL_TOPICS order.
TOPICS_BY_RECORD_TYPE: dict[str, tuple[TopicSpec, ...]] = {
    name: tuple(spec for spec in topics.ALL_TOPICS if name in spec.record_types)
    for name in dict.fromkeys(name for spec in topics.ALL_TOPICS for name in spec.record_types)
}
# Record types that come in through `ballotstream ingest`; DeadLetter and ReleasePublished are written by us.
INGESTIBLE: frozenset[str] = frozenset(
    e.name for e in EVENT_TYPES if all(t.name in {et.name for et in topics.EVENT_TOPICS} for t in e.topics)
)


def retraction_topic(target_key: str) -> TopicSpec:
    """The topic a Retraction belongs to, read off the key of what it retracts.

    Results keys are ``election_id|...``; observation and news keys are incident and article ids; anything
    else is a reference entity id.
    """
    if "|" in target_key:
        return topics.RESULTS
    if target_key.startswith(INCIDENT_PREFIX):
        return topics.OBSERVATIONS
    if target_key.startswith(ARTICLE_PREFIX):
        return topics.NEWS
    return topics.REFERENCE


def topic_of(record_type: str, value: Mapping[str, Any]) -> TopicSpec:
    """The topic one event is produced to (resolves ``Retraction`` by its target key)."""
    if record_type == "Retraction":
        return retraction_topic(str(value["target_key"]))
    return EVENT_TYPE_BY_NAME[record_type].topic


def _plain(value: Any) -> Any:
    # Times become epoch millis (what Avro stores), so a datetime and its ISO text give the same id.
    if isinstance(value, dt.datetime):
        return (value - _EPOCH) // dt.timedelta(milliseconds=1)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def canonical_content(record_type: str, value: Mapping[str, Any]) -> str:
    """The canonical JSON of an event's content: sorted keys, no whitespace, without id and recorded_at."""
    content = {k: v for k, v in value.items() if k not in _NOT_CONTENT}
    content["type"] = record_type
    return _canonical(content)


def derive_event_id(record_type: str, value: Mapping[str, Any]) -> str:
    """A deterministic event id: uuid5 of the canonical content (see :func:`canonical_content`).

    Args:
        record_type: short record name; part of the content, so equal fields of two types differ.
        value: the event with defaults filled (datetimes or epoch millis both work for timestamps).

    Returns:
        The uuid as canonical lower-case text.
    """
    # uuid.uuid5 by hand (same bytes, same text): the UUID object and its validation cost more than the hash.
    digest = hashlib.sha1(_NAMESPACE_BYTES + canonical_content(record_type, value).encode()).digest()
    h = (int.from_bytes(digest[:16]) & _UUID5_CLEAR) | _UUID5_SET
    text = f"{h:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# RFC 4122 version 5 and variant bits, as uuid.UUID(bytes=..., version=5) sets them.
_UUID5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID5_SET = (5 << 76) | (0x8000 << 48)
