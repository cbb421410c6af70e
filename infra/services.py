"""Start, health-check, stop and report the three local services: Kafka, versitygw (S3) and Apicurio Registry.

Run from the repo root: ``python -m infra.services up|down|status``. Each service writes its pid to
``.state/run/<name>.pid`` and its output to ``.state/logs/<name>.log``; ``down`` stops exactly those pids.
``up`` is idempotent: a service that already answers is left alone, and the report says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from infra import provision
from infra.local_services import INSTALLED, LOGS, RUN, SERVICES, STATE, Service
from pipelines.errors import BallotstreamError, ServiceUnavailable
from pipelines.settings import Settings


def _pid(service: Service) -> int | None:
    try:
        pid = int(service.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _start(service: Service, settings: Settings) -> str:
    if not INSTALLED[service.name].exists():
        raise ServiceUnavailable(f"{service.name} is not installed ({INSTALLED[service.name]}): run infra/install.sh")
    proc: subprocess.Popen[bytes] | None = None
    if _pid(service) is not None:
        try:
            service.ready(settings)
            return "already running"
        except ServiceUnavailable:
            pass  # started earlier but not answering yet: wait below
    else:
        service.prepare(settings)
        RUN.mkdir(parents=True, exist_ok=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        with service.log_file.open("ab") as log:
            proc = subprocess.Popen(
                service.command(settings), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **service.env(settings)}, cwd=STATE, start_new_session=True,
            )
        service.pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + service.timeout_s
    while True:
        try:
            service.ready(settings)
            return "started"
        except ServiceUnavailable as exc:
            if (proc is not None and proc.poll() is not None) or _pid(service) is None:
                raise ServiceUnavailable(
                    f"{service.name} exited during start-up; log: {service.log_file}\n{_tail(service.log_file)}"
                ) from exc
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"{service.name} did not answer within {service.timeout_s:.0f}s ({exc}); "
                    f"log: {service.log_file}\n{_tail(service.log_file)}"
                ) from exc
            time.sleep(0.5)


def up(settings: Settings) -> list[str]:
    """Start every service that is not running, wait for each to answer, then provision buckets/topics/config."""
    report = []
    for service in SERVICES:
        outcome = _start(service, settings)
        report.append(f"{service.name:9} {outcome:16} 127.0.0.1:{service.port(settings)}  log: {service.log_file}")
    report.extend(provision.provision(settings))
    return report


def _stop(service: Service, grace_s: float = 20.0) -> str:
    pid = _pid(service)
    service.pid_file.unlink(missing_ok=True)
    if pid is None:
        return "not running"
    os.killpg(pid, signal.SIGTERM)  # the whole session: java may have forked helpers
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "stopped"
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return "killed after timeout"


def _gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie nobody reaped yet: it holds no port and no file lock)."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reaps it when this process started it (a restart by a fault test)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def kill(name: str, timeout_s: float = 30.0) -> int | None:
    """SIGKILL one service's whole process group, as a crash would, and wait until it is gone (fault tests).

    Returns:
        The pid killed, or None when the service was not running.
    """
    service = next(s for s in SERVICES if s.name == name)
    pid = _pid(service)
    if pid is None:
        return None
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"{name} (pid {pid}) still running {timeout_s:.0f}s after SIGKILL")
        time.sleep(0.05)
    service.pid_file.unlink(missing_ok=True)
    return pid


def start(name: str, settings: Settings) -> str:
    """Start one service (again) and wait until it answers: ``started`` or ``already running``."""
    return _start(next(s for s in SERVICES if s.name == name), settings)


def down() -> list[str]:
    """Stop exactly the processes ``up`` started (by pid file), newest first."""
    return [f"{s.name:9} {_stop(s)}" for s in reversed(SERVICES)]


def status(settings: Settings) -> list[str]:
    """One line per service: pid, port and whether it answers a real request."""
    lines = []
    for service in SERVICES:
        pid = _pid(service)
        if pid is None:
            state = "stopped"
        else:
            try:
                service.ready(settings)
                state = f"running (pid {pid})"
            except ServiceUnavailable as exc:
                state = f"not answering (pid {pid}): {exc}"
        lines.append(f"{service.name:9} 127.0.0.1:{service.port(settings):<6} {state}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.services", description=__doc__)
    # provision: bucket, topics and registry config only, for services started elsewhere (docker compose).
    parser.add_argument("action", choices=("up", "down", "status", "provision"))
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.action == "up":
            lines = up(settings)
        elif args.action == "provision":
            lines = provision.provision(settings)
        elif args.action == "down":
            lines = down()
        else:
            lines = status(settings)
    except (BallotstreamError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
