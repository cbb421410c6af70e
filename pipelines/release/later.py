"""Uploads started in a thread of this process and finished, or done again, by a later step of the same run.

A publish's read step saves the events it read as a checkpoint segment and uploads it, so that a step on another
machine can fetch it. When the run's steps share one process, nothing fetches it before the release step writes
the checkpoint that names it, seconds later: the upload (0.4 s at 10,000 new tallies, 1.5 s for a full rebuild
of a million stations, on the election-night path) runs in a thread meanwhile, and the release step waits for it
(``finish``). An upload that failed is done again there, so a failure shows where it always did.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

# Uploads whose ``finish`` no step will call (a compaction's segment, a publish that failed before its release)
# would stay listed for the life of a watcher: beyond this many, the oldest finished ones are forgotten. A publish
# starts one upload per read range, far fewer than this, so an upload its own run still waits for is never one.
KEEP = 64

_LOCK = threading.Lock()
_STARTED: dict[str, Future[None]] = {}
_POOL: ThreadPoolExecutor | None = None


def start(key: str, upload: Callable[[], None]) -> None:
    """Run ``upload`` in a thread, for ``finish(key)`` to wait for."""
    global _POOL
    with _LOCK:
        if _POOL is None:
            # Not a daemon: an upload under way when the run ends is finished, not cut off.
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-later")
        _STARTED[key] = _POOL.submit(upload)
        finished = [k for k, future in _STARTED.items() if future.done()]  # oldest first: dicts keep the order
        for stale in finished[:max(0, len(_STARTED) - KEEP)]:
            del _STARTED[stale]


def finish(key: str) -> bool:
    """Wait for the upload started under ``key``: True when it succeeded, False when none was started or it
    failed (the caller uploads again)."""
    with _LOCK:
        future = _STARTED.pop(key, None)
    if future is None:
        return False
    try:
        future.result()
    except Exception:  # noqa: BLE001 (done again by the caller, whose error is the one that counts)
        log.warning("the upload of %s in the background failed; uploading it again", key, exc_info=True)
        return False
    return True
