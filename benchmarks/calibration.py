"""How fast this machine is at the moment: one fixed workload of the kinds a publish runs, timed.

The two cores are shared with the local services and with whatever else the host runs. On 2026-12-03 the same
code on the same data read and gated a million stations 20-50 % slower than the night before, with nothing else
running here (``benchmarks/README.md``): a difference between two benchmark runs says something about the code
only when the machine was equally fast in both. ``bench_live`` records this figure before and after its runs,
``bench_fold --load`` before (``calibration_s``); compare figures only when it agrees within about 10 %.

The workload is deterministic (seeded): an integer sort, an Arrow take through a random permutation, a string
sort, and zstd, on fresh arrays of tens of megabytes each time (page faults are part of what a fold pays).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROWS = 2_000_000


def _workload(rows: int) -> None:
    rng = np.random.default_rng(20261203)
    values = rng.integers(0, 1 << 40, rows)
    np.sort(values)
    pa.array(values).take(pa.array(rng.permutation(rows)))
    words = pa.array(np.char.mod("s%d", values[: rows // 4]).astype(object))
    pc.sort_indices(words)
    pa.compress(values.tobytes(), codec="zstd", asbytes=True)


def calibrate(repeats: int = 5, rows: int = ROWS) -> dict[str, object]:
    """Time the workload ``repeats`` times; ``calibration_s`` is the median (0.5-0.7 s on the 2-core machine, quiet).

    Returns:
        ``{"calibration_s": median seconds, "runs_s": each run's seconds, "rows": rows}``.
    """
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        _workload(rows)
        runs.append(round(time.perf_counter() - started, 3))
    return {"calibration_s": statistics.median(runs), "runs_s": runs, "rows": rows}
