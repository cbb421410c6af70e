"""The incremental gate: a table's checks run only on the files that changed since the last release, with the
same verdicts as the full gate (``run_gate``).

A release stores each large table as several content-addressed files. What a check finds in one file depends
only on that file's bytes and on the tables its checks read (``context_needs``). So each file's outcome (failing
rows and sample per check, rows checked) is kept in the release's private checkpoint, under the file's sha256
and a *context digest*: the gate's logic version, the checks' declarations, the tolerance and the sha256 of every
table the checks read. The next publish re-checks a file only when its sha256 or the digest differs, and adds
the kept outcomes of the others.

Two tables read each other tally by tally (``ALIGNED_CONTEXT``: station_results' votes against station_turnout's
valid ballots, and the other way round). What a file of one finds depends only on the other's rows of the tallies
in the file's key range, so instead of the other table's sha256 (which every new result changes, re-checking
every file of both, the two largest tables) a file's outcome is kept with the sha256s of the other table's files
whose key ranges overlap its own (``files_digest``). station_results reads station_turnout, a row per tally
against its dozen (``ROW_ALIGNED``): a results file's outcome is also kept with a digest of the turnout rows in its
own key range (``aligned_digest``), so new tallies re-check the results files holding them, not every results file
beside the same (much larger) turnout file. Those rows are read only from turnout files that changed: while the
files overlapping a range are the same, so are their rows in it.

Adding per file is exact for row rules. It is exact for the rules over groups of rows (a key's uniqueness, a
tally's rows in station_results) only when no group spans two files. Files are cut where the split column
changes (``parquet.chunk_bounds``), so in a table sorted by its key no group does; each file's first and last
group key are kept, and the table is gated per file only when those ranges are in order and do not overlap
(no nulls in the group key, rows sorted within each file). A table kept in another order (``tables.ORDER``:
events and corrections are in log order) has key ranges that say nothing; its only group rule is its key's
uniqueness, so it is gated per file when no key is in two of its rows (its key columns read from every file:
each group is then one row). Otherwise the table is gated whole, as the full gate does, and nothing is kept
for it.

The files to check are read and checked in batches of about ``CHECK_BATCH_ROWS`` rows, each with the rows of its
aligned context tables in its own files' key ranges: a file's outcome depends on neither, and a full rebuild's
largest tables are not one check frame of 13 million rows.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.fold import tables as t
from pipelines.gate.checks import PART_COLUMN, REFERENCES, CheckSpec, checks_for_table, context_needs
from pipelines.gate.frames import check_frame, composite_key
from pipelines.gate.keyprints import KeyPrints, all_distinct
from pipelines.gate.report import MAX_SAMPLE_ROWS, CheckResult, json_rows
from pipelines.gate.suspects import duplicated

# Bump when frames.py, suspects.py or runner.py change what a check finds: kept outcomes then no longer count.
GATE_LOGIC_VERSION = 1
CACHE_FORMAT = "ballotstream-gate-cache/1"
TALLY = ("election_id", "contest_id", "station_id")
# Context tables whose checks' join is on the table's group key, which is also theirs (``group_columns``): a file
# reads only their rows of the groups in its own key range (gate/frames.py: ``station_frame``, ``_votes_excess``).
ALIGNED_CONTEXT: dict[str, tuple[str, ...]] = {t.STATION_RESULTS: (t.STATION_TURNOUT,),
                                               t.STATION_TURNOUT: (t.STATION_RESULTS,)}
# Aligned context tables whose rows are digested per file range: those with a row per group of the table that reads
# them (a twelfth of its rows), where reading their changed files costs less than re-checking files.
ROW_ALIGNED: dict[str, frozenset[str]] = {t.STATION_RESULTS: frozenset({t.STATION_TURNOUT})}
# Files checked in one validation hold about this many rows (the last file may take a batch past it): a full
# rebuild's station_results and contest_results (13-14 million rows each) were one check frame of 3 GB at the
# gate's peak. Each batch costs one more GX validation (~0.3 s); a file's outcome is the same in any batch.
CHECK_BATCH_ROWS = 3_000_000


@dataclass(frozen=True)
class TableFiles:
    """One staged table as the gate sees it: its checksum, its files' checksums in order, and a reader of one
    file (``read(i, columns)``; ``columns`` None for all)."""

    name: str
    sha256: str
    file_shas: tuple[str, ...]
    read: Callable[[int, list[str] | None], pa.Table]
    file_rows: tuple[int, ...] = ()  # each file's rows, where known (they size the batches checked together)


@dataclass
class TableOutcome:
    """A table's check results, what to keep for the next gate, and how many files were checked or reused."""

    results: list[CheckResult]
    kept: dict[str, Any]
    checked_files: int
    reused_files: int


