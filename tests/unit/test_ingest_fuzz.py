"""A generated corpus of hostile files goes through ingest's own path minus Kafka (chunks, then the workers'
parse, validate and encode): no exception escapes, every valid record is accepted, every malformed one is
rejected with the expected reason at its line, and the counts add up. Seeded, so failures reproduce."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from pipelines.ingest.chunks import chunks
from pipelines.ingest.records import Limits, Rejected
from pipelines.ingest.tally_csv import TALLY_COLUMNS
from pipelines.ingest.work import Encoded, process_chunk
from tests.support.inputs import csv_rows, summary_with, tally

LIMITS = Limits(max_record_bytes=20_000, max_depth=16)
# `make chaos` (CHAOS_ROUNDS=50) fuzzes 7x the files: 420 files, about 12,000 records; same seed, so reproducible.
FILES = 60 * max(1, int(os.environ.get("CHAOS_ROUNDS", "0")) // 7)


def _random_bytes(rng: random.Random) -> bytes:
    body = bytes(rng.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(rng.randint(1, 80)))
    return body + b"\xff"  # never valid UTF-8


def _valid(rng: random.Random) -> bytes:
    n = rng.randint(1, 6)
    votes = [{"candidate_id": f"candidate:c{i}", "votes": rng.randint(0, 9)} for i in range(n)]
    org = rng.choice(["CEC", "Mərkəzi Seçki Komissiyası", "CEC\nBaku", "quote \" and [brackets] {}"])
    return json.dumps(tally(votes=votes, source={"organisation": org, "kind": "ELECTION_AUTHORITY", "url": None}),
                      ensure_ascii=rng.random() < 0.5).encode()


# kind -> (expected reason code or None for accepted, line maker)
JSONL_KINDS = {
    "valid": (None, _valid),
    "summary": (None, lambda rng: summary_with(str(rng.random()))),
    "random_bytes": ("invalid_encoding", _random_bytes),
    "truncated_utf8": ("invalid_encoding", lambda rng: _valid(rng)[:12] + "ə".encode()[:1]),
    "deep": ("too_deeply_nested", lambda rng: b"[" * rng.randint(17, 20_000) + b"]" * 3),
    "huge": ("record_too_large", lambda rng: _valid(rng)[:-1] + b', "pad": "' + b"x" * rng.randint(20_001, 60_000)
             + b'"}'),
    "nan": ("wrong_type", lambda rng: summary_with(rng.choice(["NaN", "Infinity", "-Infinity", "1e999"]))),
    "dup_key": ("duplicate_key", lambda rng: _valid(rng)[:-1] + b', "status": "FINAL"}'),
    "nul_timestamp": ("control_character", lambda rng: json.dumps(tally(occurred_at="2025-01-29T20:00:00Z\x00"))
                      .encode()),
    "control_id": ("invalid_id", lambda rng: json.dumps(tally(station_id="ocd-division/country:az\x07")).encode()),
    "truncated_json": ("malformed_json", lambda rng: _valid(rng)[: rng.randint(1, 30)].rstrip(b"\\")),
    "surrogate": ("invalid_encoding", lambda rng: _valid(rng).replace(b'"FINAL"', b'"\\ud83d"', 1).replace(
        b'"status": "FINAL"', b'"status": "FINAL"').replace(b'"organisation": "', b'"organisation": "\\udc00', 1)),
}


def _jsonl_file(rng: random.Random, path: Path) -> list[tuple[int, str | None]]:
    """Write a JSONL file; return (line, expected reason or None) per record."""
    out, expect = [], []
    if rng.random() < 0.3:
        out.append(b"\xef\xbb\xbf")
    kinds = list(JSONL_KINDS)
    for line in range(1, rng.randint(5, 60)):
        kind = rng.choice(kinds) if rng.random() < 0.4 else rng.choice(["valid", "summary"])
        code, make = JSONL_KINDS[kind]
        out.append(make(rng) + rng.choice([b"\n", b"\r\n", b"\r"]))
        expect.append((line, code))
    if rng.random() < 0.5:  # no line end at the end of the file
        out[-1] = out[-1].rstrip(b"\r\n")
    path.write_bytes(b"".join(out))
    return expect


def _csv_file(rng: random.Random, path: Path) -> list[tuple[int, str | None]]:
    """Write a tally CSV (stations of valid rows, some with one hostile row); (first line, expected) per station."""
    out = [(b"\xef\xbb\xbf" if rng.random() < 0.3 else b"") + ",".join(TALLY_COLUMNS).encode()]
    expect, line = [], 2
    for n in range(rng.randint(1, 30)):
        rows = [r.replace("polling_station:32", f"polling_station:{n}").encode()
                for r in csv_rows([str(rng.randint(0, 9)) for _ in range(rng.randint(1, 5))])]
        lines = [1] * len(rows)
        if rng.random() < 0.3:  # RFC 4180: a quoted organisation holding a line end, a comma and a quote
            rows = [r.replace(b",CEC,", b',"CEC,\nBaku ""office""",') for r in rows]
            lines = [2] * len(rows)
        bad, code = rng.choice([(None, None)] * 3 + [
            (b"C\xffEC", "invalid_encoding"), (b"CE" + "ə".encode()[:1], "invalid_encoding"),
            (b'"CEC', "malformed_csv"), (b'"CEC"x', "malformed_csv"), (b"C" * 25_000, "record_too_large")])
        at = rng.randrange(len(rows))
        first = line
        if bad is not None:
            rows[at] = rows[at].split(b",", 11)[0] + b"," + b",".join(rows[at].split(b",")[1:11]) + b"," + bad + \
                b",ELECTION_AUTHORITY,"
            lines[at] = 1
            code_line = line + sum(lines[:at])
        out += rows
        line += sum(lines)
        expect.append((code_line, code) if bad is not None else (first, None))
    path.write_bytes(b"\n".join(out) + rng.choice([b"\n", b""]))
    return expect


