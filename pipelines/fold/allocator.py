"""Which allocator Arrow uses while a process folds: the C library's, unless the user chose one.

The fold allocates and frees arrays of hundreds of megabytes one after another (a million stations: station
votes, sort orders, dictionary indices). With pyarrow's default allocator (mimalloc in the Linux wheels) each such
array came from fresh pages, and a million-station fold ran 30 % slower than with the C library's malloc or
jemalloc; the C library's was the fastest of the three and held the least (``benchmarks/README.md``, "Arrow's
allocator"). The choice is Arrow's process-wide default pool; buffers already allocated keep the pool they came
from, so switching while arrays are alive is safe.
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
