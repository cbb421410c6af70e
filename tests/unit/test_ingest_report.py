"""The ingest summary never calls a record produced unless Kafka acknowledged every record of the run."""

from __future__ import annotations

from collections import Counter

from pipelines.ingest.report import IngestReport


def test_a_run_with_unacknowledged_records_says_sent_not_produced() -> None:
    report = IngestReport(read=10, produced=Counter({"ballotstream.results": 10}),
                          failed=["KafkaTimeoutError: batch expired"] * 3, seconds=1.0)
    lines = report.lines()
    assert lines[0].startswith("read 10, sent 10 (3 not acknowledged by Kafka), rejected 0")
    assert "  sent to ballotstream.results: 10" in lines and not any("produced" in line for line in lines)


def test_a_fully_acknowledged_run_says_produced() -> None:
    report = IngestReport(read=10, produced=Counter({"ballotstream.results": 10}), seconds=1.0)
    assert report.lines()[:2] == ["read 10, produced 10, rejected 0 in 1.0s (10 records/s)",
                                  "  produced to ballotstream.results: 10"]