def group_columns(table: str) -> tuple[str, ...]:
    """The columns whose rows the table's checks judge together: a tally in station_results, else the key."""
    return TALLY if table == t.STATION_RESULTS else t.KEYS[table]


def _self_referencing(table: str) -> bool:
    return any(ref.target_table == table for ref in REFERENCES.get(table, {}).values())


@functools.cache  # read from the installed package's metadata files: 5 ms a call, 20 calls a publish
def _gx_version() -> str:
    try:
        return metadata.version("great_expectations")
    except metadata.PackageNotFoundError:
        return "unknown"


def context_digest(table: str, table_shas: dict[str, str], tolerance: float) -> str:
    """What, besides a file's own bytes, decides what the table's checks find in it."""
    reads = sorted(set(context_needs(table)) - set(ALIGNED_CONTEXT.get(table, ()))) \
        + ([table] if _self_referencing(table) else [])
    body = {"logic": GATE_LOGIC_VERSION, "gx": _gx_version(), "tolerance": tolerance,
            "checks": [repr(spec) for spec in checks_for_table(table)],
            "reads": {name: table_shas.get(name) for name in reads}}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


def _decoded(arr: pa.Array) -> pa.Array:
    return arr.cast(arr.type.value_type) if pa.types.is_dictionary(arr.type) else arr


def _plain(col: pa.ChunkedArray) -> pa.Array:
    return _decoded(col.combine_chunks())


def key_range(table: pa.Table, columns: tuple[str, ...]) -> list[list[Any]] | None:
    """[first, last] group key of a file whose rows are sorted by ``columns`` with none null; ``[]`` for an empty
    file; None when the rows are not sorted or a key is null (the file's groups cannot be located)."""
    if table.num_rows == 0:
        return []
    cols = [_orderable(table[c]) for c in columns]
    if any(col.null_count for col in cols if isinstance(col, pa.Array)):
        return None
    if table.num_rows > 1:
        tied = np.ones(table.num_rows - 1, dtype=bool)
        for col in cols:  # lexicographic: a row may not be below the one before it
            before, after = col[:-1], col[1:]
            if isinstance(col, np.ndarray):
                greater, equal = before > after, before == after
            else:
                greater = pc.greater(before, after).to_numpy(zero_copy_only=False)
                equal = pc.equal(before, after).to_numpy(zero_copy_only=False)
            if np.any(tied & greater):
                return None
            tied &= equal
    return [[_json_value(table[c].slice(row, 1).combine_chunks()[0].as_py()) for c in columns]
            for row in (0, table.num_rows - 1)]


def _orderable(col: pa.ChunkedArray) -> pa.Array | np.ndarray:
    """``col`` as values that order its rows as its values do: a dictionary column becomes each row's dense rank
    among its dictionary's values (files are read with a dictionary per text column: ranking the few thousand
    distinct values spares casting half a million rows to strings), anything else its plain values."""
    arr = col.combine_chunks()
    if pa.types.is_dictionary(arr.type) and not arr.null_count and not arr.dictionary.null_count:
        try:
            ranks = pc.rank(arr.dictionary, sort_keys="ascending", tiebreaker="dense").to_numpy()
            return ranks[arr.indices.to_numpy(zero_copy_only=False)]
        except pa.ArrowNotImplementedError:  # values Arrow does not rank: compared as they are
            pass
    return _decoded(arr)


