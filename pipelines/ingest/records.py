"""What reading an input line gives: a :class:`Parsed` event ready to produce, or a :class:`Rejected` one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.contract.record_types import EVENT_TYPE_BY_NAME, topic_of
from pipelines.contract.topics import TOPIC_BY_KIND, TopicSpec
from pipelines.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid input event.

    Attributes:
        file: input file path, as given.
        line: 1-based line of the event (for CSV, the first row of the station).
        raw: the input text (for CSV, the station's rows joined by newlines).
        record_type: short Avro record name.
        topic: name of the Kafka topic it goes to.
        key: message key.
        value: the record, ready for ``fastavro.schemaless_writer`` (datetimes, dates, defaults, event_id).
    """

    file: str
    line: int
    raw: str
    record_type: str
    topic: str
    key: str
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input record that failed; becomes a DeadLetter event.

    Attributes:
        file: input file path, as given.
        line: 1-based line of the problem (for CSV, the offending row).
        raw: the input text.
        reason_code: one of :data:`pipelines.contract.reasons.REASON_CODES`.
        reason: one line naming the field, e.g. ``votes[3].votes: negative count -5``.
        field: the offending field path, when one field is to blame.
        kind: the input kind requested (reference, results, observations, news), if any.
    """

    file: str
    line: int
    raw: str
    reason_code: str
    reason: str
    field: str | None
    kind: str | None


def kind_topic(kind: str | None) -> TopicSpec | None:
    """The topic of an input kind, or None for no filter.

    Raises:
        ConfigError: ``kind`` is not one of reference, results, observations, news.
    """
    if kind is None:
        return None
    try:
        return TOPIC_BY_KIND[kind]
    except KeyError:
        raise ConfigError(f"kind: unknown input kind {kind!r} (expected one of {sorted(TOPIC_BY_KIND)})") from None


def route(record_type: str, value: dict[str, Any]) -> tuple[str, str]:
    """The (topic name, message key) of a converted event."""
    return topic_of(record_type, value).name, EVENT_TYPE_BY_NAME[record_type].key(value)
