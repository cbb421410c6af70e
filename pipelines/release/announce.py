"""Announce published releases on the compacted releases topic: exactly one ``ReleasePublished`` per release.

Subscribers (``ballotstream subscribe releases``, examples/release_downloader.py) learn of new releases from it;
compaction keeps the newest announcement per dataset.

Exactly once, also when a publisher dies between switching ``latest.json`` and Kafka's ack:

* after Kafka acknowledged a release's announcement, ``announced.json`` is written into its release folder
  (``ReleaseStore.mark_announced``); a published release without it is *pending*;
* every publish, and ``ballotstream announce --repair``, announces the pending releases of the dataset, oldest
  first (so the newest release stays the last, compaction-surviving record of the key), before anything newer;
* two live runs never announce one release twice: a run first claims it (``announce-claim.json``, written with
  ``If-None-Match: *``) and a publish skips releases another run claimed; ``--repair`` takes over claims older
  than ``--stale-after`` (the claimer died: run it with ``0s`` only when no publisher is running);
* a publisher can die after the ack but before the marker: so before announcing, the releases topic is read
  from the beginning and a pending release already on it only gets its marker. Its record cannot have been
  compacted away, because compaction drops a record only once a newer record with the same key (dataset)
  exists, and every newer announcement is made by a run that first marked this one (or, with concurrent
  publishers, by one that saw it claimed: then a compacted topic may keep that newer release's record, not this
  one's, and the marker stays missing until a repair finds it on the topic or announces it).

A publish looks only at the releases after the newest announced one, and reads the topic only after that one's
announcement (its marker says where): a few S3 reads however many releases came before, where reading every
release's marker and the whole topic cost two S3 reads per release on each publish of election night. Nothing
older can be pending for a publish: a run marks a release only once every older one is marked or claimed, and a
publish never takes over a claim. What a publish claims nobody claimed before, so nobody announced it (the read
after the marker stays as a safety net). ``announce --repair``, which takes claims over, still looks at every
release and reads the topic from the beginning.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipelines.contract import topics
from pipelines.contract.record_types import derive_event_id
from pipelines.kafka.clients import kafka_errors, producer
from pipelines.kafka.serde import serializer
from pipelines.kafka.subscribe import subscribe
from pipelines.release.store import ReleaseStore
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


def announced_on_topic(settings: Settings, dataset: str, start: dict[int, int] | None = None
                       ) -> dict[str, dict[str, Any]]:
    """Release id -> ``{"topic", "partition", "offset"}`` of every announcement of ``dataset`` on the topic now
    (from ``start``'s offsets, per partition number, instead of the beginning when given)."""
    found: dict[str, dict[str, Any]] = {}
    events = subscribe(settings, topics.RELEASES.name, from_beginning=True, start=start)
    try:
        for event in events:
            value = event["value"]
            if event["record_type"] == RECORD_TYPE and value and value.get("dataset") == dataset:
                found.setdefault(value["release_id"],
                                 {k: event[k] for k in ("topic", "partition", "offset")})
    finally:
        events.close()
    return found


def pending_releases(store: ReleaseStore) -> list[dict[str, Any]]:
    """Manifests of published releases (the chain from ``latest.json``) not marked announced, oldest first."""
    return [m for m in reversed(store.published_manifests()) if not store.announced(m["release_id"])]


def pending_since_announced(store: ReleaseStore) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Manifests of the published releases after the newest one marked announced, oldest first, and that one's
    marker (None when no release of the chain is marked)."""
    latest, _ = store.latest()
    newer: list[dict[str, Any]] = []
    release_id = latest["release_id"] if latest else None
    while release_id:
        marker, _ = store.get_json(store.announced_key(release_id))
        if marker is not None:
            return newer[::-1], marker
        manifest = store.manifest(release_id)
        if manifest is None:
            break
        newer.append(manifest)
        release_id = manifest.get("previous_release")
    return newer[::-1], None


def _after(settings: Settings, marker: dict[str, Any] | None) -> dict[int, int] | None:
    """Where to read the topic from: just after the marked announcement; None (the beginning) without one, or
    when the marker names another topic."""
    if (marker is None or marker.get("topic") != settings.topic(topics.RELEASES.name)
            or not isinstance(marker.get("partition"), int) or not isinstance(marker.get("offset"), int)):
        return None
    return {marker["partition"]: marker["offset"] + 1}


def announce_pending(settings: Settings, store: ReleaseStore, *, takeover_after_s: float | None = None
                     ) -> list[tuple[str, str]]:
    """Announce every pending release exactly once (see the module's doc), oldest first.

    Args:
        takeover_after_s: take over other runs' claims older than this (repair: every published release is
            looked at); None: skip claimed releases, and look only after the newest announced release.

    Returns:
        ``(release_id, "announced" | "already on the topic" | "claimed by another run")`` per pending release.

    Raises:
        ServiceUnavailable: Kafka or S3 did not answer; what was done so far stays marked.
    """
    if takeover_after_s is None:
        pending, marker = pending_since_announced(store)
        start = _after(settings, marker)
    else:
        pending, start = pending_releases(store), None
    claimed = [m for m in pending
               if store.claim_announcement(m["release_id"], takeover_after_s=takeover_after_s)]
    done = [(m["release_id"], "claimed by another run") for m in pending if m not in claimed]
    if not claimed:
        return done
    # Read after claiming: an announcement acked before a claimer died is on the topic by now.
    on_topic = announced_on_topic(settings, store.dataset, start)
    for manifest in claimed:
        release_id = manifest["release_id"]
        position = on_topic.get(release_id)
        outcome = "already on the topic"
        if position is None:
            position = announce_release(settings, release_published_event(manifest, store.manifest_url(release_id)))
            outcome = "announced"
        store.mark_announced(release_id, position)
        done.append((release_id, outcome))
    return done
