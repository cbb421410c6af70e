"""64-bit hashes of column values in numpy, for the content-defined file cuts (``parquet.chunk_bounds``).

Not cryptographic: a cut only needs hashes spread uniformly over the values a column holds (``chunk_bounds`` reads
each as a key in [0, 1)). Each hash depends on the value alone, never on its neighbours, the array it sits in, or
the machine (words are read little-endian).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_MULTIPLIER = np.uint64(0x9FB2_1C65_1E98_DF25)  # odd: a bijection of the state for each word
# Values hashed together: each step's temporaries stay in the CPU's cache; a million at once was slower.
_BLOCK = 1 << 15


def splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's output function of each int64 (as uint64): consecutive integers (offsets) get uniform hashes,
    as strings do from ``byte_hashes``."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def byte_hashes(values: pa.Array, rows: np.ndarray) -> np.ndarray:
    """The hash (uint64) of the bytes of ``values[rows]``, a string or binary array (small or large offsets);
    a null hashes as an empty value (callers tell nulls apart themselves).

    Each value is read 8 bytes at a time straight from the array's data buffer (unaligned loads through a
    stride-1 view, the bytes past the value's end masked off), every word folded into the state by xor and an
    odd multiply, then SplitMix64's output function spreads all of the state into every bit: ids that differ
    only in a few trailing digits (one 8-byte word of many) still get unrelated hashes. The state starts from
    the length, so values that differ only by trailing zero bytes differ.
    """
    if not (pa.types.is_string(values.type) or pa.types.is_binary(values.type)
            or pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)):
        raise TypeError(f"byte_hashes takes string or binary values, not {values.type}")
    wide = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)[
        values.offset:values.offset + len(values) + 1]
    data = buffers[2]
    size = 0 if data is None else data.size
    if size < 8:  # too short for one 8-byte load: a padded copy
        data, size = (b"" if data is None else data.to_pybytes()).ljust(8, b"\0"), 8
    words = np.ndarray((size - 7,), dtype="<u8", buffer=data, strides=(1,))
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty(len(rows), dtype=np.uint64)
    for first in range(0, len(rows), _BLOCK):
        block = rows[first:first + _BLOCK]
        starts = offsets[block].astype(np.int64)
        out[first:first + len(block)] = _fold_words(words, size - 8, starts, offsets[block + 1] - starts)
    return out


def _fold_words(words: np.ndarray, last: int, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``byte_hashes`` of the values at ``starts`` (byte positions) of ``lengths`` bytes; ``words[p]`` is the
    8 bytes from position ``p`` on, up to ``last``."""
    state = lengths.astype(np.uint64) * _MULTIPLIER
    active = np.flatnonzero(lengths > 0)
    done = 0  # bytes of each active value folded in so far
    while active.size:
        position = starts[active] + done
        remaining = lengths[active] - done
        # The last 8 bytes of the buffer, shifted, for a value ending within them: no load reads past the end.
        load = np.minimum(position, last)
        word = words[load] >> ((position - load) * 8).astype(np.uint64)
        word &= _ONES >> ((8 - np.minimum(remaining, 8)) * 8).astype(np.uint64)
        mixed = (state[active] ^ word) * _MULTIPLIER
        state[active] = mixed ^ (mixed >> np.uint64(32))
        active = active[remaining > 8]
        done += 8
    return splitmix64(state)