def groups_stay_in_files(ranges: list[list[list[Any]] | None]) -> bool:
    """True when every file's groups are in no other file: all ranges known, in file order, none overlapping."""
    if any(r is None for r in ranges):
        return False
    spans = [r for r in ranges if r]
    try:
        return all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))
    except TypeError:  # keys of different types cannot be ordered: the groups cannot be located either
        return False


def _range_shape(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, list) and len(value) == 2
                                            and all(isinstance(end, list) for end in value))


def file_ranges(files: TableFiles, kept: Any) -> list[list[list[Any]] | None]:
    """Each file's first and last group key (``key_range``): kept in the last gate's outcomes (a range depends
    on the file's bytes alone, whatever the context) or read from the file's group columns."""
    known: dict[str, Any] = {}
    if isinstance(kept, dict) and isinstance(kept.get("files"), list):
        known = {f["sha256"]: f["range"] for f in kept["files"] if isinstance(f, dict)
                 and isinstance(f.get("sha256"), str) and "range" in f and _range_shape(f["range"])}
    columns = group_columns(files.name)
    return [known[sha] if sha in known else key_range(files.read(i, list(columns)), columns)
            for i, sha in enumerate(files.file_shas)]


@dataclass(frozen=True)
class AlignedTable:
    """A context table of ``ALIGNED_CONTEXT``: its checksum, its files' checksums and group key ranges, and a
    reader of one file (as ``TableFiles.read``)."""

    name: str
    sha256: str
    file_shas: tuple[str, ...]
    ranges: list[list[list[Any]] | None]
    read: Callable[[int, list[str] | None], pa.Table] | None = None
    # ``ROW_ALIGNED``: the columns the reading table's checks need; its rows in a range are what a file reads.
    columns: tuple[str, ...] | None = None
    rows: int = 0  # all of its rows (0: not known)
    # Files read for ``rows_in``, their ``columns`` plain: each read once a gate, only when its rows are needed.
    _plain_files: dict[int, pa.Table] = field(default_factory=dict, compare=False, repr=False)

    def rows_in(self, own: Any) -> pa.Table | None:
        """The ``columns`` of the rows whose group key is in ``own`` (a range; ``[]``: none), plain, read from
        the files whose ranges overlap it alone; None when that cannot be told (not ``ROW_ALIGNED``, files not
        located, ``own`` not a range, keys not comparable)."""
        if self.columns is None or self.read is None or own is None or not _range_shape(own):
            return None
        files = self.overlapping([own])
        if files is None:
            return None
        rows = self._plain_rows(files)
        if not own:
            return rows.slice(0, 0)
        keys = [rows[c] for c in group_columns(self.name)]
        try:
            lo = _bisect(keys, own[0], strict=False)
            return rows.slice(lo, _bisect(keys, own[1], strict=True) - lo)
        except TypeError:
            return None

    def _plain_rows(self, files: list[int]) -> pa.Table:
        """The files' ``columns``, plain (files have their own dictionaries), one chunk a column: the same Arrow
        stream of the same rows, however many files they came from (none: an empty table of file 0's types)."""
        columns = list(self.columns or ())
        for j in files or [0]:
            if j not in self._plain_files:
                part = self.read(j, columns)  # type: ignore[misc]
                self._plain_files[j] = pa.table({c: _plain(part[c]) for c in columns})
        both = pa.concat_tables([self._plain_files[j] for j in files or [0]])
        rows = pa.table({c: both[c].combine_chunks() for c in columns})
        return rows if files else rows.slice(0, 0)

    def overlapping(self, spans: list[Any]) -> list[int] | None:
        """The files whose ranges overlap any of ``spans`` (ranges; ``[]`` spans nothing), or None when that
        cannot be told: this table's files are not located (unsorted, overlapping) or a span is not a range."""
        if not groups_stay_in_files(self.ranges) or not all(s is not None and _range_shape(s) for s in spans):
            return None
        try:
            return [j for j, r in enumerate(self.ranges) if r and any(s and r[0] <= s[1] and s[0] <= r[1]
                                                                      for s in spans)]
        except TypeError:  # keys of different types are not comparable: not located either
            return None


