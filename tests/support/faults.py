"""Publisher fault injection against the real services: publishes run as CLI subprocesses and are killed at
chosen points; an audit then checks what a reader of the bucket and the releases topic would see."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.kafka.subscribe import subscribe
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings
from tests.support.services import env_of

ROOT = Path(__file__).resolve().parents[2]
PUBLISH = [sys.executable, "-m", "pipelines.cli", "publish", "--force"]
RUN_TIMEOUT_S = 300


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment of a CLI subprocess using ``settings``; no DAGSTER_HOME, so each run has its own ephemeral
    Dagster instance (concurrent runs do not contend for one SQLite file)."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return {**env, **env_of(settings), "PYTHONPATH": str(ROOT)}


def start_publish(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(PUBLISH, cwd=ROOT, env=cli_env(settings), stdout=out, stderr=subprocess.STDOUT)


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=cli_env(settings),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def _objects(store: ReleaseStore) -> set[str]:
    listed = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.dataset}/releases/")
    return {o["Key"] for o in listed.get("Contents", [])}


def kill_publish(settings: Settings, point: str, log: Path, *, delay_s: float = 0.0) -> str:
    """Start a publish and SIGKILL it at ``point``: ``delay`` (after ``delay_s``), ``upload`` (as soon as its first
    object is in the bucket: mid-upload) or ``switch`` (as soon as latest.json names a new release).

    Returns:
        What happened: ``killed at <point>``, or ``finished`` when the run ended before the point came.
    """
    store = ReleaseStore(settings)
    before_objects = _objects(store)
    before_latest = (store.latest()[0] or {}).get("release_id")
    proc = start_publish(settings, log)
    started = time.monotonic()
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > RUN_TIMEOUT_S:
                raise TimeoutError(f"publish still running after {RUN_TIMEOUT_S}s (log: {log})")
            hit = ((point == "delay" and elapsed >= delay_s)
                   or (point == "upload" and _objects(store) - before_objects)
                   or (point == "switch" and (store.latest()[0] or {}).get("release_id") != before_latest))
            if hit:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return f"killed at {point}"
            time.sleep(0.02 if point != "delay" else 0.05)
        return "finished"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def race(settings: Settings, n: int, logs: Path) -> list[tuple[int, str]]:
    """``n`` concurrent ``publish --force`` runs; their exit codes and output."""
    procs = [start_publish(settings, logs / f"race-{i}.log") for i in range(n)]
    out = []
    for i, proc in enumerate(procs):
        try:
            proc.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.append((proc.returncode, (logs / f"race-{i}.log").read_text(errors="replace")))
    return out


def random_point(rng: random.Random, typical_s: float) -> tuple[str, float]:
    """A kill point: mid-upload, just after the switch, or after a random delay within a typical run."""
    point = rng.choice(["delay", "delay", "upload", "switch"])
    return point, rng.uniform(0.1, 1.0) * typical_s


@dataclass
class Audit:
    """What the bucket and the releases topic show after the faults."""

    releases: int = 0
    partial: int = 0  # folders without a manifest
    partial_listed_published: int = 0
    published: int = 0
    latest_valid: bool = False
    manifests_checked: int = 0
    checksum_mismatches: list[str] = field(default_factory=list)
    announcements: Counter[str] = field(default_factory=Counter)
    missing_announcements: list[str] = field(default_factory=list)
    duplicate_announcements: list[str] = field(default_factory=list)
    unpublished_announced: list[str] = field(default_factory=list)


def _sha256_of(store: ReleaseStore, key: str) -> tuple[str, int]:
    body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    return hashlib.sha256(body).hexdigest(), len(body)


def audit(settings: Settings, *, announcements: bool = True) -> Audit:
    """Check every release folder, latest.json and (optionally) the releases topic."""
    store = ReleaseStore(settings)
    out = Audit()
    infos = store.list()
    out.releases = len(infos)
    published = {m["release_id"] for m in store.published_manifests()}
    out.published = len(published)
    for info in infos:
        manifest = store.manifest(info.release_id)
        if manifest is None:
            out.partial += 1
            out.partial_listed_published += info.status in ("latest", "published")
            continue
        out.manifests_checked += 1
        for name, entry in manifest["tables"].items():
            key = store.release_prefix(info.release_id) + entry["path"]
            if _sha256_of(store, key) != (entry["sha256"], entry["bytes"]):
                out.checksum_mismatches.append(f"{info.release_id}/{name}")
    latest, _ = store.latest()
    out.latest_valid = bool(latest and store.manifest(latest["release_id"]) is not None
                            and latest["release_id"] in published
                            and not any(m.startswith(latest["release_id"] + "/") for m in out.checksum_mismatches))
    if announcements:
        events = subscribe(settings, "releases", from_beginning=True)
        try:
            out.announcements = Counter(e["value"]["release_id"] for e in events
                                        if e["value"] and e["value"]["dataset"] == settings.dataset)
        finally:
            events.close()
        out.missing_announcements = sorted(published - set(out.announcements))
        out.duplicate_announcements = sorted(r for r, n in out.announcements.items() if n > 1)
        out.unpublished_announced = sorted(set(out.announcements) - published)
    return out
