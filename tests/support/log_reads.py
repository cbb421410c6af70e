"""A Kafka read without Kafka: snapshots of a ``factories.Log`` and a reader of its records within one, for tests
of the incremental publish (checkpoints, read ranges) that need exact offsets but no broker."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipelines.fold.core import extract_all
from pipelines.fold.read import Keep, ReadResult
from pipelines.kafka.log_record import LogRecord
from pipelines.kafka.snapshot import Snapshot
from tests.support.factories import Log


def snapshot_of(records: Iterable[LogRecord]) -> Snapshot:
    """The snapshot whose offsets are exactly ``records`` (a prefix of the log: offsets grow per partition)."""
    end: dict[tuple[str, int], int] = {}
    for r in records:
        end[(r.topic, r.partition)] = max(end.get((r.topic, r.partition), 0), r.offset + 1)
    return Snapshot(start={tp: 0 for tp in end}, end=end)


def log_reader(log: Log) -> Callable[..., ReadResult]:
    """What the Kafka read returns for a snapshot: the extraction of the log's records within its offsets, or,
    with ``keep``, what ``keep`` made of it (as ``read_snapshot`` in one process)."""
    def read(_settings: object, snap: Snapshot, keep: Keep | None = None) -> ReadResult:
        wanted = [r for r in log.records
                  if snap.start.get((r.topic, r.partition), 0) <= r.offset < snap.end.get((r.topic, r.partition), 0)]
        seconds = [{"consume_decode_s": 0.0, "extract_s": 0.0}]
        if keep is None:
            return ReadResult(extract_all(wanted), {}, 1, seconds)
        return ReadResult(None, {}, 1, seconds, kept=[keep(extract_all(wanted))])
    return read
