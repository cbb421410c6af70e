"""Where a dataset stands: how far its latest release is behind the event log, what that release holds, the
last publish the gate blocked since, and the units withheld from publication.

Lag is measured from the log itself: the event topics' end offsets now against the snapshot offsets in the
latest release's manifest (events behind), and the Kafka timestamp of the oldest event not yet released (seconds
behind: how long that event has been waiting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.errors import ServiceUnavailable
from pipelines.kafka import snapshot
from pipelines.kafka.timestamps import timestamps_at
from pipelines.release.pipeline import event_topic_names
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings

# Without BALLOTSTREAM_GATE_WITHHOLD nothing can be withheld: status says so rather than implying that nothing
# is withheld by choice.
WITHHOLDING = "withholding not configured"


def withholding(settings: Settings, manifest: dict[str, Any] | None) -> tuple[int, str]:
    """(tallies withheld from the latest release, what withholds them) for ``ballotstream status``."""
    if not settings.withheld_rules:
        return 0, WITHHOLDING
    held = (manifest or {}).get("withheld") or {}
    rules = held.get("rules") or {}
    detail = ", ".join(f"{r}: {n}" for r, n in sorted(rules.items())) or "none failed"
    return int(held.get("units", 0)), f"withheld by {', '.join(sorted(settings.withheld_rules))}; {detail}"


@dataclass(frozen=True)
class LastRelease:
    release_id: str
    created_at: str
    rows: int
    gate_passed: bool
    checks_passed: int
    checks: int
    url: str


@dataclass(frozen=True)
class BlockedPublish:
    """A publish the gate blocked after the latest release: its report under ``<dataset>/reports/<run id>/``."""

    run_id: str
    at: datetime
    blocking_failed: list[str]
    url: str


@dataclass(frozen=True)
class Status:
    dataset: str
    checked_at: datetime
    events_behind: int
    # Per topic-partition with events not yet released: how many.
    behind: dict[tuple[str, int], int]
    # How long the oldest unreleased event has waited (None when nothing is behind, or its time is unknown).
    seconds_behind: float | None
    oldest_unreleased_at: datetime | None
    last_release: LastRelease | None
    last_failure: BlockedPublish | None
    withheld_units: int = 0
    withholding: str = WITHHOLDING
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def released_offsets(manifest: dict[str, Any] | None) -> dict[tuple[str, int], int]:
    """The end offsets (exclusive) a release's snapshot covered, per topic-partition."""
    if manifest is None:
        return {}
    return {(p["topic"], p["partition"]): p["end_offset"] for p in manifest["snapshot"]}


def lag(now: snapshot.Snapshot, released: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """Events per partition the release lacks. A partition the release never saw counts from the log's start;
    events the log no longer holds (retention) are not counted."""
    behind = {}
    for tp, end in now.end.items():
        first = max(released.get(tp, 0), now.start[tp])
        if end > first:
            behind[tp] = end - first
    return behind


def _last_release(store: ReleaseStore, manifest: dict[str, Any] | None) -> LastRelease | None:
    if manifest is None:
        return None
    checks = manifest["gate"]["checks"]
    return LastRelease(manifest["release_id"], manifest["created_at"],
                       sum(t["rows"] for t in manifest["tables"].values()), manifest["gate"]["passed"],
                       sum(c["success"] for c in checks), len(checks), store.manifest_url(manifest["release_id"]))


def last_blocked(store: ReleaseStore, after: datetime | None) -> BlockedPublish | None:
    """The newest stored gate report (``<dataset>/reports/<run id>/validation.json``) written after ``after``."""
    prefix = f"{store.dataset}/reports/"
    newest: dict[str, Any] | None = None
    try:
        for page in store.s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/validation.json") and (newest is None
                                                                 or obj["LastModified"] > newest["LastModified"]):
                    newest = obj
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 list {prefix}: {exc}") from exc
    if newest is None or (after is not None and newest["LastModified"] <= after):
        return None
    report, _ = store.get_json(newest["Key"])
    return BlockedPublish(newest["Key"][len(prefix):].split("/", 1)[0], newest["LastModified"],
                          list((report or {}).get("blocking_failed", [])), store.url(newest["Key"]))


def status(settings: Settings, *, store: ReleaseStore | None = None, now: datetime | None = None) -> Status:
    """Lag, last release, last blocked publish and withheld units of ``settings.dataset``."""
    store = store or ReleaseStore(settings)
    latest, _ = store.latest()
    manifest = store.manifest(latest["release_id"]) if latest else None
    log = snapshot.capture(settings, event_topic_names(settings))
    behind = lag(log, released_offsets(manifest))
    first_unreleased = {tp: log.end[tp] - n for tp, n in behind.items()}
    times = timestamps_at(settings, first_unreleased, log.end)
    checked_at = now or datetime.now(UTC)
    oldest = min(times.values()) if times else None
    released_at = datetime.fromisoformat(latest["published_at"]) if latest else None
    withheld_units, withheld_by = withholding(settings, manifest)
    return Status(
        dataset=store.dataset, checked_at=checked_at, events_behind=sum(behind.values()), behind=behind,
        seconds_behind=max(0.0, (checked_at - oldest).total_seconds()) if oldest else (0.0 if not behind else None),
        oldest_unreleased_at=oldest, last_release=_last_release(store, manifest),
        last_failure=last_blocked(store, released_at), end_offsets=dict(log.end),
        withheld_units=withheld_units, withholding=withheld_by,
    )
