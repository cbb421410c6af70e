"""Run :func:`pipelines.ingest.work.process_chunk` over a file's chunks in worker processes, results in order.

At most a few chunks per worker are in flight, so memory stays flat however big the file. Workers come from a
``forkserver``: forking the caller directly could copy locks held by its threads (a Kafka client's, say).
With ``workers=0`` the same function runs in this process, so both paths give identical results.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path

from pipelines.ingest.chunks import Chunk
from pipelines.ingest.records import Rejected
from pipelines.ingest.work import ChunkResult, process_chunk

# Below this much input, starting processes costs more than it saves (~0.3-1 s to start the pool).
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
IN_FLIGHT_PER_WORKER = 3


def worker_count(paths: Iterable[Path], requested: int | None) -> int:
    """How many worker processes to use: ``requested``, or by default one per CPU for large inputs, else 0."""
    if requested is not None:
        return max(0, requested)
    if sum(p.stat().st_size for p in paths) < PARALLEL_MIN_BYTES:
        return 0
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def start_pool(workers: int) -> Pool | None:
    """A pool of ``workers`` processes (None for 0), with the worker code imported once in the fork server."""
    if workers <= 0:
        return None
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipelines.ingest.work"])
    return ctx.Pool(workers)


def in_order(
    items: Iterable[Chunk | Rejected], kind: str | None, pool: Pool | None
) -> Iterator[tuple[Chunk | None, ChunkResult]]:
    """Each chunk with its result, in input order; a :class:`Rejected` (bad CSV header) passes through as a
    one-item result without a chunk."""
    if pool is None:
        for item in items:
            yield (None, ChunkResult([item], 0.0, 0.0)) if isinstance(item, Rejected) else (
                item, process_chunk(item, kind))
        return
    limit = IN_FLIGHT_PER_WORKER * pool._processes  # type: ignore[attr-defined]
    pending: deque[tuple[Chunk | None, AsyncResult[ChunkResult] | ChunkResult]] = deque()
    for item in items:
        if isinstance(item, Rejected):
            pending.append((None, ChunkResult([item], 0.0, 0.0)))
        else:
            pending.append((item, pool.apply_async(process_chunk, (item, kind))))
        while len(pending) >= limit or (pending and isinstance(pending[0][1], ChunkResult)):
            yield _pop(pending)
    while pending:
        yield _pop(pending)


def _pop(pending: deque[tuple[Chunk | None, AsyncResult[ChunkResult] | ChunkResult]]) -> tuple[
        Chunk | None, ChunkResult]:
    chunk, result = pending.popleft()
    return chunk, result if isinstance(result, ChunkResult) else result.get()
