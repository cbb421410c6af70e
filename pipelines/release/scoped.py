"""Stage a publish whose new events are tallies alone: fold their scope, splice it into the last release's files.

At a million stations a fold of the whole snapshot takes most of an election-night publish (~12 s, ~4 GB) to
change the rows of a few hundred contests. When the events read since the last release are tallies alone, their
scope (``pipelines.fold.scope``: the contests they touch, closed under every line the fold joins tallies on) is
folded with the reference events alone, and each table is staged from the last release's files:

- a table of contests, municipalities or events: the scope's rows spliced into the files around them
  (``pipelines.release.splice``), the other files linked as they are;
- national_summary: folded again over the whole station_turnout (read back from its spliced files, a file
  at a time);
- every other table: the last release's files, linked.

The files are byte for byte those of a fold of the whole snapshot (``tests/unit/test_scoped_stage.py`` runs
both on random histories and deltas). Anything that stands in the way (a delta of more than tallies, a scope
of more than ``MAX_SHARE`` of the tallies, a file of the last release not in the local cache) raises
``NotScoped`` with the reason, and the caller folds the whole snapshot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.allocator import give_back
from pipelines.fold.core import fold_tables
from pipelines.fold.extract import Extracted
from pipelines.fold.scope import SCOPED_BY, Scope, in_scope, restrict, tally_scope
from pipelines.fold.sliced import SlicedTable
from pipelines.fold.summary import SUMMARY_TURNOUT_COLUMNS, PartFigures, WholeTurnout
from pipelines.release import reuse
from pipelines.release.diff import diff_tables
from pipelines.release.mapped_copy import let_go_of_pages
from pipelines.release.parquet import StagedFile, columns, tree_sha256, write_table_files
from pipelines.release.part_figures import FiguresCache, keeping_figures
from pipelines.release.splice import (
    PREFIXES,
    DamagedFile,
    OldFile,
    Prefixes,
    SortedKeys,
    Splice,
    first_keys,
    replaced_rows,
    splice_table,
)

log = logging.getLogger(__name__)

# Above this share of the tallies, folding the scope saves too little to be worth two paths.
MAX_SHARE = 0.5
# Tables spliced at once beside the fold. Two: with the fold, both cores stay busy (at a million stations, 10,000
# new tallies: the stage 7.1-8.3 s with none, 4.8-6.4 s with two; benchmarks/bench_scoped.py).
SPLICE_THREADS = 2


class NotScoped(Exception):
    """This publish cannot be staged from its scope; the message says why (the publish folds in full)."""


@dataclass
class ScopedStage:
    """What ``stage_scoped`` staged: the tables' files, their columns, and what it did."""

    files: dict[str, StagedFile]
    columns: dict[str, list[dict[str, str]]]
    note: str
    timings: dict[str, float] = field(default_factory=dict)
    # Rows added, changed and removed since the last release (``diff.diff_tables``) of each spliced table: only the
    # scope's rows differ, and the splice has read the last release's (the manifest's changes need no second read).
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    # Tally events in the scope (every version and copy of its contests' tallies): what the stage, the gate and
    # the NIST documents' build hold grows with it (``cdf_ahead.AHEAD_MAX_SCOPE_TALLIES``).
    scope_tallies: int = 0


def _nothing(files: Mapping[str, StagedFile]) -> None:
    return None


def _ignored(scope_tallies: int) -> None:
    return None


# Bump when ``parquet.chunk_bounds`` cuts the same rows otherwise for the same widths and file size.
# 2: a table is one file up to ``file_bytes`` by its width (1: up to twice that).
CUTS_VERSION = 2


def cutting(file_bytes: int) -> dict[str, Any]:
    """What decides where a release's table files are cut, besides their rows: recorded in its manifest
    (``write.cutting``). A scoped stage keeps the last release's files of every table it does not touch, so it may
    only follow a release cut the same way; otherwise its tables would not be a full rebuild's."""
    # Each table's layout (``file_layout``: split column, widths, its own file size), row order and columns: the
    # last release's files are spliced, row by row, in that order and with those columns.
    widths = json.dumps({name: [*t.file_layout(name, file_bytes).values(), *t.ORDER[name],
                                *(f"{f.name}: {f.type}" for f in t.SCHEMAS[name])] for name in t.TABLE_NAMES})
    return {"rule": CUTS_VERSION, "file_bytes": file_bytes,
            "widths": hashlib.sha256(widths.encode()).hexdigest()[:16]}


