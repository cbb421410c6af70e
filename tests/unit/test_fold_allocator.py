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
