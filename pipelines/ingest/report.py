"""What an ingest did: the report :func:`pipelines.ingest.run.ingest` returns and the sink fills in."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pipelines.contract.topics import DEAD_LETTER

EXAMPLES = 5  # rejections shown on the console


@dataclass
class IngestReport:
    """What an ingest did: counts per outcome, per topic and per rejection reason."""

    read: int = 0
    produced: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Seconds per stage: read_validate and encode (CPU seconds, summed over worker processes), produce (wall
    # time checking and handing records to the producer, in this process), flush (waiting for the last acks).
    stages: Counter[str] = field(default_factory=Counter)
    # Peak resident memory (KiB) per process that parsed chunks (this one too, when it did).
    peak_rss_kib: dict[int, int] = field(default_factory=dict)
    # Input rows deliberately not converted, by why (e.g. county-total rows of an OpenElections file).
    skipped: Counter[str] = field(default_factory=Counter)
    # The first rejections, ``file:line: field: reason``, for the console (all of them are dead letters).
    examples: list[str] = field(default_factory=list)

    def note_rejection(self, file: str, line: int, field_name: str | None, reason: str) -> None:
        if len(self.examples) < EXAMPLES:
            where = f"{file}:{line}" + (f" [{field_name}]" if field_name else "")
            self.examples.append(f"{where}: {reason}")

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def produced_total(self) -> int:
        return sum(self.produced.values())

    def lines(self) -> list[str]:
        rate = self.read / self.seconds if self.seconds else 0.0
        # Records are counted when handed to the producer; only a run without delivery failures may call them
        # produced. Otherwise they were sent, and some (len(failed)) are not known to be on Kafka.
        done = "sent" if self.failed else "produced"
        unacked = f" ({len(self.failed)} not acknowledged by Kafka)" if self.failed else ""
        out = [f"read {self.read}, {done} {self.produced_total}{unacked}, rejected {self.rejected_total} "
               f"in {self.seconds:.1f}s ({rate:,.0f} records/s)"]
        out += [f"  {done} to {topic}: {n}" for topic, n in sorted(self.produced.items())]
        out += [f"  rejected {reason}: {n}" for reason, n in sorted(self.rejected.items())]
        out += [f"  skipped {why}: {n}" for why, n in sorted(self.skipped.items())]
        if self.rejected_total:
            out.append(f"  rejected records are on {DEAD_LETTER.name} with their file, line and reason; the first:")
            out += [f"    {e}" for e in self.examples]
        return out
