"""Which allocator Arrow uses while a process folds: the C library's, unless the user chose one.

The fold allocates and frees arrays of hundreds of megabytes one after another (a million stations: station
votes, sort orders, dictionary indices). With pyarrow's default allocator (mimalloc in the Linux wheels) a
200,000-station publish folded in 2.6 s where the C library's malloc took 1.7 s, and a saved million-station
extraction folded in 11.6 s against 7.5 s; in a million-station publish the fold took as long either way, and held
3-5 % less with malloc (``benchmarks/README.md``, "Arrow's allocator"). The choice is Arrow's process-wide
default pool; buffers already allocated keep the pool they came from, so switching while arrays are alive is safe.
"""

from __future__ import annotations

import os

import pyarrow as pa

# Arrow's own setting: when the user names a pool, that is the one the process uses.
POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def use_fold_allocator() -> str:
    """Make the C library's allocator Arrow's default pool, unless ``ARROW_DEFAULT_MEMORY_POOL`` names one.

    Returns:
        The backend now in use (``"system"``, or the user's choice as Arrow reports it).
    """
    if not os.environ.get(POOL_ENV):
        pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name
