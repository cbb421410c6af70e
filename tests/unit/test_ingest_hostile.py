"""Hostile input never crashes a read: every bad byte sequence, record or file is one rejection with its line,
reason code and field, and the valid records around it still parse (parse level, no Kafka)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.contract import reasons
from pipelines.ingest.chunks import chunks
from pipelines.ingest.readers import Parsed, Rejected, loads, read_path
from pipelines.ingest.records import Limits
from pipelines.ingest.tally_csv import TALLY_COLUMNS
from pipelines.ingest.work import process_chunk
from tests.support.inputs import SRC, T, csv_rows, summary_with, tally

GOOD = json.dumps(tally()).encode()


def read(tmp_path: Path, data: bytes, suffix: str = ".jsonl", **kw: object) -> list[tuple[str, int, str, str | None]]:
    path = tmp_path / f"in{suffix}"
    path.write_bytes(data)
    return [("ok", r.line, "", None) if isinstance(r, Parsed) else ("rejected", r.line, r.reason_code, r.field)
            for r in read_path(path, **kw)]  # type: ignore[arg-type]



def test_summary_fixture_is_valid(tmp_path: Path) -> None:
    assert read(tmp_path, summary_with("0.5")) == [("ok", 1, "", None)]


def test_invalid_utf8_rejects_its_line_only_and_names_the_byte(tmp_path: Path) -> None:
    data = GOOD + b'\n{"type": "\xff"}\n' + GOOD + b"\n" + GOOD[:20] + b"\xc3\n" + GOOD
    assert read(tmp_path, data) == [("ok", 1, "", None), ("rejected", 2, "invalid_encoding", None),
                                    ("ok", 3, "", None), ("rejected", 4, "invalid_encoding", None),
                                    ("ok", 5, "", None)]
    (path,) = [tmp_path / "in.jsonl"]
    bad = [r for r in read_path(path) if isinstance(r, Rejected)]
    assert "byte offset 10 of line 2" in bad[0].reason and "ff" in bad[0].reason and bad[0].raw.isascii()


def test_deep_nesting_is_rejected_not_a_recursion_error(tmp_path: Path) -> None:
    data = b"[" * 10_000 + b"]" * 10_000 + b"\n" + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"\n" + GOOD
    assert read(tmp_path, data) == [("rejected", 1, "too_deeply_nested", None),
                                    ("rejected", 2, "too_deeply_nested", None), ("ok", 3, "", None)]
    assert loads('["' + "[" * 42 + '"]') == ["[" * 42]  # brackets in strings do not nest


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_rejected_naming_the_field(tmp_path: Path, value: str) -> None:
    assert read(tmp_path, summary_with(value)) == [("rejected", 1, "wrong_type", "figures[0].value")]
    assert read(tmp_path, GOOD.replace(b'"ballots_cast": 40', f'"ballots_cast": {value}'.encode())) == [
        ("rejected", 1, "wrong_type", "ballots_cast")]


def test_huge_integers_are_rejected(tmp_path: Path) -> None:
    assert read(tmp_path, summary_with("1" * 400)) == [("rejected", 1, "wrong_type", "figures[0].value")]
    assert read(tmp_path, summary_with("1" * 5000)) == [("rejected", 1, "malformed_json", None)]


def test_duplicate_keys_are_rejected_with_their_path(tmp_path: Path) -> None:
    top = GOOD[:-1] + b', "status": "FINAL"}'
    nested = GOOD.replace(b'"votes": 9}', b'"votes": 9, "votes": 10}', 1)
    assert read(tmp_path, top + b"\n" + nested + b"\n" + GOOD) == [
        ("rejected", 1, "duplicate_key", "status"), ("rejected", 2, "duplicate_key", "votes[0].votes"),
        ("ok", 3, "", None)]


def test_control_characters_in_timestamps_ids_and_keys_are_rejected(tmp_path: Path) -> None:
    lines = [tally(occurred_at=T + "\x00"), tally(station_id=tally()["station_id"] + "\x00"),
             tally(votes=[{"candidate_id": "candidate:c0\x01", "votes": 9}]),
             {"type": "Retraction", "occurred_at": T, "source": SRC, "target_event_id": "0" * 8 + "-0000-0000-0000-"
              + "0" * 12, "target_key": "incident:x\x00", "reason": "withdrawn"},
             tally(source={**SRC, "organisation": "CEC\x00"}), tally(source={**SRC, "organisation": "CEC\nBaku"})]
    data = b"\n".join(json.dumps(x).encode() for x in lines)
    assert read(tmp_path, data) == [
        ("rejected", 1, "control_character", "occurred_at"), ("rejected", 2, "invalid_id", "station_id"),
        ("rejected", 3, "invalid_id", "votes[0].candidate_id"), ("rejected", 4, "control_character", "target_key"),
        ("rejected", 5, "control_character", "source.organisation"), ("ok", 6, "", None)]


def test_lone_surrogates_are_rejected_and_their_dead_letter_encodes(tmp_path: Path) -> None:
    data = GOOD.replace(b'"CEC"', b'"\\ud800"') + b'\n{"type": "StationTally", "\\udfff": 1}'
    got = list(read_path(_write(tmp_path, data)))
    assert [(r.reason_code, r.field) for r in got] == [  # type: ignore[union-attr]
        ("invalid_encoding", "source.organisation"), ("missing_field", "occurred_at")]
    for r in got:
        assert isinstance(r, Rejected)
        for text in (r.raw, r.reason, r.field or ""):
            text.encode("utf-8")


def _write(tmp_path: Path, data: bytes, name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_records_over_the_size_limit_are_rejected_with_bounded_memory(tmp_path: Path) -> None:
    data = GOOD + b"\n" + b"x" * 3_000_000 + b"\n" + GOOD + b"\r" + b"y" * 2_500_000 + b"\r\n" + GOOD + b"\n" + (
        json.dumps(tally(source={**SRC, "organisation": "z" * 999_000})).encode())
    assert read(tmp_path, data) == [("ok", 1, "", None), ("rejected", 2, "record_too_large", None),
                                    ("ok", 3, "", None), ("rejected", 4, "record_too_large", None),
                                    ("ok", 5, "", None), ("ok", 6, "", None)]
    chunked = list(chunks(tmp_path / "in.jsonl", False, None, 64 * 1024, Limits(20_000, 32)))
    assert max(len(c.data) for c in chunked) < 64 * 1024 + 2 * 20_000  # type: ignore[union-attr]
    items = [i for c in chunked for i in process_chunk(c, None).items]  # type: ignore[arg-type]
    assert [i.reason_code for i in items if isinstance(i, Rejected)] == ["record_too_large"] * 3
    (big,) = [i for i in items if isinstance(i, Rejected) and i.line == 2]
    assert len(big.raw) < 5000


def test_bom_is_skipped_in_jsonl_and_csv(tmp_path: Path) -> None:
    assert read(tmp_path, b"\xef\xbb\xbf" + GOOD + b"\n" + GOOD) == [("ok", 1, "", None), ("ok", 2, "", None)]
    csv = "\ufeff" + ",".join(TALLY_COLUMNS) + "\n" + "\n".join(csv_rows(["9", "9"])) + "\n"
    assert read(tmp_path, csv.encode(), ".csv") == [("ok", 2, "", None)]


def test_csv_quoted_newlines_follow_rfc_4180_and_lines_are_the_rows_first(tmp_path: Path) -> None:
    rows = csv_rows(["9", "9", "9"])
    rows[1] = rows[1].replace(",CEC,", ',"CEC,\nBaku ""office""",')
    other = [r.replace("polling_station:32", "polling_station:33") for r in csv_rows(["1", "2"])]
    data = (",".join(TALLY_COLUMNS) + "\r\n" + "\r\n".join(rows + other) + "\r\n").encode()
    assert read(tmp_path, data, ".csv") == [("rejected", 3, "malformed_csv", "source_organisation"),
                                            ("ok", 6, "", None)]
    same = [r.replace(",CEC,", ',"CEC,\nBaku ""office""",') for r in rows[:1] + rows[2:]]
    data = (",".join(TALLY_COLUMNS) + "\n" + "\n".join(same + other) + "\n").encode()
    path = _write(tmp_path, data, "q.csv")
    got = list(read_path(path))
    assert [(type(r).__name__, r.line) for r in got] == [("Parsed", 2), ("Parsed", 6)]
    assert got[0].value["source"]["organisation"] == 'CEC,\nBaku "office"'  # type: ignore[union-attr]