@dataclass(frozen=True)
class Writing:
    """How a table's files are written: ``parquet.write_table_files``' settings; ``scoped`` is told the scope's
    tally events as soon as the scope is known, before any table is staged, and ``staged`` the files staged so far
    each time a table's are (``bench_scoped`` notes when the NIST documents' tables are; a publish starts their
    build then, for a scope small enough: ``cdf_ahead.StartWhenStaged``)."""

    directory: Path
    file_bytes: int
    cache: reuse.TableFileCache
    staged: Callable[[Mapping[str, StagedFile]], None] = _nothing
    # Where station_turnout files' national figures are kept by sha256 (``part_figures``); None: not kept.
    figures: Path | None = None
    scoped: Callable[[int], None] = _ignored

    def how(self, name: str) -> dict[str, Any]:
        return {**t.file_layout(name, self.file_bytes), "write": self.cache.write}

    def link(self, name: str, old: OldFile, path: Path) -> StagedFile:
        staged = self.cache.link_kept(name, old.sha256, old.rows, path)
        if staged is None:
            raise NotScoped(f"a file of {name} in the last release is missing from the local cache or damaged")
        return staged

    def link_table(self, name: str, old: list[OldFile], one_file: bool) -> StagedFile:
        """The last release's files of ``name``, as they are."""
        if one_file:
            self.directory.mkdir(parents=True, exist_ok=True)
            return self.link(name, old[0], self.directory / f"{name}.parquet")
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True)
        parts = tuple(self.link(name, f, folder / f"part-{i:05d}.parquet") for i, f in enumerate(old))
        return StagedFile(name, folder, sum(p.rows for p in parts), sum(p.bytes for p in parts),
                          tree_sha256([p.sha256 for p in parts]), parts)


def _old_tables(manifest: dict[str, Any], cache: reuse.TableFileCache) -> dict[str, tuple[list[OldFile], bool]]:
    """Each table's files in the last release (``first`` keys not read yet), and whether it is one file."""
    out = {}
    for name in t.TABLE_NAMES:
        entry = (manifest.get("tables") or {}).get(name)
        if not entry or not entry.get("files"):
            raise NotScoped(f"the last release lists no files for {name}")
        try:
            files = [OldFile(cache.kept_path(str(f["sha256"])), str(f["sha256"]), int(f["rows"]), ())
                     for f in entry["files"]]
        except (KeyError, TypeError, ValueError) as exc:  # a manifest edited or cut short: fold in full
            raise NotScoped(f"the last release's entry for {name} is malformed ({exc!r})") from exc
        if not all(f.path.is_file() for f in files):
            raise NotScoped(f"a file of {name} in the last release is not in the local cache")
        out[name] = (files, entry.get("path") is not None)
    return out


def _prefixes(name: str, ex: Extracted, scope: Scope) -> Prefixes:
    """The order prefixes under which the scope's rows of ``name`` lie (``splice.PREFIXES``), before and after."""
    cols = PREFIXES[name]
    if cols == t.LOG_ORDER:  # every event of the scope: their log positions, sorted, never made tuples
        env = ex.envelope
        rows = pa.array(np.flatnonzero(in_scope(t.EVENTS, env, scope).to_numpy(zero_copy_only=False)), pa.int64())
        source = env.select(list(cols)).take(rows)  # plain integers and strings (``extract.ENVELOPE_SCHEMA``)
        return SortedKeys(source.take(pc.sort_indices(source, sort_keys=[(c, "ascending") for c in cols])))
    else:
        tallies = ex.content[v.STATION_TALLY]
        rows = pa.array(np.flatnonzero(scope.tally_rows), pa.int64())
        source = tallies.select(list(cols)).take(rows)
        if name == t.MUNICIPALITY_RESULTS:
            source = source.filter(source["municipality_id"].is_valid())
        # Tens of thousands of tallies lie under a few hundred contests: their distinct prefixes, not every row,
        # become Python tuples.
        source = source.group_by(list(cols), use_threads=False).aggregate([]).select(list(cols))
    return {tuple(r.values()) for r in source.to_pylist()}


