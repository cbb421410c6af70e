"""Hashes of column values for the file cuts (``pipelines.release.value_hash``): each value's hash is a function
of its bytes alone, however the array holding it is laid out (slices, large offsets, dictionary or not, a value
ending at the very end of the data buffer), so a column is cut alike whatever its layout; and sequential ids get
uniform hashes, as the cut rule's keys must be."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.fold.tables import FileWidth
from pipelines.release import parquet, value_hash

_MASK = (1 << 64) - 1
_WIDTH, _FILE_BYTES = FileWidth(run=20.0, row=2.0), 300 * 26  # about 300 runs of 3 rows per file


def _reference(value: bytes) -> int:
    """The hash as ``byte_hashes`` documents it, one byte string at a time in plain Python."""
    multiplier = int(value_hash._MULTIPLIER)
    state = len(value) * multiplier & _MASK
    for start in range(0, len(value), 8):
        mixed = (state ^ int.from_bytes(value[start:start + 8], "little")) * multiplier & _MASK
        state = mixed ^ (mixed >> 32)
    return int(value_hash.splitmix64(np.array([state], dtype=np.uint64))[0])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.binary(max_size=40), min_size=1, max_size=30), skip=st.integers(0, 5),
       kind=st.sampled_from([pa.binary(), pa.large_binary()]))
def test_each_value_hashes_as_its_bytes_say_wherever_it_sits(values, skip, kind):
    array = pa.array([b"x" * 9] * skip + values, kind).slice(skip)
    rows = np.arange(len(values))[::-1]  # any order, and each row as often as asked
    assert value_hash.byte_hashes(array, rows).tolist() == [_reference(values[i]) for i in rows]


def test_strings_hash_as_their_utf8_bytes_and_nulls_as_empty():
    words = ["", "a", "ab\0", "ab", "abcdefgh", "abcdefghi", "ocd-division/country:xx/station:0001", "Zürich"]
    hashes = value_hash.byte_hashes(pa.array([*words, None], pa.string()), np.arange(len(words) + 1))
    assert hashes.tolist() == [_reference(w.encode()) for w in [*words, ""]]
    assert len(set(hashes[:-1].tolist())) == len(words)  # a trailing zero byte, or one more byte, tells apart


def test_a_column_is_cut_alike_plain_or_encoded_in_one_chunk_or_several():
    ids = [None if i % 997 == 0 else f"station:{i // 3:05d}" for i in range(30_000)]
    plain = pa.array(ids)
    forms = {
        "plain": plain, "large": plain.cast(pa.large_string()), "dictionary": plain.dictionary_encode(),
        "chunks": pa.chunked_array([plain.slice(0, 12_345), plain.slice(12_345)]),
        "dictionary chunks": pa.chunked_array([plain.slice(0, 7_000).dictionary_encode(),
                                               plain.slice(7_000).dictionary_encode()]),
    }
    cuts = {name: parquet.chunk_bounds(pa.table({"id": column}), "id", _WIDTH, _FILE_BYTES)
            for name, column in forms.items()}
    assert len(cuts["plain"]) > 20
    assert all(c == cuts["plain"] for c in cuts.values()), cuts


def test_integers_are_cut_alike_encoded_or_not():
    offsets = pa.array(np.repeat(np.arange(20_000), 2))
    bounds = parquet.chunk_bounds(pa.table({"offset": offsets}), "offset", _WIDTH, _FILE_BYTES)
    assert len(bounds) > 20
    assert parquet.chunk_bounds(pa.table({"offset": offsets.dictionary_encode()}), "offset", _WIDTH,
                                _FILE_BYTES) == bounds


def test_the_keys_of_sequential_ids_are_uniform():
    # The cut rule reads each hash as a key in [0, 1) (its 56 bits over 2^56): 4,096 buckets of about 49 ids
    # each. A chi-square over 5 standard deviations above its mean (4,095) would mean the digits of an id reach
    # only some bits; the low bits, which no rule reads now, are held to the same.
    ids = pa.array([f"ocd-division/country:xx/constituency:{i % 90}/polling_station:{i}" for i in range(200_000)])
    hashes = parquet._hashes56(value_hash.byte_hashes(ids, np.arange(len(ids))))
    expected = len(ids) / 4096
    for buckets in (hashes >> 44, hashes & 4095):
        counts = np.bincount(buckets, minlength=4096)
        assert ((counts - expected) ** 2 / expected).sum() < 4095 + 5 * (2 * 4095) ** 0.5
