"""The fold's allocator: the C library's, unless the user named one through Arrow's own setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.fold.allocator import POOL_ENV

# Each case runs in a fresh interpreter: the pool is process-wide, and this one's tests must not inherit a choice.
PROBE = """
import pyarrow as pa
from pipelines.fold.core import fold
from tests.support.factories import generate_election
before = pa.default_memory_pool().backend_name
tables = fold(generate_election(stations=3, candidates_per_station=2))
print(before, pa.default_memory_pool().backend_name, tables["station_results"].num_rows)
"""


def _probe(env_pool: str | None) -> list[str]:
    env = {k: val for k, val in os.environ.items() if k != POOL_ENV}
    if env_pool is not None:
        env[POOL_ENV] = env_pool
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    return out.stdout.split()


def test_a_fold_switches_arrow_to_the_c_librarys_allocator():
    before, after, rows = _probe(None)
    assert before != "system", "the wheel's default pool is the one the fold moves away from"
    assert after == "system"
    assert int(rows) > 0


@pytest.mark.parametrize("pool", ["jemalloc", "mimalloc"])
def test_a_pool_the_user_names_is_kept(pool):
    before, after, _ = _probe(pool)
    assert before == after == pool


@pytest.mark.parametrize(("pool", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_arrows_own_default_is_the_c_librarys_when_pipelines_is_imported_first(pool, expected):
    # What a Parquet dataset scan allocates from, which pyarrow's pool setting does not reach.
    env = {k: val for k, val in os.environ.items() if k != POOL_ENV}
    if pool is not None:
        env[POOL_ENV] = pool
    out = subprocess.run([sys.executable, "-c", "import pipelines, pyarrow as pa; "
                          "print(pa.default_memory_pool().backend_name)"], env=env, capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == [expected]


def _figures(script: str) -> list[int]:
    """The integers ``script`` prints, run in a fresh interpreter with Arrow's default pool setting unset."""
    env = {k: val for k, val in os.environ.items() if k != POOL_ENV}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    return [int(x) for x in out.stdout.split()]


GIVE_BACK = """
import numpy as np
import pyarrow as pa
import pipelines
from pipelines.fold.allocator import give_back, use_fold_allocator

def anon_mib():
    return next(int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("RssAnon"))

use_fold_allocator()
arrays = [pa.array(np.arange(50_000)) for _ in range(4_000)]  # 400 KB each: from glibc's heaps, not mapped apart
kept = arrays[::50]  # a few live blocks between the freed ones pin the heaps' tops
del arrays
before = anon_mib()
give_back()
print(before, anon_mib(), sum(len(a) for a in kept))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc/self/status")
def test_what_a_step_freed_goes_back_to_the_system_between_steps():
    # Freed blocks between live ones stay in glibc's heaps (its own trim only reaches a heap's top) until given
    # back: a publish held half a gigabyte of them at a million stations.
    before, after, kept = _figures(GIVE_BACK)
    assert kept == 80 * 50_000
    assert before > 1000, "the freed blocks stayed with the process"
    assert after < before / 4



KEPT_WHILE = """
import numpy as np
import pipelines
from pipelines.fold.allocator import blocks_kept_while, use_fold_allocator

def anon_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssAnon"))

def given_back_on_free():  # KiB the process lets go of as an 8 MiB array it has written is freed
    block = np.ones(1 << 20)
    held = anon_kib()
    del block
    return held - anon_kib()

use_fold_allocator()
mapped_apart = given_back_on_free()
with blocks_kept_while():
    kept = given_back_on_free()
print(mapped_apart, kept, given_back_on_free())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc/self/status")
def test_the_gate_keeps_freed_blocks_and_the_fold_threshold_comes_back_after_it():
    # A block mapped apart goes back to the system as it is freed, and the next one is faulted in afresh (the
    # gate's system time); a kept block stays for the next allocation.
    mapped_apart, kept, after = _figures(KEPT_WHILE)
    assert mapped_apart > 6 * 1024, "the fold's threshold maps an 8 MiB block apart"
    assert kept < 2 * 1024
    assert after > 6 * 1024, "after the gate, large blocks are mapped apart again"
