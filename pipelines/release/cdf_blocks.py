"""The document's ``Contest`` array in blocks of contests, each block's JSON a gzip member of its own, kept in a
local cache under what it is built from, so that a document whose few contests changed rebuilds only theirs.

A gzip file may be several members one after another (RFC 1952, 2.2); readers (Python's ``gzip``, ``zcat``,
DuckDB) read them as one stream. The published document is: a member up to ``"Contest":[``, one member per
block, and a member for the rest. Blocks are cut by a content-defined rule (``block_starts``: a contest whose id
hashes to a multiple of ``BLOCK_CONTESTS`` starts one), so the members, hence the bytes, follow from the tables
alone: a document built from the cache is byte for byte one built afresh (``tests/unit/test_cdf_blocks.py``).

A block's contests are built as a report of their own (``Report.block``); what they find for the document's
other parts (the units and parties they name, ballot labels, offices, notes) is kept with the block's bytes and
given back to the document's report (``gather``): the label ranks of a later block follow the selections of the
blocks before it. A block's cache key is the digest of everything its bytes are built from: the export's code and
settings, the document's format, whether it is the first block, its contests', summaries' and selections' rows,
the districts, and the sha256 of every contest_results file whose contest ids (Parquet statistics) overlap the
block's (``Staged``): those rows are not read for a block found in the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.release import cdf_contests
from pipelines.release import cdf_json as js
from pipelines.release import cdf_report as rp
from pipelines.release.parquet import StagedFile

# gzip level 1: a million-station document (200 MB of JSON) compresses to 9 MB in 0.4 s; level 6 saves another
# 1.5 MB for 0.5 s more.
GZIP_LEVEL = 1
# About this many contests a block: at a million stations (10,000 contests) about 80 blocks of ~15,000
# contest_results rows each. A block costs ~10 ms of set-up however small.
BLOCK_CONTESTS = 128
# Blocks not used by a build for this long are removed (another publish may be building from them).
UNUSED_S = 3600.0
SUFFIX = ".block"

Piece = bytes | pa.Buffer


def member(pieces: Iterable[Piece]) -> bytes:
    """One gzip member of the pieces one after another, without a file name or time: the same text always gives
    the same bytes (``gzip.compress(text, GZIP_LEVEL, mtime=0)``'s)."""
    gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join([*(gz.compress(p) for p in pieces), gz.flush()])


def block_starts(contest_ids: list[str]) -> list[int]:
    """Where each block begins in the sorted contests: at the first, and at each whose id hashes to a multiple of
    ``BLOCK_CONTESTS``; a contest added or removed changes the block it falls in, no other."""
    out = [0] if contest_ids else []
    for i in range(1, len(contest_ids)):
        digest = hashlib.sha256(contest_ids[i].encode()).digest()
        if int.from_bytes(digest[:8], "big") % BLOCK_CONTESTS == 0:
            out.append(i)
    return out


class ByContest:
    """A table's rows by ``contest_id``: those of a range of ids, each contest's in the table's order (the order
    the document's parts break ties by)."""

    def __init__(self, table: pa.Table | None) -> None:
        self.table = table
        if table is None or "contest_id" not in table.column_names:
            self.table, self.values, self.starts = None, [], np.zeros(1, np.int64)
            return
        codes, values = js.ranked(table["contest_id"])
        order = np.argsort(codes, kind="stable")
        if np.any(order[1:] < order[:-1]):
            # Put in contest order once: a take from a table of dictionary columns costs as much for a few rows as
            # for all of them (0.2 s at a million stations), a slice nothing.
            self.table = table.take(pa.array(order, pa.int64()))
        self.values = values.to_pylist()
        self.starts = np.searchsorted(codes[order], np.arange(len(self.values) + 1))

    def rows(self, first: str, last: str) -> pa.Table | None:
        if self.table is None:
            return None
        lo, hi = bisect_left(self.values, first), bisect_right(self.values, last)
        return self.table.slice(int(self.starts[lo]), int(self.starts[hi] - self.starts[lo]))


@dataclass(frozen=True)
class Found:
    """What a block's contests found for the document's other parts (``gather``)."""

    selections: int
    stations_named: pa.Array
    units_named: pa.Array
    party_refs: pa.Array
    labels: pa.Table  # person, label, rank: ranks among the block's own selections
    offices: list[tuple[str, str]]
    notes: list[str]

    def text(self) -> bytes:
        """As JSON (keys sorted): its sha256 is the block's ``findings``."""
        return json.dumps({"selections": self.selections, "stations_named": self.stations_named.to_pylist(),
                           "units_named": self.units_named.to_pylist(), "party_refs": self.party_refs.to_pylist(),
                           "labels": [self.labels[c].to_pylist() for c in ("person", "label", "rank")],
                           "offices": self.offices, "notes": self.notes}, sort_keys=True).encode()

    @staticmethod
    def parse(text: bytes) -> Found:
        h = json.loads(text)
        person, label, rank = h["labels"]
        return Found(int(h["selections"]), pa.array(h["stations_named"], js.TEXT), pa.array(h["units_named"], js.TEXT),
                     pa.array(h["party_refs"], js.TEXT),
                     pa.table({"person": pa.array(person, js.TEXT), "label": pa.array(label, js.TEXT),
                               "rank": pa.array(rank, pa.int64())}),
                     [(str(i), str(j)) for i, j in h["offices"]], [str(n) for n in h["notes"]])


class Block:
    """A block's JSON as a gzip member, and what its contests found. A block from the cache parses what they found
    only when asked: a publish whose document frame is cached too never asks (74 blocks' findings took 0.15 s to
    parse at a million stations)."""

    def __init__(self, member: bytes, found: Found | None = None, text: bytes = b"") -> None:
        self.member, self._found, self._text = member, found, text

    @property
    def found(self) -> Found:
        if self._found is None:
            self._found = Found.parse(self._text)
        return self._found

    @property
    def text(self) -> bytes:
        """What the contests found, as JSON (``Found.text``)."""
        if not self._text:
            self._text = self.found.text()
        return self._text

    def dump(self) -> bytes:
        """The block as a cache file: a length-prefixed JSON header (the sha256 of the member and of the findings,
        the findings' length), the findings' JSON, then the member."""
        header = json.dumps({"sha256": hashlib.sha256(self.member).hexdigest(), "findings": findings(self),
                             "found": len(self.text)}).encode()
        return len(header).to_bytes(8, "big") + header + self.text + self.member

    @staticmethod
    def load(data: bytes) -> Block | None:
        """The block a cache file holds, or None when it is not one whole."""
        try:
            size = int.from_bytes(data[:8], "big")
            h = json.loads(data[8:8 + size])
            text = data[8 + size:8 + size + int(h["found"])]
            body = data[8 + size + int(h["found"]):]
            if hashlib.sha256(body).hexdigest() != h["sha256"] or hashlib.sha256(text).hexdigest() != h["findings"]:
                return None
        except (ValueError, KeyError, TypeError):
            return None
        return Block(body, None, text)


def findings(block: Block) -> str:
    """The sha256 of what ``block``'s contests found (``Found.text``): the document's frame is built from it
    (``cdf_frame``), whatever their counts."""
    return hashlib.sha256(block.text).hexdigest()


def _concat(arrays: list[pa.Array]) -> pa.Array:
    return pa.concat_arrays([a.cast(js.TEXT) for a in arrays]) if arrays else pa.array([], js.TEXT)


def build(report: rp.Report, first: int, stop: int, results: pa.Table | None, declared: pa.Table | None,
          turnout: pa.Table | None) -> Block:
    """Block ``first``..``stop - 1`` of ``report``'s contests, from their rows of the tables."""
    sub = report.block(first, stop, results, declared, turnout)
    text, selections = cdf_contests.contest_section(sub)
    labels = pa.concat_tables(sub.labels) if sub.labels else pa.table(
        {"person": pa.array([], js.TEXT), "label": pa.array([], js.TEXT), "rank": pa.array([], pa.int64())})
    labels = pa.table({n: labels[n].combine_chunks().cast(pa.int64() if n == "rank" else js.TEXT)
                       for n in ("person", "label", "rank")})
    return Block(member([b"," if first else b"", text]),
                 Found(selections, _concat(sub.stations_named), _concat(sub.units_named), _concat(sub.party_refs),
                       labels, sub.offices, sub.notes))


def gather(report: rp.Report, blocks: list[Block]) -> None:
    """Give ``report`` what the blocks' contests found, as one report of every contest would have."""
    offset = 0
    for found in (b.found for b in blocks):
        report.stations_named.append(found.stations_named)
        report.units_named.append(found.units_named)
        report.party_refs.append(found.party_refs)
        report.labels.append(found.labels.set_column(2, "rank", pc.add(found.labels["rank"], offset << 20)))
        report.offices += found.offices
        report.notes += found.notes
        offset += found.selections


class Staged:
    """Which contest_results files hold a block's rows (by their ``contest_id`` statistics), and those rows of the
    blocks not in the cache, read from those files alone."""

    def __init__(self, results: StagedFile, columns: list[str], condition: pc.Expression | None) -> None:
        self.parts = list(results.parts or (results,))
        self.columns, self.condition = columns, condition
        self.ranges = [_contest_range(p.path) for p in self.parts]

    def files(self, first: str, last: str) -> list[int]:
        return [i for i, r in enumerate(self.ranges) if r is None or (r[0] <= last and r[1] >= first)]

    def read(self, ids: list[str], files: set[int]) -> pa.Table | None:
        if not ids or not files:
            return None
        condition = pc.field("contest_id").isin(ids)
        condition = condition if self.condition is None else condition & self.condition
        # A file at a time (``parquet.read_staged``): a scan of them all held many files' decoded rows before it
        # filtered them, the documents' build's peak when a publish's tallies touched most blocks (0.55 GB at a
        # million stations, 100,000 tallies).
        return pa.concat_tables([pq.read_table(self.parts[i].path, columns=self.columns, filters=condition)
                                 for i in sorted(files)])


def _contest_range(path: Path) -> tuple[str, str] | None:
    """The least and greatest contest_id of a Parquet file, from its statistics (None: it does not say)."""
    meta = pq.read_metadata(path)
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if "contest_id" not in names:
        return None
    at, low, high = names.index("contest_id"), None, None
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(at).statistics
        if meta.row_group(g).num_rows == 0:
            continue
        if stats is None or not stats.has_min_max or stats.null_count:
            return None
        low = stats.min if low is None else min(low, stats.min)
        high = stats.max if high is None else max(high, stats.max)
    return None if low is None else (str(low), str(high))


def _key(base: str, report: rp.Report, first: int, stop: int, rows: list[pa.Table | None], files: list[str]) -> str:
    """The digest of everything block ``first``..``stop - 1``'s bytes and findings are built from: ``rows`` are
    its contest_selections and station_turnout rows, ``files`` the sha256 of the files holding its
    contest_results rows."""
    contests = report.contests[first:stop]
    parts = [base, first == 0, contests, [report.summary.get(c["contest_id"]) for c in contests],
             report.districts.slice(first, stop - first).to_pylist(), [_digest(r) for r in rows], files]
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def _digest(rows: pa.Table | None) -> str | None:
    """The sha256 of ``rows`` as Arrow IPC, dictionaries decoded and in one chunk: the same values give the same
    bytes, other values other bytes (rows as Python objects cost ten times more at a million stations)."""
    if rows is None:
        return None
    schema = pa.schema([pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
                        for f in rows.schema])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(rows.cast(schema).combine_chunks())
    return hashlib.sha256(sink.getvalue()).hexdigest()


def read_kept(path: Path) -> bytes | None:
    """A cache file's bytes, marked in use (not pruned as unused); None when there is none."""
    try:
        data = path.read_bytes()
        os.utime(path)
    except OSError:
        return None
    return data


def keep(path: Path, data: bytes) -> None:
    """Write a cache file whole or not at all (under another name, renamed); a failure only costs the work it
    would have saved."""
    partial = path.with_name(f".{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        partial.replace(path)
    except OSError:
        partial.unlink(missing_ok=True)


def _load(folder: Path, key: str) -> Block | None:
    data = read_kept(folder / f"{key}{SUFFIX}")
    return None if data is None else Block.load(data)


def prune(folder: Path, min_age_s: float = UNUSED_S) -> int:
    """Remove blocks, frames (``cdf_frame``) and partial files unused for ``min_age_s``; returns how many went."""
    removed = 0
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        try:
            if time.time() - path.stat().st_mtime > min_age_s:
                path.unlink()
                removed += 1
        except OSError:
            pass  # removed by another build meanwhile
    return removed


@dataclass(frozen=True)
class Cache:
    """The local folder of blocks, the digest of what every block of one document depends on alike (the export's
    code and settings, the format, the election) and the contest_results files' whereabouts; ``tables``: the
    digest of the staged tables the document's frame reads (``cdf_frame``), if it may be kept too."""

    folder: Path
    base: str
    staged: Staged
    tables: str | None = None


def contest_blocks(report: rp.Report, results: pa.Table | None, cache: Cache | None = None) -> list[Block]:
    """The blocks of ``report``'s Contest array: from ``cache`` where it holds them, else built from the rows of
    ``results`` (contest_results as the document reads it; with a cache, read from its staged files instead)."""
    ids = [c["contest_id"] for c in report.contests]
    starts = block_starts(ids)
    spans = list(zip(starts, [*starts[1:], len(ids)], strict=False))  # none without contests
    declared, turnout = ByContest(report.declared), ByContest(report.turnout)
    rows = [(declared.rows(ids[a], ids[b - 1]), turnout.rows(ids[a], ids[b - 1])) for a, b in spans]
    keys: list[str] = []
    blocks: list[Block | None] = [None] * len(spans)
    if cache is not None:
        files: set[int] = set()
        for i, (a, b) in enumerate(spans):
            overlapping = cache.staged.files(ids[a], ids[b - 1])
            keys.append(_key(cache.base, report, a, b, list(rows[i]),
                             [cache.staged.parts[f].sha256 for f in overlapping]))
            blocks[i] = _load(cache.folder, keys[i])
            if blocks[i] is None:
                files.update(overlapping)
        results = cache.staged.read([ids[c] for i, (a, b) in enumerate(spans) if blocks[i] is None
                                     for c in range(a, b)], files)
    by_contest = ByContest(results)
    for i, (a, b) in enumerate(spans):
        if blocks[i] is None:
            blocks[i] = build(report, a, b, by_contest.rows(ids[a], ids[b - 1]), *rows[i])
            if cache is not None:
                keep(cache.folder / f"{keys[i]}{SUFFIX}", blocks[i].dump())
    return [b for b in blocks if b is not None]