def _all_prefixes(ex: Extracted, scope: Scope) -> dict[str, Prefixes]:
    """``_prefixes`` of every scoped table, each distinct set found once: events and corrections lie at the same
    log positions (looked up among two million envelope rows at a million stations), several tables under the
    same contests."""
    found: dict[tuple[tuple[str, ...], bool], Prefixes] = {}
    out = {}
    for name in SCOPED_BY:
        how = (PREFIXES[name], name == t.MUNICIPALITY_RESULTS)
        if how not in found:
            found[how] = _prefixes(name, ex, scope)
            let_go_of_pages()  # each lookup's columns are read once: ~1 GB of mapped pages were resident at once
        out[name] = found[how]
    return out


def _spliced(name: str, table: pa.Table, old: list[OldFile], prefixes: Prefixes, scope: Scope,
             writing: Writing) -> tuple[StagedFile, dict[str, int] | None]:
    """Table ``name``'s files, its scope's ``table`` rows spliced into the last release's ``old`` ones, and the
    rows that changed (``diff.diff_tables``; None when counting failed).

    Rows outside the scope are the last release's and the scope holds whole keys (its column is in the key), so
    the scope's rows before and after differ as the whole tables do; the splice has read the last release's.
    They are counted as soon as the splice ends, so that neither set of rows outlives it: counted later, after
    the splices queued before, every table's two sets were held until the stage's end (at 100,000 tallies of a
    million stations, hundreds of megabytes of its peak)."""
    try:
        keys = first_keys(name, [f.path for f in old]) if len(old) > 1 else [()] * len(old)
    except (OSError, pa.ArrowException) as exc:  # a kept copy damaged: the splice would refuse it anyway
        raise NotScoped(f"a file of {name} in the local cache is damaged ({exc})") from exc
    old = [OldFile(f.path, f.sha256, f.rows, k) for f, k in zip(old, keys, strict=True)]
    mask = in_scope(name, table, scope)
    rows = table if mask.true_count == len(mask) else table.filter(mask)  # no copy of a table all in scope
    splice = Splice(name, old, rows, prefixes, lambda rows: in_scope(name, rows, scope))
    how = writing.how(name)
    if name == t.STATION_TURNOUT and writing.figures is not None:
        how["write"] = keeping_figures(how["write"], FiguresCache(writing.figures))
    try:
        staged = splice_table(splice, writing.directory, **how, link=writing.link)
    except DamagedFile as exc:
        raise NotScoped(f"a file of {name} in the local cache is damaged ({exc})") from exc
    try:
        return staged, diff_tables(replaced_rows(splice), rows, list(t.KEYS[name]))
    except Exception:  # noqa: BLE001 (a count is an optimisation: never what fails a publish)
        log.warning("counting the changes of %s beside its splice failed", name, exc_info=True)
        return staged, None


Spliced = tuple[StagedFile, dict[str, int] | None]


