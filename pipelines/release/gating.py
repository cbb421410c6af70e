"""The gate of staged tables: each table's files, the other tables' columns its checks read, and, for a gate that
checks every file of a large snapshot, a second process gating some of the tables beside this one.

The gate runs in one thread (Arrow kernels one after the other, Great Expectations in Python): a full rebuild's
gate at a million stations took 30 s of one core while the other had only the documents' build (12 s) to do.
The tables are gated independently, but for the two that read each other file by file (``ALIGNED_CONTEXT``:
station_results and station_turnout, which stay in this process). So a helper process gates ``HELPER_TABLES``
with a Great Expectations context of its own and hands back their outcomes: the same as this process would have
found (a test holds it to that). Its start, a fresh interpreter importing Great Expectations (5 s of a core), is
paid only by a gate that checks every file (no outcomes kept from the last release) of tables that large.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.errors import CheckError
from pipelines.fold import tables as t
from pipelines.gate import new_gx_context
from pipelines.gate.checks import context_needs
from pipelines.gate.incremental import GateRun, TableFiles, gate_tables
from pipelines.gate.keyprints import KeyPrints
from pipelines.release.parquet import StagedFile, read_staged

# The tables a helper gates: none reads another file by file, and at a million stations they took 13 s of a full
# gate's 30 (contest_results 7.7, events 2.9, divisions 2.4), against 17 s for the rest in this process.
HELPER_TABLES = (t.EVENTS, t.DIVISIONS, t.CONTEST_RESULTS)
# Below this many rows in those tables, the helper's start costs more than their gate (contest_results has about
# thirteen rows per station).
HELPER_MIN_ROWS = 3_000_000

ContextCache = dict[tuple[str, tuple[str, ...]], pa.Table]


def gate_context(files: Mapping[str, StagedFile], name: str, cache: ContextCache | None = None,
                 skip: frozenset[str] = frozenset()) -> dict[str, pa.Table]:
    """Just the columns of other tables that ``name``'s checks read (``context_needs``), never whole tables, and
    none of the tables in ``skip`` (the incremental gate reads those file by file).

    At a million stations holding every table at once beside station_results would cost a gigabyte more.
    """
    cache = {} if cache is None else cache
    context = {}
    for other, wanted in context_needs(name).items():
        if other in files and other not in skip:
            if (other, wanted) not in cache:
                cache[(other, wanted)] = read_staged(files[other], list(wanted))
            context[other] = cache[(other, wanted)]
    return context


def gate_files(name: str, staged_file: StagedFile) -> TableFiles:
    """A staged table's files as the incremental gate reads them, one file at a time."""
    parts = staged_file.parts or (staged_file,)
    return TableFiles(name, staged_file.sha256, tuple(p.sha256 for p in parts),
                      lambda i, cols: read_staged(parts[i], cols))


def helper_tables(files: Mapping[str, StagedFile], kept: dict[str, Any] | None) -> tuple[str, ...]:
    """The tables a helper process gates: none unless no outcome is kept from the last gate and ``HELPER_TABLES``
    hold ``HELPER_MIN_ROWS`` rows."""
    if kept is not None:
        return ()
    names = tuple(name for name in HELPER_TABLES if name in files)
    return names if sum(files[name].rows for name in names) >= HELPER_MIN_ROWS else ()


def gate_some(files: Mapping[str, StagedFile], names: tuple[str, ...], tolerance: float,
              kept: dict[str, Any] | None, prints_folder: Path | None) -> GateRun:
    """``gate_tables`` of the staged tables ``names`` (in gate order), the others' columns read as their checks
    need them: this process's share of a gate, and a helper's."""
    cache: ContextCache = {}
    tables = [gate_files(name, files[name]) for name in t.TABLE_NAMES if name in names and name in files]
    return gate_tables(new_gx_context(), tables, lambda name, skip: gate_context(files, name, cache, skip),
                       tolerance, kept, KeyPrints(prints_folder) if prints_folder else None,
                       {name: files[name].sha256 for name in t.TABLE_NAMES if name in files})


Job = Callable[[Mapping[str, StagedFile], tuple[str, ...], float, dict[str, Any] | None, Path | None], GateRun]


def gate_staged(files: Mapping[str, StagedFile], tolerance: float, kept: dict[str, Any] | None,
                prints_folder: Path | None, *, helped: tuple[str, ...] | None = None,
                job: Job = gate_some) -> tuple[GateRun, dict[str, float]]:
    """Gate every staged table, ``helped`` (default: ``helper_tables``) in a helper process running ``job``.

    Returns:
        The gate's run, as one process's would be (results and kept outcomes in gate order), and the helper's
        figures: how many tables it gated and how long this process then waited for it.

    Raises:
        CheckError: a check could not be evaluated (in either process), or the helper died without a word.
    """
    helped = helper_tables(files, kept) if helped is None else helped
    mine = tuple(name for name in files if name not in helped)
    if not helped:
        return gate_some(files, mine, tolerance, kept, prints_folder), {}
    # Spawned, not forked: the caller may be a Dagster run with threads of its own.
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        future = pool.submit(job, dict(files), helped, tolerance, kept, prints_folder)
        own = gate_some(files, mine, tolerance, kept, prints_folder)
        waited = time.perf_counter()
        try:
            theirs = future.result()
        except BrokenProcessPool as exc:
            raise CheckError(f"the gate's helper process died ({exc}) while gating {', '.join(helped)}; if memory "
                             "is short, that is the likely cause") from exc
        waited = time.perf_counter() - waited
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return merged(own, theirs), {"gate_helper_tables": float(len(helped)), "gate_helper_wait_s": waited}


def merged(*runs: GateRun) -> GateRun:
    """Runs of disjoint tables as one: results and kept outcomes in gate order, counts and seconds added up."""
    results = {name: [r for run in runs for r in run.results if r.table == name] for name in t.TABLE_NAMES}
    kept = {name: table for run in runs for name, table in run.cache["tables"].items()}
    return GateRun([r for name in t.TABLE_NAMES for r in results[name]],
                   {**runs[0].cache, "tables": {name: kept[name] for name in t.TABLE_NAMES if name in kept}},
                   sum(run.checked_files for run in runs), sum(run.reused_files for run in runs),
                   {name: s for run in runs for name, s in run.seconds.items()})