def _bisect(keys: list[pa.Array], key: list[Any], *, strict: bool) -> int:
    """The first row whose key (the columns ``keys``, sorted together) is above ``key`` (``strict``) or not
    below it: a binary search reading a few dozen values, not the million rows."""
    lo, hi = 0, len(keys[0])
    while lo < hi:
        mid = (lo + hi) // 2
        row = [_json_value(col[mid].as_py()) for col in keys]
        if row < key or (strict and row == key):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _rows_digest(rows: pa.Table) -> str:
    """sha256 of ``rows`` as an Arrow IPC stream (sliced buffers are written as their slice: equal rows, equal
    bytes)."""
    digest = hashlib.sha256()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    digest.update(sink.getvalue())
    return digest.hexdigest()


def files_digest(own: Any, contexts: list[AlignedTable]) -> str:
    """The aligned context files a file whose group keys span ``own`` overlaps (their sha256s; the whole table's
    when its files cannot be located): while they are the same, so is every row of theirs in ``own``, and a kept
    outcome stands without those rows being read (``aligned_digest``)."""
    parts = []
    for ctx in contexts:
        files = ctx.overlapping([own])
        parts.append([ctx.name, [ctx.file_shas[j] for j in files] if files is not None else {"whole": ctx.sha256}])
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def aligned_digest(own: Any, contexts: list[AlignedTable]) -> str:
    """What a file whose group keys span ``own`` reads of its aligned context tables: of a ``ROW_ALIGNED`` table
    its rows in ``own``, else the files whose ranges overlap ``own`` (an empty file reads none); the whole table's
    sha256 when its files' ranges cannot be located (unsorted, overlapping) or ``own`` is not a range."""
    parts = []
    for ctx in contexts:
        rows = ctx.rows_in(own)
        if rows is not None:
            parts.append([ctx.name, {"rows": _rows_digest(rows)}])
            continue
        files = ctx.overlapping([own])
        parts.append([ctx.name, [ctx.file_shas[j] for j in files] if files is not None else {"whole": ctx.sha256}])
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _still_aligned(entry: dict[str, Any], aligned: list[AlignedTable]) -> dict[str, Any] | None:
    """A kept outcome that still holds beside the aligned context tables as they are now (``entry``, its
    ``aligned_files`` brought up to date), or None: it holds while the context files overlapping its range are
    the same, or else while their rows in its range are (only then are those files read)."""
    files = files_digest(entry["range"], aligned)
    if entry.get("aligned_files") == files:
        return entry
    if entry.get("aligned") == aligned_digest(entry["range"], aligned):
        return {**entry, "aligned_files": files}
    return None


def _aligned_context(name: str, aligned: list[AlignedTable], spans: list[Any]) -> dict[str, pa.Table]:
    """The rows of the aligned context tables that files spanning ``spans`` read: only the overlapping files
    (the tallies of a few changed files, not 12 million rows); tables that cannot be located are left out,
    for the caller to read whole."""
    out = {}
    for ctx in aligned:
        rows = [ctx.rows_in(s) for s in spans]
        if rows and all(r is not None for r in rows):
            out[ctx.name] = pa.concat_tables(rows)
            continue
        files = ctx.overlapping(spans) if ctx.read is not None else None
        if files is not None:
            columns = list(context_needs(name)[ctx.name])
            out[ctx.name] = pa.concat_tables([ctx.read(j, columns) for j in files]) if files \
                else ctx.read(0, columns).slice(0, 0)
    return out


