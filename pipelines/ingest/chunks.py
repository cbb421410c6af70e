"""Cut an input file into byte chunks that worker processes can read independently, in file order.

A chunk ends at a line end; a CSV chunk also ends between two stations, so a station's rows (which make one
event) never straddle two chunks. Line numbers are counted the way Python's text files count them (universal
newlines: ``\\n``, ``\\r\\n`` and a lone ``\\r`` each end a line), so every result keeps its exact file line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipelines.ingest.records import Rejected
from pipelines.ingest.tally_csv import check_header, split_row

CHUNK_BYTES = 1 << 20  # ~2,000 JSON lines or ~300 stations: big enough to amortise the hand-off to a worker


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole lines of one file: ``data`` starts at line ``start`` (1-based)."""

    file: str
    csv: bool
    start: int
    data: bytes


def count_lines(data: bytes) -> int:
    """Lines a text-mode reader sees in ``data`` (which ends at a line end)."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _lone_cr(data: bytes) -> bool:
    return data.count(b"\r") != data.count(b"\r\n")


def _station_cut(data: bytes) -> int:
    """Where the last station's rows start in ``data`` (whole lines), or 0 if it holds one station only.

    Rows that cannot be grouped (blank, fewer than two columns) do not end a station, as in the reader, so
    the cut is placed right before the last station's first real row.
    """
    pos, last, cut = len(data), None, 0
    while pos > 0:
        start = data.rfind(b"\n", 0, pos - 1) + 1
        row = split_row(data[start:pos].decode("utf-8", "replace").rstrip("\r\n"))
        if len(row) >= 2:
            key = (row[0], row[1])
            if last is None or key == last:
                last, cut = key, start
            else:
                return cut
        pos = start
    return 0


def _blocks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """Reads of about ``size`` bytes that end at a line end (the last may not)."""
    tail = b""
    while True:
        block = handle.read(size)
        if not block:
            if tail:
                yield tail
            return
        block = tail + block
        end = block.rfind(b"\n") + 1
        if end == 0:
            tail = block
            continue
        tail = block[end:]
        yield block[:end]


def chunks(path: Path, csv: bool, kind: str | None, size: int = CHUNK_BYTES) -> Iterator[Chunk | Rejected]:
    """The chunks of one file, in order; a CSV with a bad header gives its one :class:`Rejected` instead.

    Args:
        path: a JSON Lines or CSV file.
        csv: whether it is a tally CSV (header checked here, chunks cut between stations).
        kind: the input kind, copied to a header rejection.
        size: about how many bytes per chunk.
    """
    file = str(path)
    with path.open("rb") as handle:
        line = 1
        blocks = _blocks(handle, size)
        carry = b""
        if csv:
            first = next(blocks, b"")
            # The header is the first line in universal-newline terms, like the reader's readline().
            end = min((i for i in (first.find(b"\n"), first.find(b"\r")) if i >= 0), default=len(first))
            end += 2 if first[end : end + 2] == b"\r\n" else 1
            header = first[:end].decode("utf-8").rstrip("\r\n")
            if not header:
                return
            bad = check_header(file, header, kind)
            if bad is not None:
                yield bad
                return
            line, carry = 2, first[end:]
        for block in blocks:
            data = carry + block
            if csv and _lone_cr(data):
                # A lone CR ends a row for the reader but not for the station cut here: hand the rest over whole.
                data += b"".join(blocks)
                cut = len(data)
            else:
                cut = _station_cut(data) if csv else len(data)
            if cut == 0:
                carry = data  # one station so far: read on
                continue
            yield Chunk(file, csv, line, data[:cut])
            line += count_lines(data[:cut])
            carry = data[cut:]
        if carry:
            yield Chunk(file, csv, line, carry)
