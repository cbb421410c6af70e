"""Streaming writers for generated election files, with optional fault injection and a fault log.

Files: ``reference.jsonl``, ``results.csv`` (tallies, with their contest), ``results.jsonl`` (summaries, seats, corrections),
``observations.jsonl``, ``news.jsonl`` and, when faults are injected, ``faults.jsonl``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, TextIO

from pipelines.generator import faults as F
from pipelines.ingest.tally_csv import TALLY_COLUMNS_WITH_CONTEST

REFERENCE = "reference.jsonl"
RESULTS_CSV = "results.csv"
RESULTS = "results.jsonl"
OBSERVATIONS = "observations.jsonl"
NEWS = "news.jsonl"
FAULTS = "faults.jsonl"
FILES: tuple[str, ...] = (REFERENCE, RESULTS_CSV, RESULTS, OBSERVATIONS, NEWS)


class EventFiles:
    """Writes events line by line and counts lines, so every event's (file, line) is known."""

    def __init__(self, out_dir: Path, *, faults: float = 0.0, fault_seed: int = 0) -> None:
        """Open every output file in ``out_dir`` (created if needed, files truncated).

        Args:
            out_dir: target directory.
            faults: probability, per written event, of injecting one fault next to it.
            fault_seed: seed of the fault decisions (separate from the data's, so data does not shift).
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.faults = faults
        self.rng = random.Random(fault_seed)
        self._handles: dict[str, TextIO] = {n: (out_dir / n).open("w", encoding="utf-8", newline="") for n in FILES}
        self.lines: dict[str, int] = dict.fromkeys(FILES, 0)
        self.events: dict[str, int] = dict.fromkeys(FILES, 0)
        self._fault_log: TextIO | None = (out_dir / FAULTS).open("w", encoding="utf-8") if faults > 0 else None
        self.fault_counts: dict[str, int] = {}
        self._previous_rows: list[list[str]] | None = None
        self.columns = TALLY_COLUMNS_WITH_CONTEST  # every generated tally names its contest
        self._handles[RESULTS_CSV].write(",".join(self.columns) + "\n")
        self.lines[RESULTS_CSV] = 1

    def _emit(self, name: str, text: str) -> int:
        self._handles[name].write(text + "\n")
        self.lines[name] += 1
        return self.lines[name]

    def log_fault(self, name: str, line: int, fault: str, reason_code: str | None) -> None:
        """Record one injected fault; ``reason_code`` None means the event must be accepted."""
        assert self._fault_log is not None
        expect = "accepted" if reason_code is None else "dead_letter"
        entry = {"file": name, "line": line, "fault": fault, "expect": expect, "reason_code": reason_code}
        self._fault_log.write(json.dumps(entry) + "\n")
        self.fault_counts[fault] = self.fault_counts.get(fault, 0) + 1

    def write(self, name: str, obj: dict[str, Any]) -> int:
        """Write one event (a plain-JSON dict with ``type``) to a JSONL file; returns its line number."""
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        line = self._emit(name, text)
        self.events[name] += 1
        if self.faults and self.rng.random() < self.faults:
            for fault in self.rng.sample(F.JSONL_FAULTS, len(F.JSONL_FAULTS)):
                bad = F.mutate_json(fault, obj, text)
                if bad is not None:
                    self.log_fault(name, self._emit(name, bad), fault, F.REJECTING.get(fault))
                    break
        return line

    def write_tally(self, rows: list[list[str]]) -> int:
        """Write one station's CSV rows; returns the line of its first row.

        A CSV fault is a bad copy of the *previous* station's block, so it never touches a block of the same
        station (consecutive rows of one station would merge into one event).
        """
        first = self.lines[RESULTS_CSV] + 1
        for row in rows:
            self._emit(RESULTS_CSV, ",".join(row))
        self.events[RESULTS_CSV] += 1
        previous, self._previous_rows = self._previous_rows, rows
        if previous is not None and self.faults and self.rng.random() < self.faults:
            fault = self.rng.choice(F.CSV_FAULTS)
            bad, blamed = F.mutate_rows(fault, previous, self.rng)
            start = self.lines[RESULTS_CSV] + 1
            for row in bad:
                self._emit(RESULTS_CSV, ",".join(row))
            self.log_fault(RESULTS_CSV, start + blamed, fault, F.REJECTING[fault])
        return first

    def close(self) -> None:
        """Flush and close every file."""
        for handle in self._handles.values():
            handle.close()
        if self._fault_log is not None:
            self._fault_log.close()