@pytest.mark.parametrize("size", [1024, 1 << 20])
def test_fuzz_corpus_no_traceback_valid_accepted_malformed_rejected(tmp_path: Path, size: int) -> None:
    rng = random.Random(20250129)
    lines = accepted = rejected = malformed_accepted = valid_refused = 0
    for i in range(FILES):
        csv = i % 3 == 2
        path = tmp_path / f"f{i}.{'csv' if csv else 'jsonl'}"
        expect = (_csv_file if csv else _jsonl_file)(rng, path)
        got: list[tuple[int, str | None]] = []
        for chunk in chunks(path, csv, None, size, LIMITS):  # nothing may raise: that is the point
            items = [chunk] if isinstance(chunk, Rejected) else process_chunk(chunk, None).items
            for item in items:
                got.append((item.line, item.reason_code if isinstance(item, Rejected) else None))
                assert isinstance(item, Encoded | Rejected)
                if isinstance(item, Rejected):
                    for text in (item.raw, item.reason, item.field or ""):
                        text.encode("utf-8")  # every dead letter encodes
                    assert len(item.raw) <= LIMITS.max_record_bytes
        outcome = dict(got)
        malformed_accepted += sum(code is not None and outcome.get(line, "") is None for line, code in expect)
        valid_refused += sum(code is None and outcome.get(line) is not None for line, code in expect)
        assert got == expect, path.name
        lines += len(expect)
        accepted += sum(code is None for _, code in got)
        rejected += sum(code is not None for _, code in got)
    assert accepted + rejected == lines and accepted > 200 and rejected > 100
    assert (malformed_accepted, valid_refused) == (0, 0)
    # Reaching this line means no exception escaped any file: tracebacks 0.
    print(f"\nchaos: fuzzed inputs (chunks of {size} bytes) {FILES} files, {lines} records -> tracebacks 0, "
          f"malformed accepted {malformed_accepted}, valid refused {valid_refused} "
          f"({accepted} accepted, {rejected} rejected)")
