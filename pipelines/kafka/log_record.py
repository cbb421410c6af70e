"""The unit the fold reads: one decoded Kafka record with its position in the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa


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


@dataclass(frozen=True, slots=True)
class ColumnRun:
    """Records of one partition and one writer schema, in log order, decoded into columns at once.

    The snapshot read hands the fold its most frequent record types this way: decoding a run of bodies into
    Arrow columns skips the dict built per record, which is most of a full read's cost.

    Attributes:
        topic, partition, record_type, schema_id: as for ``LogRecord``, shared by every record of the run.
        offsets: each record's offset, in log order.
        keys: each record's message key.
        values: one struct per record, its fields those of the writer schema (without logical types).
    """

    topic: str
    partition: int
    record_type: str
    schema_id: int
    offsets: list[int] | np.ndarray
    keys: list[str] | pa.Array
    values: pa.StructArray

    def __len__(self) -> int:
        return len(self.offsets)
