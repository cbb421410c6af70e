"""Each table file's key fingerprints, kept in a local folder under the file's sha256, so that the incremental gate
tells whether a table kept in log order (events, corrections) has a key in two rows without reading every file's
keys at each publish (two million event ids read and fingerprinted: 1.2 s of a publish at a million stations).

A fingerprint (``repeats.fingerprints``) is equal for equal keys; null keys have none (the uniqueness rule leaves
them aside). So when no two of all the files' fingerprints are equal, no key is in two rows; when two are (a key
repeated, or the odd collision), the caller reads the keys and checks them exactly. A kept file is named with the
fingerprint function's version (its values on probe strings) and ends with the sha256 of its bytes: one another
version left, or a damaged one, is computed again. The publish prunes the folder as it prunes the table files it
keeps (``release.reuse.prune``: files named by a sha256 the latest release does not list go).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.fold.repeats import fingerprints

_PROBE = pa.array(["", "a", "ev-0000001", "0123456789abcdef" * 4, "ünïcödé ✓" * 3, None], pa.string())
VERSION = hashlib.sha256(fingerprints(_PROBE).tobytes()).hexdigest()[:16]
SUFFIX = ".keyprints"


def _strings(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    out = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.cast(chunk.type.value_type)
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            raise TypeError(f"fingerprints are of strings, not {chunk.type}")
        out.append(chunk)
    return out


class KeyPrints:
    """The sorted key fingerprints of table files, by sha256, kept in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def of(self, sha256: str, column: str, read: Callable[[], pa.Array | pa.ChunkedArray]) -> np.ndarray:
        """The sorted fingerprints of the file ``sha256``'s ``column``: kept, or from ``read()`` (and kept).

        Raises:
            TypeError: the column is not of strings.
        """
        path = self.folder / f"{sha256}.{column}.{VERSION}{SUFFIX}"
        try:
            data = path.read_bytes()
            body, digest = data[:-32], data[-32:]
            if len(body) % 8 == 0 and hashlib.sha256(body).digest() == digest:
                return np.frombuffer(body, np.uint64)
        except OSError:
            pass
        # Null keys aside, as the uniqueness rule counts them.
        chunks = [c.filter(c.is_valid()) if c.null_count else c for c in _strings(read())]
        prints = np.sort(np.concatenate([fingerprints(c) for c in chunks]) if chunks else np.zeros(0, np.uint64))
        body = prints.astype(np.uint64).tobytes()
        partial = self.folder / f".{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(body + hashlib.sha256(body).digest())
            partial.replace(path)  # whole or not at all: another gate may read it meanwhile
        except OSError:
            partial.unlink(missing_ok=True)  # not kept: computed again next time
        return prints


def all_distinct(prints: list[np.ndarray]) -> bool:
    """Whether no two of the fingerprints are equal (then no two of the keys are)."""
    merged = np.sort(np.concatenate(prints)) if prints else np.zeros(0, np.uint64)
    return not bool((merged[1:] == merged[:-1]).any())