def key_ordered(table: str) -> bool:
    """Whether ``table``'s rows are in the order of its group key, so that files' key ranges locate its groups."""
    return t.ORDER[table][:len(group_columns(table))] == group_columns(table)


def keys_distinct(table: str, files: TableFiles, parts: dict[int, pa.Table], prints: KeyPrints | None = None
                  ) -> bool:
    """Whether no key of ``table`` is in two of its rows, null keys aside (as its uniqueness rule counts them):
    each key group is then one row, in one file, however the files are cut. ``parts``: files already read;
    ``prints``: the files' kept key fingerprints (a key of one string column), which settle the usual case."""
    keys = list(t.KEYS[table])
    if prints is not None and len(keys) == 1:
        key = keys[0]

        def column(i: int) -> pa.ChunkedArray:
            return parts[i][key] if i in parts and key in parts[i].column_names else files.read(i, keys)[key]

        try:
            if all_distinct([prints.of(sha, key, lambda i=i: column(i)) for i, sha in enumerate(files.file_shas)]):
                return True
        except TypeError:
            pass  # not a column of strings: checked exactly
    read = [parts[i].select(keys) if i in parts and set(keys) <= set(parts[i].column_names) else files.read(i, keys)
            for i in range(len(files.file_shas))]
    whole = pa.concat_tables(read)
    plain = pa.table({k: _plain(whole[k]) for k in keys})  # each file has its own dictionary
    return not np.any(duplicated(composite_key(plain, tuple(keys))).to_numpy())


def _usable(entry: Any, specs: tuple[CheckSpec, ...]) -> bool:
    """Whether a kept file outcome has every field the combination reads (the checkpoint is a document in the
    bucket: one edited by hand or cut short means checking the file again, not a traceback)."""
    try:
        return (isinstance(entry["sha256"], str) and isinstance(entry["rows"], int) and _range_shape(entry["range"])
                and all(isinstance(entry["checks"][s.name]["failing"], int)
                        and isinstance(entry["checks"][s.name]["sample"], list) for s in specs))
    except (KeyError, TypeError):
        return False


def _combine(specs: tuple[CheckSpec, ...], files: list[dict[str, Any]]) -> list[CheckResult]:
    results = []
    for spec in specs:
        failing = sum(f["checks"][spec.name]["failing"] for f in files)
        sample = [row for f in files for row in f["checks"][spec.name]["sample"]][:MAX_SAMPLE_ROWS]
        results.append(CheckResult(name=spec.name, table=spec.table, rule=spec.description, blocking=spec.blocking,
                                   success=failing == 0, failing_rows=failing,
                                   checked_rows=sum(f["rows"] for f in files), sample=sample))
    return results


def _check_files(gx_context: Any, name: str, specs: tuple[CheckSpec, ...], parts: dict[int, pa.Table],
                 context: dict[str, pa.Table], tolerance: float) -> dict[int, dict[str, Any]]:
    """Gate the files ``parts`` (file number -> its rows) in one GX validation; the outcome of each file."""
    from pipelines.gate.runner import failing_rows, sample_rows

    numbered = [p.append_column(PART_COLUMN, pa.array(np.full(p.num_rows, i, dtype=np.int64)))
                for i, p in parts.items()]
    frame = check_frame(name, pa.concat_tables(numbered, promote_options="permissive"), context, tolerance)
    df, failing = failing_rows(gx_context, name, specs, frame)
    part_of = frame[PART_COLUMN].to_numpy()
    by_spec = {spec.name: np.asarray(failing[spec.name], dtype=np.int64) for spec in specs}
    out: dict[int, dict[str, Any]] = {}
    for i in parts:
        checks = {}
        for spec in specs:
            rows = by_spec[spec.name][part_of[by_spec[spec.name]] == i]
            checks[spec.name] = {"failing": len(rows),
                                 "sample": json_rows(sample_rows(df, name, spec, frame.column_names, rows))}
        out[i] = {"rows": int(np.count_nonzero(part_of == i)), "checks": checks}
    return out


