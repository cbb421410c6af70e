"""What reading an input line gives: a :class:`Parsed` event ready to produce, or a :class:`Rejected` one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.contract.record_types import EVENT_TYPE_BY_NAME, topic_of
from pipelines.contract.topics import TOPIC_BY_KIND, TopicSpec
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.settings import Settings

# Kafka's default largest message is 1 MiB (1,048,576 bytes); a record of up to 1,000,000 bytes leaves ~47 KiB
# for framing, key, headers and a dead letter's file, reason and other fields.
MAX_RECORD_BYTES = 1_000_000
MAX_DEPTH = 32  # the deepest record type nests 3 levels (StationTally.votes[i].votes)
# A dead letter's raw text of a record too large to ingest keeps this much of its start; reasons are clipped
# to one screen line or so (they can quote an offending value of any length).
RAW_HEAD_CHARS = 4096
REASON_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Limits:
    """How big and how deeply nested one input record may be (see ``BALLOTSTREAM_INGEST_*`` settings)."""

    max_record_bytes: int = MAX_RECORD_BYTES
    max_depth: int = MAX_DEPTH

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.ingest_max_record_bytes, settings.ingest_max_depth)


DEFAULT_LIMITS = Limits()


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

    def __post_init__(self) -> None:
        # A dead letter must always encode and fit in a Kafka message: text with lone surrogates (from JSON
        # escapes such as "\\ud800" in a key) is escaped, and a reason quoting a huge value is clipped.
        for name in ("raw", "reason", "field"):
            value = getattr(self, name)
            if value is not None and not value.isascii():
                object.__setattr__(self, name, value.encode("utf-8", "backslashreplace").decode("utf-8"))
        if len(self.reason) > REASON_CHARS:
            object.__setattr__(self, "reason", self.reason[:REASON_CHARS] + "…")
        if self.field is not None and len(self.field) > REASON_CHARS:
            object.__setattr__(self, "field", self.field[:REASON_CHARS] + "…")


def head(text: str, chars: int = RAW_HEAD_CHARS) -> str:
    """The start of a too-large record's text, marked as cut."""
    return text if len(text) <= chars else f"{text[:chars]}… [cut: the record is longer than this]"


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