def test_csv_bad_bytes_quotes_and_sizes_reject_the_whole_station(tmp_path: Path) -> None:
    header = ",".join(TALLY_COLUMNS).encode() + b"\n"

    def station(n: int, bad: bytes | None = None, at: int = 1) -> list[bytes]:
        rows = [r.replace("polling_station:32", f"polling_station:{n}").encode() for r in csv_rows(["9", "9", "9"])]
        if bad is not None:
            rows[at] = rows[at].replace(b",CEC,", b"," + bad + b",")
        return rows

    rows = (station(1) + station(2, b"C\xffEC") + station(3, b'"CEC', 2) + station(4, b'"CEC"x') + station(5)
            + station(6, b"C" * 30_000) + station(7))
    data = header + b"\n".join(rows) + b"\n"
    want = [("ok", 2, "", None), ("rejected", 6, "invalid_encoding", None), ("rejected", 10, "malformed_csv", None),
            ("rejected", 12, "malformed_csv", None), ("ok", 14, "", None),
            ("rejected", 18, "record_too_large", None), ("ok", 20, "", None)]
    assert read(tmp_path, data, ".csv", limits=Limits(20_000, 32)) == want


def test_invalid_utf8_in_a_csv_header_rejects_the_file_without_a_traceback(tmp_path: Path) -> None:
    assert read(tmp_path, b"election_id\xff\n1,2\n", ".csv") == [("rejected", 1, "invalid_encoding", None)]


def test_a_file_that_cannot_be_read_is_one_rejection(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    (r,) = list(read_path(tmp_path / "dir.jsonl"))
    assert isinstance(r, Rejected) and (r.reason_code, r.line) == (reasons.UNREADABLE_FILE, 0)
