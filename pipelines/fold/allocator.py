"""Which allocator Arrow uses while a process folds: the C library's, unless the user chose one.

The fold allocates and frees arrays of hundreds of megabytes one after another (a million stations: station
votes, sort orders, dictionary indices). With pyarrow's default allocator (mimalloc in the Linux wheels) a
200,000-station publish folded in 2.6 s where the C library's malloc took 1.7 s, and a saved million-station
extraction folded in 11.6 s against 7.5 s; in a million-station publish the fold took as long either way, and held
3-5 % less with malloc (``benchmarks/README.md``, "Arrow's allocator"). The choice is Arrow's process-wide
default pool; buffers already allocated keep the pool they came from, so switching while arrays are alive is safe.

Two more settings make what a publish frees go back to the system rather than stay with the process, where it
was an election-night publish's peak (at a million stations 1.3 GB more than it used once its stage had ended:
``benchmarks/bench_live.py``'s ``rss_timeline``):

- Arrow's C++ default pool, which pyarrow's setting does not reach (a Parquet dataset scan allocates from it), is
  the C library's too: ``pipelines/__init__.py`` sets ``ARROW_DEFAULT_MEMORY_POOL`` before pyarrow is imported,
  since Arrow reads it once;
- glibc maps every block of ``MMAP_THRESHOLD`` or more on its own and unmaps it when it is freed (by default it
  raises that threshold up to 32 MiB as blocks are freed, and keeps freed blocks below it in its heaps).

Smaller blocks stay in glibc's heaps once freed, scattered between live ones where its automatic trim (of a
heap's top only) never reaches them: an election-night publish at a million stations held 0.55 GB of them once it
had ended, the catalog's charts then drawing on top. ``give_back`` returns them (``malloc_trim``, which Arrow's
``release_unused`` calls for the C library's pool) between the steps of a publish.

The gate is the exception (``blocks_kept_while``): it builds and drops arrays of one to thirty megabytes for every
batch of files, and with each mapped apart the kernel cleared every page of each afresh. A million stations'
gate alone took 4.2-4.3 million page faults and 7.6-9.5 s of system time (16-23 s wall); with blocks below 32 MiB
kept, and not trimmed from a heap's top either, 0.6 million and 1.9-2.9 s (15 s wall, against 19 s in the same
series). Its peak went from 1.26 GB to 1.52-1.57 GB: far below a full rebuild's, 2.8 GB in its read and fold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

# Arrow's own setting: when the user names a pool, that is the one the process uses.
POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
# glibc's mallopt parameter (malloc.h), and the block size from which blocks are mapped apart.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20
# glibc's largest dynamic threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): blocks below it are kept once freed.
KEPT_BLOCKS_THRESHOLD = 32 << 20
# glibc's trim threshold (malloc.h), its default, and twice the kept blocks' (as glibc's dynamic threshold sets it):
# a freed block at a heap's top is kept too, not trimmed away and faulted in again by the next one.
M_TRIM_THRESHOLD = -1
TRIM_THRESHOLD = 128 << 10
KEPT_BLOCKS_TRIM = 2 * KEPT_BLOCKS_THRESHOLD


def _mallopt() -> object | None:
    return getattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt", None)  # glibc's; None elsewhere


_set_threshold = False  # whether ``use_fold_allocator`` lowered glibc's threshold in this process


def use_fold_allocator() -> str:
    """Make the C library's allocator Arrow's default pool, and with glibc map large blocks apart, unless
    ``ARROW_DEFAULT_MEMORY_POOL`` names another pool (``pipelines/__init__.py`` names ``system`` by default).

    Returns:
        The backend now in use (``"system"``, or the user's choice as Arrow reports it).
    """
    global _set_threshold
    if os.environ.get(POOL_ENV, "system") == "system":
        pa.set_memory_pool(pa.system_memory_pool())  # pyarrow may have been imported before the default was set
        mallopt = _mallopt()
        if mallopt is not None:
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            _set_threshold = True
    return pa.default_memory_pool().backend_name


@contextmanager
def blocks_kept_while() -> Iterator[None]:
    """Within: freed blocks below ``KEPT_BLOCKS_THRESHOLD`` stay in glibc's heaps for the next allocation instead
    of going back to the system (see the module's docstring: the gate). After: the fold's threshold again, and
    what the heaps kept given back. Nothing changes unless ``use_fold_allocator`` set the threshold."""
    mallopt = _mallopt() if _set_threshold else None
    if mallopt is None:
        yield
        return
    mallopt(M_MMAP_THRESHOLD, KEPT_BLOCKS_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, KEPT_BLOCKS_TRIM)
    try:
        yield
    finally:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        give_back()


def give_back() -> None:
    """Return to the system what the process has freed and its allocator still keeps: with the C library's
    allocator, the free pages inside glibc's heaps (``malloc_trim``); with mimalloc or jemalloc, their own caches.
    Costs milliseconds; called where a publish has let go of one step's data and the next allocates its own."""
    pa.default_memory_pool().release_unused()
