"""The gate of staged tables: each table's files as the incremental gate reads them, and the other tables' columns
its checks read, read from the staging folder as they are needed.

A second process gating some of the tables beside this one was tried (2026-12-06): a full rebuild's gate at a
million stations went from 30 s to 25 s, but the process tree held 3.5 GB, past the 3 GB a full rebuild may use.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.fold import tables as t
from pipelines.gate import new_gx_context
from pipelines.gate.checks import context_needs
from pipelines.gate.incremental import GateRun, TableFiles, gate_tables
from pipelines.gate.keyprints import KeyPrints
from pipelines.release.parquet import StagedFile, read_staged

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
                      lambda i, cols: read_staged(parts[i], cols), tuple(p.rows for p in parts))


def gate_staged(files: Mapping[str, StagedFile], tolerance: float, kept: dict[str, Any] | None,
                prints_folder: Path | None) -> GateRun:
    """``gate_tables`` of every staged table (in gate order), one table in memory at a time, the others' columns
    read as its checks need them; ``kept``: the last release's gate outcomes (None: check every file)."""
    cache: ContextCache = {}
    tables = [gate_files(name, files[name]) for name in t.TABLE_NAMES if name in files]
    return gate_tables(new_gx_context(), tables, lambda name, skip: gate_context(files, name, cache, skip),
                       tolerance, kept, KeyPrints(prints_folder) if prints_folder else None)
