"""Broker fault injection against the real services: SIGKILL the Kafka broker the local services run (the one
``make up`` or the ``services`` fixture started, found by its pid file) in the middle of a CLI run, restart it,
and read back what the topics hold. Whatever happens, :func:`broker_down` leaves the broker running and healthy."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from infra import services as infra_services
from pipelines.contract.topics import DEAD_LETTER, EVENT_TOPICS
from pipelines.kafka import snapshot
from pipelines.kafka.log_record import LogRecord
from pipelines.settings import Settings
from tests.support.faults import ROOT, RUN_TIMEOUT_S, cli_env

INGEST = [sys.executable, "-m", "pipelines.cli", "ingest"]


def restart_broker(settings: Settings) -> None:
    """Start the broker if it is not running and wait until it answers a metadata request."""
    infra_services.start("kafka", settings)


@contextmanager
def broker_down(settings: Settings) -> Iterator[Callable[[], None]]:
    """Yield a ``kill()`` that SIGKILLs the broker; on leaving, the broker is started again and answers, even
    when the block failed (the suite's other tests, and other users of a shared broker, need it)."""
    try:
        yield lambda: _kill()
    finally:
        restart_broker(settings)


def _kill() -> None:
    if infra_services.kill("kafka") is None:
        raise RuntimeError("no Kafka broker of the local services is running (no live pid in its pid file)")


def end_offsets(probe: KafkaConsumer, settings: Settings, names: list[str]) -> int:
    """Records on the named topics (summed end offsets), or -1 when the broker does not answer."""
    try:
        partitions = [TopicPartition(settings.topic(n), p) for n in names
                      for p in sorted(probe.partitions_for_topic(settings.topic(n)) or ())]
        return sum(probe.end_offsets(partitions).values())
    except Exception:  # noqa: BLE001 - any failure of the probe means "not now"; the run under test decides
        return -1


def start_ingest(settings: Settings, inputs: list[Path], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*INGEST, *map(str, inputs)], cwd=ROOT, env=cli_env(settings), stdout=out,
                                stderr=subprocess.STDOUT)


def wait(proc: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    """The run's exit status and output (killed, and the test failed, when it outlives ``RUN_TIMEOUT_S``)."""
    try:
        proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, log.read_text(errors="replace")


def kill_during(settings: Settings, proc: subprocess.Popen[bytes], started: Callable[[], bool],
                rng: random.Random, *, down_s: tuple[float, float] = (0.0, 3.0)) -> str:
    """SIGKILL the broker once ``started()`` is true (polled), keep it down a random while, restart it.

    Returns:
        ``killed`` with how long the broker was down, or ``finished`` when the run ended first.
    """
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and not started():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the run never reached the kill point in {RUN_TIMEOUT_S}s")
        time.sleep(0.05)
    if proc.poll() is not None:
        return "finished"
    down = rng.uniform(*down_s)
    with broker_down(settings) as kill:
        kill()
        time.sleep(down)
    return f"killed ({down:.1f}s down)"


@dataclass
class Topics:
    """Every record on the event topics and the dead-letter topic of one isolated environment."""

    events: list[LogRecord]
    dead: list[LogRecord]


def read_topics(settings: Settings) -> Topics:
    names = [settings.topic(t.name) for t in EVENT_TOPICS]
    events = list(snapshot.read(settings, snapshot.capture(settings, names)))
    deadletter = [settings.topic(DEAD_LETTER.name)]
    return Topics(events, list(snapshot.read(settings, snapshot.capture(settings, deadletter))))


def one_error_line(output: str) -> bool:
    """A failed CLI run's output ends with one ``Error: ...`` sentence and holds no traceback."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    return bool(lines) and lines[-1].startswith("Error: ") and len(errors) == 1 and "Traceback" not in output
