"""A release started ahead by the step that gated its snapshot, and taken by the release step of the same process.

When a run's steps share one process, the release step starts only once the gating step has recorded what it
yields: an output and a materialization for each table and an evaluation for each gate rule, about 270 Dagster
events, 1.3 s on this project's machine whatever the election's size (from the event logs' timestamps of the
test suite's publishes). The release reads none of them, only the staged files and the gate's verdict, both known
as soon as the gate has passed. So the gating step starts it in a thread (``start``) and waits until latest.json
names it (``wait_live``) before it yields them: recording them is Python work that would take the interpreter from
the release's upload half the time (at 100,000 stations, 10,000 tallies, an upload of 0.45 s took 1.17 s beside
them). Its catalog page and announcement then go on beside the recording. The release step takes its outcome
(``take``) instead of releasing; an error the release raised is raised there, where it always was. A gating step
that fails after starting one waits for it (``abandon``): the run must not end, and its staging folder go, under
a release still being written. So does the end of a run whose release step never ran (stopped between the two
steps): what the run started is not left behind in a long-running watcher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_STARTED: dict[str, tuple[Future[Any], threading.Event]] = {}


def start(key: str, release: Callable[[Callable[[], None]], Any]) -> None:
    """Run ``release`` in a thread of its own, for ``take(key)``; it is handed the function to call once
    latest.json names it (``wait_live``).

    Raises:
        ValueError: a release started under ``key`` has not been taken.
    """
    with _LOCK:
        if key in _STARTED:
            raise ValueError(f"a release started ahead under {key} was never taken")
        live = threading.Event()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="release-ahead")
        future = pool.submit(release, live.set)
        future.add_done_callback(lambda _: live.set())  # ended without going live (an error): nobody waits on
        _STARTED[key] = (future, live)
        # The thread ends with its release; Python waits for it at exit, so a release under way is finished.
        pool.shutdown(wait=False)


def wait_live(key: str) -> None:
    """Wait until the release started under ``key`` is live (latest.json names it) or has ended; at once when
    none was started."""
    with _LOCK:
        started = _STARTED.get(key)
    if started is not None:
        started[1].wait()


def take(key: str) -> Future[Any] | None:
    """The release started under ``key`` (its ``result()`` waits for it and raises what it raised), once; None
    when none was started."""
    with _LOCK:
        started = _STARTED.pop(key, None)
    return started[0] if started is not None else None


def abandon(key: str, why: str = "the step that started it failed") -> None:
    """Wait for the release started under ``key``, if any, and let it go, logging how it ended: no release step
    will take it (``why``: the step that started it failed, or the run ended without one)."""
    future = take(key)
    if future is None:
        return
    try:
        future.result()
    except Exception:  # noqa: BLE001 (the step's own error is the one that counts; this one is logged)
        log.warning("the release started ahead under %s failed (%s)", key, why, exc_info=True)
        return
    log.warning("the release started ahead under %s was published, though %s", key, why)