class _Splicing:
    """Tables spliced in threads beside the fold of the next ones (Arrow and Parquet let go of the interpreter;
    the splices write different files through a thread-safe cache), gathered into ``files`` in the order they
    end, ``staged`` told after each, and each one's changes counted."""

    def __init__(self, pool: ThreadPoolExecutor, files: dict[str, StagedFile],
                 staged: Callable[[Mapping[str, StagedFile]], None]) -> None:
        self.pool, self.files, self.staged = pool, files, staged
        self.running: dict[Future[Spliced], str] = {}
        self.counted: dict[str, dict[str, int]] = {}
        self.told = 0  # how many files ``staged`` was last told of

    def submit(self, name: str, splice: Callable[..., Spliced], *args: Any) -> None:
        self.running[self.pool.submit(splice, *args)] = name

    def _done(self, future: Future[Spliced]) -> None:
        name = self.running.pop(future)
        self.files[name], count = future.result()
        if count is not None:
            self.counted[name] = count
        self.tell()

    def result(self, name: str) -> StagedFile:
        """Table ``name``'s files, once spliced."""
        if name not in self.files:
            self._done(next(f for f, n in self.running.items() if n == name))
        return self.files[name]

    def collect(self, wait: bool) -> None:
        """Gather the splices that ended (``wait``: all of them), telling ``staged`` of each new file as it
        comes; a splice's error is raised here."""
        self.tell()
        for future in as_completed(list(self.running)) if wait else [f for f in self.running if f.done()]:
            self._done(future)

    def changes(self) -> dict[str, dict[str, int]]:
        """Each spliced table's rows added, changed and removed; a table whose count failed is left out (the
        release counts it from the files)."""
        return dict(self.counted)

    def tell(self) -> None:
        if len(self.files) > self.told:
            self.told = len(self.files)
            self.staged(self.files)


class Source(Protocol):
    """The snapshot's whole extraction (the checkpoint's events, then from envelope row ``new_from`` those read
    since), handed over: ``stage_scoped`` sets ``extracted`` to None once it has cut out the scope, so that it is
    freed before the fold and the splices allocate theirs (``checkpoint.Extension`` is one)."""

    extracted: Extracted | None
    new_from: int | None


def _cut_alike(manifest: dict[str, Any], file_bytes: int) -> None:
    """Raises ``NotScoped`` unless the last release's files were cut as this publish cuts them (``cutting``)."""
    write = manifest.get("write")
    theirs, ours = write.get("cutting") if isinstance(write, dict) else None, cutting(file_bytes)
    if theirs is None:
        raise NotScoped("the last release does not say how its table files were cut")
    if theirs != ours:
        raise NotScoped(f"the last release's table files were cut otherwise ({theirs}; now {ours})")


def _handed(source: Source, manifest: dict[str, Any] | None, release_id: str | None) -> tuple[Extracted, int]:
    """The extraction and its first new row, when ``manifest`` is the checkpoint's release's."""
    if manifest is None or manifest.get("release_id") != release_id:
        raise NotScoped("the latest release is not the one the checkpoint belongs to")
    if source.extracted is None or source.new_from is None:
        raise NotScoped("the extraction was not handed over with where its new events start")
    return source.extracted, source.new_from


def _scope_of(ex: Extracted, new_from: int) -> Scope:
    """The scope of ``ex``'s events from row ``new_from`` on.

    Raises:
        NotScoped: the new events have no scope, or one too large to be worth it.
    """
    # The scope and the restriction read the mapped checkpoint a column at a time: each column's pages are let go
    # of once read, so that the process never holds the whole copy (a gigabyte at a million stations).
    scope = tally_scope(ex, np.arange(ex.envelope.num_rows) >= new_from, let_go_of_pages)
    if scope is None:
        raise NotScoped("the new events are not tallies alone")
    if scope.share > MAX_SHARE:
        raise NotScoped(f"the new tallies' scope is {scope.share:.0%} of the tallies")
    let_go_of_pages()
    return scope


def _turnout_files(spliced: Callable[[], StagedFile], figures: Path | None) -> WholeTurnout:
    """station_turnout's spliced files for national_summary: read a file at a time (a million rows at once were
    ~0.3 GB beside the last splices), and each file's figures kept in ``figures`` by its sha256, so that the
    files the scope left as they were are not read at all."""
    def read_file(path: Path) -> pa.Table:
        return pq.read_table(str(path), columns=list(SUMMARY_TURNOUT_COLUMNS))

    def read() -> Iterator[pa.Table]:
        return (read_file(path) for path in spliced().paths())

    if figures is None:
        return WholeTurnout(read)
    cache = FiguresCache(figures)

    def kept() -> Iterator[PartFigures | None]:
        whole = spliced()
        return (cache.of(part.sha256, lambda part=part: read_file(part.path)) for part in whole.parts or (whole,))

    return WholeTurnout(read, kept)


