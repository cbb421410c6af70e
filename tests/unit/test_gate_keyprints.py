"""The key fingerprints the incremental gate keeps per table file (``pipelines.gate.keyprints``): with them,
``keys_distinct`` answers as the exact check does, reading no file whose fingerprints are kept."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.fold import tables as t
from pipelines.gate import keyprints
from pipelines.gate.incremental import TableFiles, keys_distinct
from pipelines.gate.keyprints import KeyPrints
from pipelines.release import reuse


def _files(chunks: list[list[str | None]], reads: list[int]) -> TableFiles:
    tables = [pa.table({"event_id": pa.array(c, pa.string()).dictionary_encode(), "offset": list(range(len(c)))})
              for c in chunks]
    shas = tuple(hashlib.sha256(repr(c).encode()).hexdigest() for c in chunks)

    def read(i: int, columns: list[str] | None) -> pa.Table:
        reads.append(i)
        return tables[i] if columns is None else tables[i].select(columns)

    return TableFiles(t.EVENTS, hashlib.sha256(repr(chunks).encode()).hexdigest(), shas, read)


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=8), min_size=1, max_size=5),
       ids=st.integers(0, 40))
def test_with_fingerprints_the_answer_is_the_exact_check_s(chunks, ids, tmp_path_factory) -> None:
    # Mostly distinct ids, now and then a repeat or a null.
    chunks = [[None if v is None else f"ev-{hash(v) % (ids + 1)}" if len(v) < 3 else f"{v}-{i}-{j}"
               for j, v in enumerate(c)] for i, c in enumerate(chunks)]
    exact = keys_distinct(t.EVENTS, _files(chunks, []), {})
    prints = KeyPrints(tmp_path_factory.mktemp("prints"))
    assert keys_distinct(t.EVENTS, _files(chunks, []), {}, prints) == exact
    reads: list[int] = []
    assert keys_distinct(t.EVENTS, _files(chunks, reads), {}, prints) == exact
    if exact:
        assert reads == []  # every file's fingerprints were kept: none read


def test_kept_fingerprints_are_used_and_a_damaged_file_is_computed_again(tmp_path) -> None:
    prints = KeyPrints(tmp_path)
    values = pa.array([f"ev-{i}" for i in range(1000)])
    first = prints.of("a" * 64, "event_id", lambda: values)
    assert np.all(first[1:] >= first[:-1]) and len(np.unique(first)) == 1000
    assert np.array_equal(prints.of("a" * 64, "event_id", lambda: pa.array(["other"])), first)
    kept = next(tmp_path.glob(f"*{keyprints.SUFFIX}"))
    assert keyprints.VERSION in kept.name
    kept.write_bytes(kept.read_bytes()[:-1] + b"x")
    assert len(prints.of("a" * 64, "event_id", lambda: pa.array(["other"]))) == 1
    # The publish prunes them as it prunes the table files.
    assert reuse.prune(tmp_path, {"b" * 64}) == 1 and not any(tmp_path.iterdir())


def test_a_key_not_of_strings_is_checked_exactly(tmp_path) -> None:
    tables = [pa.table({"event_id": [1, 2]}), pa.table({"event_id": [2, 3]})]
    files = TableFiles(t.EVENTS, "s", ("x" * 64, "y" * 64), lambda i, cols: tables[i])
    assert keys_distinct(t.EVENTS, files, {}, KeyPrints(tmp_path)) is False
    assert not any(tmp_path.iterdir())
