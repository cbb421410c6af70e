"""Each station_turnout file's national figures (``summary.part_figures``), kept in a local folder under the
file's sha256, so that an election-night publish sums the few files its scope changed and reads none of the
others: at a million stations, reading and summing every file took 0.7 s of each publish's fold.

A kept entry is named with the figures' version (their code's, and the fingerprints' values on probe strings)
and ends with the sha256 of its bytes: one of another version, or a damaged one, is computed again. Entries are
written whole or not at all (another publish may read one meanwhile), and the publish prunes the folder as it
prunes the table files it keeps (``release.reuse.prune``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.fold.summary import SUMMARY_TURNOUT_COLUMNS, PartFigures, part_figures
from pipelines.gate.keyprints import VERSION as PRINTS_VERSION
from pipelines.release.parquet import FileWriter, StagedFile

# Raised when what part_figures computes, or how it is kept, changes.
FORMAT = 1
VERSION = hashlib.sha256(f"{FORMAT} {PRINTS_VERSION} {SUMMARY_TURNOUT_COLUMNS}".encode()).hexdigest()[:16]
SUFFIX = ".figures"
_LENGTH = 8  # bytes of the header's length, before it


def encode(figures: PartFigures | None) -> bytes:
    """The kept form: the header's length, a JSON header, the fingerprints, and the sha256 of all that."""
    header = {"summable": False} if figures is None else {
        "summable": True, "election": figures.election, "totals": figures.totals,
        "municipalities": list(figures.municipalities)}
    head = json.dumps(header, sort_keys=True).encode()
    prints = b"" if figures is None else figures.prints.astype("<u8").tobytes()
    body = len(head).to_bytes(_LENGTH, "little") + head + prints
    return body + hashlib.sha256(body).digest()


class Damaged(ValueError):
    """A kept entry whose bytes are not one ``encode`` wrote."""


def decode(data: bytes) -> PartFigures | None:
    """What ``encode`` kept.

    Raises:
        Damaged: the bytes are cut short, altered, or not of this form.
    """
    body, digest = data[:-32], data[-32:]
    if len(data) < _LENGTH + 32 or hashlib.sha256(body).digest() != digest:
        raise Damaged("checksum")
    size = int.from_bytes(body[:_LENGTH], "little")
    prints = body[_LENGTH + size:]
    try:
        header = json.loads(body[_LENGTH:_LENGTH + size])
        if not header["summable"]:
            return None
        if len(prints) % 8:
            raise Damaged("fingerprints")
        return PartFigures(header["election"], dict(header["totals"]), tuple(header["municipalities"]),
                           np.frombuffer(prints, "<u8").astype(np.uint64))
    except (ValueError, KeyError, TypeError) as exc:
        raise Damaged(str(exc)) from exc


class FiguresCache:
    """The station_turnout files' ``part_figures``, by sha256, kept in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def of(self, sha256: str, read: Callable[[], pa.Table]) -> PartFigures | None:
        """The figures of the file ``sha256``: kept, or from ``read()`` (its ``SUMMARY_TURNOUT_COLUMNS``) and
        kept."""
        path = self.folder / f"{sha256}.{VERSION}{SUFFIX}"
        try:
            return decode(path.read_bytes())
        except (OSError, Damaged):
            pass
        figures = part_figures(read())
        partial = self.folder / f".{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(encode(figures))
            partial.replace(path)
        except OSError:
            partial.unlink(missing_ok=True)  # not kept: computed again next time
        return figures


def keeping_figures(write: FileWriter, cache: FiguresCache) -> FileWriter:
    """``write``, and each written station_turnout file's figures kept (``part_figures``) from the rows it was
    written from: national_summary then reads none of the files a splice wrote (at a million stations, reading
    them back took most of a second of the fold, waiting on the splice), and the first election-night publish
    after a full rebuild none of the files the rebuild wrote (reading and summing all of them: 0.7 s)."""
    def written(name: str, table: pa.Table, path: Path) -> StagedFile:
        staged = write(name, table, path)
        cache.of(staged.sha256, lambda: table.select(list(SUMMARY_TURNOUT_COLUMNS)))
        return staged

    return written