def _cut(ex: Extracted, scope: Scope) -> tuple[dict[str, Prefixes], Extracted]:
    """Where the scope's rows lie, before and after the new events (``_all_prefixes``), looked up in a thread while
    the scope's extraction is cut out of the whole one (``restrict``). Both read the whole extraction and neither
    writes it; Arrow and numpy let go of the interpreter: at a million stations, 1.5 s on one core of a publish's
    fixed cost, before the fold and the splices have work for the other."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefixes") as pool:
        found = pool.submit(_all_prefixes, ex, scope)
        sub = restrict(ex, scope, let_go_of_pages)
        prefixes = found.result()
    let_go_of_pages()
    return prefixes, sub


def stage_scoped(source: Source, manifest: dict[str, Any] | None, release_id: str | None, dataset: str,
                 writing: Writing) -> ScopedStage:
    """Stage the snapshot ``source.extracted`` from its new events' scope and the files of the last release
    (``manifest``, which must be ``release_id``'s, the checkpoint's). ``source.extracted`` is None afterwards
    unless ``NotScoped`` was raised before the scope was cut out.

    Raises:
        NotScoped: the snapshot must be folded whole; the message says why.
    """
    ex, new_from = _handed(source, manifest, release_id)
    _cut_alike(manifest, writing.file_bytes)
    started = time.perf_counter()
    scope = _scope_of(ex, new_from)
    writing.scoped(scope_tallies := int(np.count_nonzero(scope.tally_rows)))
    old = _old_tables(manifest, writing.cache)
    timings = {"scope_s": time.perf_counter() - started, "scope_share": scope.share}
    started = time.perf_counter()
    prefixes, sub = _cut(ex, scope)
    # Nothing reads the whole extraction again: at a million stations its mapped checkpoint pages (a gigabyte
    # resident once the scope has been looked up) go before the fold and the splices allocate theirs.
    source.extracted = None
    del ex
    give_back()
    files: dict[str, StagedFile] = {}
    table_columns: dict[str, list[dict[str, str]]] = {}
    with ThreadPoolExecutor(max_workers=SPLICE_THREADS, thread_name_prefix="splice") as pool:
        splicing = _Splicing(pool, files, writing.staged)

        def whole_turnout(turnout: pa.Table) -> WholeTurnout:
            # Spliced beside the rest of the fold, read back when national_summary is built (_turnout_files).
            splicing.submit(t.STATION_TURNOUT, _spliced, t.STATION_TURNOUT, turnout, old[t.STATION_TURNOUT][0],
                            prefixes[t.STATION_TURNOUT], scope, writing)
            return _turnout_files(lambda: splicing.result(t.STATION_TURNOUT), writing.figures)

        try:
            for name, table in fold_tables(sub, dataset, whole_turnout=whole_turnout):
                table = table.table() if isinstance(table, SlicedTable) else table
                table_columns[name] = columns(table)
                if name == t.STATION_TURNOUT:
                    pass  # being spliced (whole_turnout)
                elif name in SCOPED_BY:
                    splicing.submit(name, _spliced, name, table, old[name][0], prefixes[name], scope, writing)
                elif name == t.NATIONAL_SUMMARY:
                    files[name] = write_table_files(name, table, writing.directory, **writing.how(name))
                else:
                    files[name] = writing.link_table(name, *old[name])
                splicing.collect(wait=False)
            sub = table = None  # folded: what is left of the scope's extraction goes before the last splices
            give_back()
            splicing.collect(wait=True)
            changes = splicing.changes()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # no splice writes into a folder its caller drops
            raise
    timings["fold_s"] = time.perf_counter() - started
    note = (f"the new tallies' scope: {len(scope.contests)} contests, {scope.share:.1%} of the tallies")
    return ScopedStage({name: files[name] for name in t.TABLE_NAMES}, table_columns, note, timings, changes,
                       scope_tallies)