def gate_table(gx_context: Any, files: TableFiles, read_context: Callable[[frozenset[str]], dict[str, pa.Table]],
               table_shas: dict[str, str], tolerance: float, kept: dict[str, Any] | None,
               aligned: list[AlignedTable] | None = None, prints: KeyPrints | None = None) -> TableOutcome:
    """Gate one table, re-checking only the files the ``kept`` outcomes of the last gate do not cover.

    Args:
        gx_context: a context from ``pipelines.gate.new_gx_context``.
        files: the table's files.
        read_context: gives the other tables' columns its checks read (``context_needs``), but for the tables
            named in its argument (aligned ones, read here file by file); called only when a file is checked.
        table_shas: every staged table's sha256, by name (for the context digest).
        tolerance: as for ``run_gate``.
        kept: this table's entry of the last release's gate cache (``TableOutcome.kept``), or None.
        aligned: the table's ``ALIGNED_CONTEXT`` tables (none: the table has none).
        prints: the local cache of files' key fingerprints (``keys_distinct``), if any.
    """
    from pipelines.gate.checks import OWN_COLUMNS
    from pipelines.gate.runner import run_specs

    name, specs = files.name, checks_for_table(files.name)
    digest = context_digest(name, table_shas, tolerance)
    before = {f["sha256"]: f for f in kept.get("files", []) if _usable(f, specs)} \
        if isinstance(kept, dict) and kept.get("context") == digest and isinstance(kept.get("files"), list) else {}
    if aligned:  # a kept outcome counts only while what it read of the aligned context tables is the same
        before = {sha: e for sha, e in ((sha, _still_aligned(e, aligned)) for sha, e in before.items()) if e}
    entries: list[dict[str, Any] | None] = [before.get(sha) for sha in files.file_shas]
    todo = [i for i, e in enumerate(entries) if e is None]
    own = list(OWN_COLUMNS[name]) if name in OWN_COLUMNS else None
    if key_ordered(name):  # a file's range from its group columns alone: its rows are read a batch at a time
        columns = group_columns(name)
        ranges = [e["range"] if e is not None else key_range(files.read(i, list(columns)), columns)
                  for i, e in enumerate(entries)]
        local = groups_stay_in_files(ranges)
    else:  # the files' key ranges say nothing: where the key is the group, its uniqueness is checked directly
        ranges = [None] * len(entries)
        local = group_columns(name) == t.KEYS[name] and keys_distinct(name, files, {}, prints)
    contexts: dict[frozenset[str], dict[str, pa.Table]] = {}

    def context(narrow: dict[str, pa.Table]) -> dict[str, pa.Table]:
        skip = frozenset(narrow)
        if skip not in contexts:  # read once, whatever the batches
            contexts[skip] = read_context(skip)
            if _self_referencing(name):  # its references resolve against all of its rows, not one file's
                targets = {ref.target_column for ref in REFERENCES[name].values() if ref.target_table == name}
                contexts[skip][name] = pa.concat_tables([files.read(i, sorted(targets))
                                                         for i in range(len(files.file_shas))])
        return {**contexts[skip], **narrow}

    if not local:
        whole = pa.concat_tables([files.read(i, own) for i in range(len(entries))])
        frame = check_frame(name, whole, {**context({}), name: whole}, tolerance)
        return TableOutcome(run_specs(gx_context, name, specs, frame), {}, len(entries), 0)
    for batch in _batches(files, todo, own, batch_rows(files, aligned or [])):
        narrow = _aligned_context(name, aligned or [], [ranges[i] for i in batch])
        for i, outcome in _check_files(gx_context, name, specs, batch, context(narrow), tolerance).items():
            entries[i] = {"sha256": files.file_shas[i], "range": ranges[i], **outcome}
            if aligned:
                entries[i].update(aligned=aligned_digest(ranges[i], aligned), aligned_files=files_digest(ranges[i], aligned))
    done = [e for e in entries if e is not None]
    return TableOutcome(_combine(specs, done), {"context": digest, "files": done}, len(todo), len(entries) - len(todo))


