"""The unit the fold reads: one decoded Kafka record with its position in the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A decoded event and where it sits in Kafka.

    Attributes:
        topic: Kafka topic name.
        partition: partition number.
        offset: offset within the partition.
        key: message key (the natural key of what the event describes).
        record_type: short Avro record name, e.g. ``"StationTally"``.
        schema_id: registry schema id the value was written with.
        value: the fastavro-decoded record (timestamps are aware datetimes, dates are ``date``).
    """

    topic: str
    partition: int
    offset: int
    key: str
    record_type: str
    schema_id: int
    value: dict[str, Any]
