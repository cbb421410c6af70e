"""Cut an input file into byte chunks that worker processes can read independently, in file order.

A chunk ends at a line end; a CSV chunk also ends between two stations, so a station's rows (which make one
event) never straddle two chunks. Line numbers are counted the way Python's text files count them (universal
newlines: ``\\n``, ``\\r\\n`` and a lone ``\\r`` each end a line), so every result keeps its exact file line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from pipelines.contract import reasons
from pipelines.ingest.lines import BOM, encoding_error
from pipelines.ingest.records import DEFAULT_LIMITS, Limits, Rejected
from pipelines.ingest.tally_csv import TALLY_COLUMNS, check_header, header_columns, split_row

CHUNK_BYTES = 1 << 20  # ~2,000 JSON lines or ~300 stations: big enough to amortise the hand-off to a worker


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole lines of one file: ``data`` starts at line ``start`` (1-based), to be read within ``limits``; a CSV
    chunk's rows have the ``columns`` its file's header declares."""

    file: str
    csv: bool
    start: int
    data: bytes
    limits: Limits = DEFAULT_LIMITS
    columns: tuple[str, ...] = TALLY_COLUMNS


def count_lines(data: bytes) -> int:
    """Lines a text-mode reader sees in ``data`` (which ends at a line end)."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _whole_rest(data: bytes) -> bool:
    """Whether the station cut below cannot be trusted in ``data``: a lone CR ends a row for the reader but not
    for the cut, and a quote may open a field that holds line ends (RFC 4180)."""
    return b'"' in data or data.count(b"\r") != data.count(b"\r\n")


def _station_cut(data: bytes) -> int:
    """Where the last station's rows start in ``data`` (whole lines), or 0 if it holds one station only.

    Rows that cannot be grouped (blank, fewer than two columns) do not end a station, as in the reader, so
    the cut is placed right before the last station's first real row. Rows are grouped by election and station
    only: the reader's groups (which also split by contest) never straddle such a cut.
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


def _line_end(block: bytes) -> int:
    """Where the text after the last line end in ``block`` starts (0: none). A CR as the very last byte does
    not count: the next read may hold its LF."""
    return max(block.rfind(b"\n"), block.rfind(b"\r", 0, len(block) - 1)) + 1


def _rest_of_line(handle: BinaryIO, size: int) -> bytes:
    """Skip the rest of an overlong line: what follows its end (the end included), or b"" at the end of file."""
    while True:
        block = handle.read(size)
        if not block:
            return b""
        ends = [i for i in (block.find(b"\n"), block.find(b"\r")) if i >= 0]
        if ends:
            end = min(ends)
            if block[end:] == b"\r":
                block += handle.read(1)
            return block[end:]


def _blocks(handle: BinaryIO, size: int, longest: int) -> Iterator[bytes]:
    """Reads of about ``size`` bytes that end at a line end (the last may not).

    A line longer than ``longest`` bytes is cut to ``longest + 1`` bytes (the readers reject it as too large),
    so memory stays bounded whatever the input; its line end is kept, so line numbers stay exact.
    """
    tail = b""
    while True:
        block = handle.read(size)
        if not block:
            if tail:
                yield tail
            return
        block = tail + block
        end = _line_end(block)
        if end == 0:
            tail = block if len(block) <= longest else block[: longest + 1] + _rest_of_line(handle, size)
            continue
        if len(block) - end > longest:  # the unfinished last line is too long already
            yield block[:end]
            tail = block[end : end + longest + 1] + _rest_of_line(handle, size)
            continue
        tail = block[end:]
        yield block[:end]


def chunks(path: Path, csv: bool, kind: str | None, size: int = CHUNK_BYTES,
           limits: Limits = DEFAULT_LIMITS) -> Iterator[Chunk | Rejected]:
    """The chunks of one file, in order; a file that cannot be read, or a CSV with a bad header, gives its one
    :class:`Rejected` instead (a file that cannot be opened has line 0).

    Args:
        path: a JSON Lines or CSV file (a UTF-8 byte order mark at its start is skipped).
        csv: whether it is a tally CSV (header checked here, chunks cut between stations).
        kind: the input kind, copied to a header rejection.
        size: about how many bytes per chunk.
        limits: copied to each chunk for its reader; lines are cut just past ``limits.max_record_bytes``.
    """
    # Long: one pass over a file's bytes that must keep line numbers, BOM, header and limits together.
    file = str(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        yield Rejected(file, 0, "", reasons.UNREADABLE_FILE, f"cannot read {file}: {exc.strerror or exc}",
                       None, kind)
        return
    with handle:
        line = 1
        # Skipped before the blocks are cut, not after: an overlong first line is cut to max_record_bytes + 1
        # bytes, and the BOM must not count among them (without it the cut line would look small enough).
        if handle.read(len(BOM)) != BOM:
            handle.seek(0)
        blocks = _blocks(handle, size, limits.max_record_bytes)
        first = next(blocks, b"")
        carry = first
        if csv:
            # The header is the first line in universal-newline terms, like the reader's.
            end = min((i for i in (first.find(b"\n"), first.find(b"\r")) if i >= 0), default=len(first))
            end += 2 if first[end : end + 2] == b"\r\n" else 1
            try:
                header = first[:end].decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield encoding_error(file, 1, first[:end].rstrip(b"\r\n"), exc, kind)
                return
            if not header:
                return
            bad = check_header(file, header, kind)
            if bad is not None:
                yield bad
                return
            columns = header_columns(header) or TALLY_COLUMNS
            line, carry = 2, first[end:]
        else:
            columns = TALLY_COLUMNS
        rest = blocks if csv else chain([carry], blocks)
        if not csv:
            carry = b""
        for block in rest:
            data = carry + block
            if csv and _whole_rest(data):
                # Hand the rest over whole: rows there may span lines, which only the reader can tell.
                data += b"".join(blocks)
                cut = len(data)
            else:
                cut = _station_cut(data) if csv else len(data)
            if cut == 0:
                carry = data  # one station so far: read on
                continue
            yield Chunk(file, csv, line, data[:cut], limits, columns)
            line += count_lines(data[:cut])
            carry = data[cut:]
        if carry:
            yield Chunk(file, csv, line, carry, limits, columns)