def batch_rows(files: TableFiles, aligned: list[AlignedTable]) -> int:
    """How many of ``files``' rows to check at once: ``CHECK_BATCH_ROWS``, less the rows of the aligned context
    tables they bring along, in proportion. A batch of station_turnout reads its tallies' station_results rows
    too, a dozen each: all 12.5 million of them, read beside a million tallies, were a full gate's peak."""
    own = sum(files.file_rows)
    brought = sum(ctx.rows for ctx in aligned)
    return CHECK_BATCH_ROWS if not own or not brought else max(1, CHECK_BATCH_ROWS * own // (own + brought))


def _batches(files: TableFiles, todo: list[int], own: list[str] | None, limit: int = CHECK_BATCH_ROWS
             ) -> Iterator[dict[int, pa.Table]]:
    """The files ``todo`` read (their ``own`` columns) and handed on in batches of about ``limit`` rows, each let
    go of before the next is read."""
    batch: dict[int, pa.Table] = {}
    rows = 0
    for i in todo:
        batch[i] = files.read(i, own)
        rows += batch[i].num_rows
        if rows >= limit:
            yield batch
            batch, rows = {}, 0
    if batch:
        yield batch


@dataclass
class GateRun:
    """Every table's results, the cache the next gate starts from, and how many files were checked or reused."""

    results: list[CheckResult]
    cache: dict[str, Any]
    checked_files: int
    reused_files: int
    seconds: dict[str, float] = field(default_factory=dict)  # each table's gate, wall time


def gate_tables(gx_context: Any, files: list[TableFiles],
                read_context: Callable[[str, frozenset[str]], dict[str, pa.Table]],
                tolerance: float, kept: dict[str, Any] | None, prints: KeyPrints | None = None) -> GateRun:
    """Gate ``files`` (tables in gate order) from the last gate's ``kept`` cache (None: check every file);
    ``prints``: the local cache of files' key fingerprints."""
    kept_tables = kept.get("tables") if isinstance(kept, dict) and kept.get("format") == CACHE_FORMAT else None
    kept_tables = kept_tables if isinstance(kept_tables, dict) else {}
    shas = {f.name: f.sha256 for f in files}
    by_name = {f.name: f for f in files}
    located: dict[str, AlignedTable] = {}
    run = GateRun([], {"format": CACHE_FORMAT, "tables": {}}, 0, 0)

    def aligned(name: str) -> list[AlignedTable]:
        for other in ALIGNED_CONTEXT.get(name, ()):
            if other not in located and other in by_name:
                ctx = by_name[other]
                # Gated already in this run: its outcomes hold every file's range, none is read again.
                known = run.cache["tables"].get(other) or kept_tables.get(other)
                columns = tuple(context_needs(name)[other]) if other in ROW_ALIGNED.get(name, ()) else None
                located[other] = AlignedTable(other, ctx.sha256, ctx.file_shas, file_ranges(ctx, known), ctx.read,
                                              columns, sum(ctx.file_rows))
        return [located[other] for other in ALIGNED_CONTEXT.get(name, ()) if other in located]

    for table in files:
        started = time.perf_counter()
        outcome = gate_table(gx_context, table, lambda skip, n=table.name: read_context(n, skip), shas, tolerance,
                             kept_tables.get(table.name), aligned(table.name), prints)
        run.seconds[table.name] = time.perf_counter() - started
        run.results.extend(outcome.results)
        if outcome.kept:
            run.cache["tables"][table.name] = outcome.kept
        run.checked_files += outcome.checked_files
        run.reused_files += outcome.reused_files
    return run
