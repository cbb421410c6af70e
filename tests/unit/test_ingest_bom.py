"""A byte order mark does not count toward the record size limit's cut: an overlong first line after a BOM is
rejected as too large at any chunk size (found by `make chaos`'s larger fuzz corpus)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.ingest.chunks import chunks
from pipelines.ingest.records import Limits, Rejected
from pipelines.ingest.work import process_chunk


@pytest.mark.parametrize("size", [1024, 1 << 20])
def test_overlong_first_line_after_a_bom_is_too_large(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"type": "StationTally", "pad": "' + b"x" * 30_000 + b'"}\r{"type": 1}\n')
    items = [i for c in chunks(path, False, None, size, Limits(max_record_bytes=20_000, max_depth=16))
             for i in ([c] if isinstance(c, Rejected) else process_chunk(c, None).items)]
    assert [(i.line, i.reason_code) for i in items][0] == (1, "record_too_large")
    assert [i.line for i in items] == [1, 2]
