"""Continuous publishing: check the event topics every interval and run the one publish path when their end
offsets moved past what the latest release holds (``pipeline.plan``, the rule the sensor uses too).

The publish itself is passed in (the CLI passes the Dagster job, ``dagster_project.run.run_publish``): pipelines
never runs Dagster. One line per publish or failure goes to ``echo``; a failure does not stop the watch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.errors import BallotstreamError, NothingToPublish, PublishConflict, ServiceUnavailable
from pipelines.release import pipeline
from pipelines.settings import Settings

# What a publish returns: the release's manifest, or None when it published nothing (the snapshot was unchanged).
Publish = Callable[[], dict[str, Any] | None]


@dataclass
class WatchSummary:
    checks: int = 0
    published: int = 0
    failed: int = 0


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def publish_line(manifest: dict[str, Any]) -> str:
    checks = manifest["gate"]["checks"]
    rows = sum(t["rows"] for t in manifest["tables"].values())
    return (f"{_stamp()} published release {manifest['release_id']}: {rows:,} rows, "
            f"gate {sum(c['success'] for c in checks)}/{len(checks)} checks passed")


def watch(settings: Settings, publish: Publish, *, interval_s: float, echo: Callable[[str], None],
          max_publishes: int | None = None, max_checks: int | None = None,
          sleep: Callable[[float], None] = time.sleep) -> WatchSummary:
    """Check, publish when there is something new, sleep ``interval_s``; until a bound is reached (or forever).

    A failed publish (the gate blocked, a step failed) is reported and not retried until the offsets move again:
    the same events would fail the same way. A lost publish race or an unreachable service is retried at the
    next check, which sees whether the winner's release already holds these events.
    """
    summary = WatchSummary()
    failed_snapshot: str | None = None  # fingerprint of the snapshot whose publish failed
    while True:
        summary.checks += 1
        fingerprint = None
        try:
            plan = pipeline.plan(settings)
            fingerprint = plan.snapshot.fingerprint()
            if not plan.unchanged and fingerprint != failed_snapshot:
                manifest = publish()
                if manifest is not None:
                    summary.published += 1
                    failed_snapshot = None
                    echo(publish_line(manifest))
        except NothingToPublish:
            pass  # no events yet: keep watching
        except (PublishConflict, ServiceUnavailable) as exc:
            summary.failed += 1
            echo(f"{_stamp()} publish failed (retrying at the next check): {exc}")
        except BallotstreamError as exc:
            summary.failed += 1
            failed_snapshot = fingerprint
            echo(f"{_stamp()} publish failed (waiting for new events): {exc}")
        if (max_publishes is not None and summary.published >= max_publishes) or \
                (max_checks is not None and summary.checks >= max_checks):
            return summary
        sleep(interval_s)
