"""The document around its Contest array: the head (up to ``"Contest":[``: the ``Candidate`` array) and the body
after the election (``GpUnit`` to ``Person``), each a gzip member, kept in the block cache (``cdf_blocks``) under
what they are built from.

They are the document's largest parts but its contests: at a million stations 130,000 candidates and persons and
40,000 units, 80 MB of JSON, 0.8 s and, built, the documents' peak memory (0.2 GB more than the rest of the build).
What they are built from changes seldom on election night: the election, its candidates, parties, divisions and
contests (the staged tables' sha256), station turnout where the document holds it, and what the blocks' contests
name (``cdf_blocks.findings``: units, parties, ballot labels, offices, notes). New tallies change none of these, so a
publish of tallies finds them in the cache, and the tables they need are not even read (``Report``'s lazy
columns). The release's time and status are in small members of their own, built every time (``cdf``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.release import cdf_blocks, cdf_people, cdf_units
from pipelines.release import cdf_report as rp

ISSUER = "Ballotstream"
SUFFIX = ".frame"


@dataclass(frozen=True)
class Frame:
    head: bytes  # gzip member: the report up to its Contest array (or up to the election's other members)
    body: bytes  # gzip member: GpUnit, Issuer, Notes, Office, Party and Person


def _array(key: str, items: cdf_blocks.Piece) -> list[cdf_blocks.Piece]:
    return [f'"{key}":['.encode(), items, b"],"] if len(items) else []


def build(report: rp.Report, contests: bool) -> Frame:
    """The frame of ``report`` once its blocks are gathered (``cdf_blocks.gather``); ``contests``: whether a
    Contest array follows the head."""
    candidates, persons = cdf_people.people(report)
    parties = cdf_people.parties(report)
    units = cdf_units.gp_units(report)
    head = [b'{"@type":"ElectionResults.ElectionReport","Election":[{"@type":"ElectionResults.Election",',
            *_array("Candidate", candidates), b'"Contest":[' if contests else b""]
    body = [*_array("GpUnit", units),
            f'"Issuer":{rp.dumps(ISSUER)},"IssuerAbbreviation":{rp.dumps(ISSUER)},'.encode(),
            f'"Notes":{rp.dumps(" ".join(report.notes))},'.encode() if report.notes else b"",
            *_array("Office", ",".join(item for _, item in sorted(report.offices)).encode()),
            *_array("Party", ",".join(parties).encode()), *_array("Person", persons)]
    return Frame(cdf_blocks.member(head), cdf_blocks.member(body))


def key(cache: cdf_blocks.Cache, tables: str, blocks: list[cdf_blocks.Block]) -> str:
    """The digest of everything a frame is built from: ``tables`` names the staged tables it reads (their
    sha256), the blocks say what their contests name."""
    parts = [cache.base, "frame", bool(blocks), tables, [cdf_blocks.findings(b) for b in blocks]]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _load(folder: Path, name: str) -> Frame | None:
    data = cdf_blocks.read_kept(folder / f"{name}{SUFFIX}")
    if data is None:
        return None
    try:
        start = 8 + int.from_bytes(data[:8], "big")
        h = json.loads(data[8:start])
        head, body = data[start:start + h["head"]], data[start + h["head"]:]
        if hashlib.sha256(head + body).hexdigest() != h["sha256"]:
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return Frame(head, body)


def _save(folder: Path, name: str, frame: Frame) -> None:
    header = json.dumps({"head": len(frame.head),
                         "sha256": hashlib.sha256(frame.head + frame.body).hexdigest()}).encode()
    cdf_blocks.keep(folder / f"{name}{SUFFIX}", len(header).to_bytes(8, "big") + header + frame.head + frame.body)


def frame(report: rp.Report, blocks: list[cdf_blocks.Block], cache: cdf_blocks.Cache | None = None) -> Frame:
    """The frame of ``report``: from ``cache`` when it holds one built from the same inputs (``Cache.tables``:
    the staged tables it reads), else built (and kept there)."""
    if cache is None or cache.tables is None:
        return _gathered(report, blocks)
    name = key(cache, cache.tables, blocks)
    found = _load(cache.folder, name)
    if found is None:
        found = _gathered(report, blocks)
        _save(cache.folder, name, found)
    return found


def _gathered(report: rp.Report, blocks: list[cdf_blocks.Block]) -> Frame:
    """The frame built once ``report`` has what the blocks' contests found (only then: a frame from the cache
    needs none of it)."""
    cdf_blocks.gather(report, blocks)
    return build(report, bool(blocks))
