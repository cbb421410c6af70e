"""Announce a published release on the compacted releases topic: one ``ReleasePublished`` event per release.

Subscribers (``ballotstream subscribe releases``, examples/release_downloader.py) learn of new releases from it;
compaction keeps the newest announcement per dataset.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipelines.contract import topics
from pipelines.contract.record_types import derive_event_id
from pipelines.kafka.clients import kafka_errors, producer
from pipelines.kafka.serde import serializer
from pipelines.settings import Settings

RECORD_TYPE = "ReleasePublished"
# Who the announcements come from (the Source of the ReleasePublished envelope).
PUBLISHER = {"organisation": "Ballotstream", "kind": "OTHER", "url": None}
_SEND_TIMEOUT_S = 30.0


def release_published_event(manifest: dict[str, Any], manifest_url: str, *,
                            published_at: dt.datetime | None = None) -> dict[str, Any]:
    """The ``ReleasePublished`` value announcing a release, built from its manifest.

    Args:
        manifest: the release's ``manifest.json`` (dataset, release_id, tables with rows, gate).
        manifest_url: public URL of that manifest.
        published_at: when ``latest.json`` was switched; default now.

    Returns:
        A value for the ``ReleasePublished`` schema; its ``event_id`` is derived from the content, so
        announcing one release twice gives one id.
    """
    now = dt.datetime.now(dt.UTC)
    value: dict[str, Any] = {
        "occurred_at": published_at or now,
        "recorded_at": now,
        "source": dict(PUBLISHER),
        "supersedes": None,
        "synthetic": False,
        "dataset": manifest["dataset"],
        "release_id": manifest["release_id"],
        "manifest_url": manifest_url,
        "rows": {name: int(t["rows"]) for name, t in manifest.get("tables", {}).items()},
        "gate_passed": bool((manifest.get("gate") or {}).get("passed", False)),
    }
    return {"event_id": derive_event_id(RECORD_TYPE, value), **value}


def announce_release(settings: Settings, value: dict[str, Any]) -> dict[str, Any]:
    """Produce a ``ReleasePublished`` value to the releases topic, keyed by dataset, and wait for the ack.

    Returns:
        ``{"topic", "partition", "offset"}`` of the announcement.

    Raises:
        ServiceUnavailable: Kafka did not acknowledge it.
        SerializationError: the value does not fit the schema.
    """
    live = settings.topic(topics.RELEASES.name)
    # Encoded before connecting, so a value that does not fit the schema fails without touching Kafka.
    body = serializer(settings).encode(live, RECORD_TYPE, value)
    # One small message: a dedicated idempotent acks=all producer, not the bulk-load one of ingest.
    sender = producer(settings)
    try:
        with kafka_errors(settings, doing="announcing a release"):
            meta = sender.send(live, key=str(value["dataset"]).encode(), value=body).get(timeout=_SEND_TIMEOUT_S)
    finally:
        sender.close()
    return {"topic": meta.topic, "partition": meta.partition, "offset": meta.offset}
