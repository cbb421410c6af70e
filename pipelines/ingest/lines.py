"""Split input bytes into lines the way Python's universal newlines do (``\\n``, ``\\r\\n`` and a lone ``\\r`` each
end a line), without decoding them: each line is decoded on its own, so a byte that is not UTF-8 costs one
line, not the file."""

from __future__ import annotations

from pipelines.contract import reasons
from pipelines.ingest.records import Rejected, head

BOM = b"\xef\xbb\xbf"


def split_lines(data: bytes) -> list[bytes]:
    """The lines of ``data``, without their ends (a final line end does not start another line)."""
    return data.splitlines()  # bytes split on \n, \r\n and \r only (str.splitlines splits on more)


def split_lines_keepends(data: bytes) -> list[bytes]:
    """The lines of ``data``, each with its line end (the last may have none)."""
    return data.splitlines(keepends=True)


def encoding_error(file: str, line: int, data: bytes, exc: UnicodeDecodeError, kind: str | None) -> Rejected:
    """The rejection of a line that is not UTF-8 (``data`` is the line, ``exc`` from decoding it)."""
    bad = data[exc.start : exc.end].hex(" ")
    return Rejected(file, line, head(data.decode("utf-8", "backslashreplace")), reasons.INVALID_ENCODING,
                    f"not UTF-8 at byte offset {exc.start} of line {line} (bytes {bad}: {exc.reason})", None, kind)
