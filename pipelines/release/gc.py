"""Garbage collection: partial release folders nobody references, and staging folders of runs long gone.

A publisher that dies mid-upload leaves a release folder without ``manifest.json`` (never listed as published)
and, on its machine, its staging folder. Both are removed once older than a grace period, which must exceed the
longest publish (a folder younger than that may belong to a run still uploading). A folder with a manifest is
never touched, nor any object a manifest references.

Files of split tables (``<dataset>/tables/<table>/<sha256>.parquet``) and parts of documents
(``<dataset>/parts/<sha256>.gz``) are shared by releases, so they live outside the release folders; one that no kept
manifest lists (a publish failed after uploading it) goes once older than the grace period. A publisher that
reuses such a file uploads it again rather than relying on it being there (``ReleaseStore.write_release``), which
makes it young; and each file is checked just before it is removed, so one made young since the listing stays.

Checkpoints (``pipelines.release.checkpoint``) are only ever resumed from the latest release's: the others, and
segments no kept checkpoint lists, go once older than the grace period (a younger one may be a publish's that
has not switched ``latest.json`` yet, or the base of a publish still running).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.errors import ConfigError, ServiceUnavailable
from pipelines.release.checkpoint import Checkpoint, checkpoints_prefix, segments_prefix
from pipelines.release.pipeline import staging_root
from pipelines.release.s3 import s3_client
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_grace(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``2d`` (a bare number is seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ConfigError(f"grace period {text!r}: expected a number with s, m, h or d (e.g. 1h)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


@dataclass
class Collected:
    """What one collection removed (or, in a dry run, would remove)."""

    release_folders: list[str] = field(default_factory=list)  # release ids
    objects: int = 0
    staging_folders: list[Path] = field(default_factory=list)
    kept_young: int = 0  # partial folders or staging folders within the grace period
    checkpoint_objects: int = 0  # checkpoint documents and segment files no longer needed
    shared_files: int = 0  # split-table files and document parts no kept manifest lists
    kept_young_shared_files: int = 0  # unlisted ones within the grace period


def _objects(store: ReleaseStore, prefix: str) -> list[dict]:
    try:
        pages = store.s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix)
        return [obj for page in pages for obj in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 list {prefix}: {exc}") from exc


def _delete(store: ReleaseStore, keys: list[str]) -> None:
    try:
        for key in keys:
            store.s3.delete_object(Bucket=store.bucket, Key=key)
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 delete under {store.dataset}: {exc}") from exc


def collect(settings: Settings, grace: timedelta, *, dry_run: bool = False, store: ReleaseStore | None = None
            ) -> Collected:
    """Remove partial release folders (no manifest, newest object older than ``grace``) and staging folders
    (last modified more than ``grace`` ago) of ``settings.dataset``; with ``dry_run`` only say what would go."""
    # The publisher's keys cannot delete anything in the bucket: collection runs with the administrator's.
    store = store or ReleaseStore(settings, s3=s3_client(settings, admin=True))
    out = Collected()
    cutoff = datetime.now(UTC) - grace
    latest, _ = store.latest()
    kept: list[dict | None] = []  # the manifests of the release folders kept (None: one without a manifest)
    for release_id in store.release_ids():
        prefix = store.release_prefix(release_id)
        objects = _objects(store, prefix)
        keys = [o["Key"] for o in objects]
        # A manifest makes the folder a release (published or not); latest.json naming it is checked as well, in
        # case a manifest was removed by hand.
        if prefix + "manifest.json" in keys or (latest and latest.get("release_id") == release_id):
            kept.append(store.manifest(release_id))
            continue
        if objects and max(o["LastModified"] for o in objects) > cutoff:
            out.kept_young += 1
            continue
        out.release_folders.append(release_id)
        out.objects += len(keys)
        if not dry_run:
            _delete(store, keys)
    out.checkpoint_objects = _collect_checkpoints(store, latest, cutoff, dry_run=dry_run)
    if all(m is not None for m in kept):  # a release whose files are unknown: no table file is surely unused
        out.shared_files, out.kept_young_shared_files = _collect_shared_files(
            store, [m for m in kept if m is not None], cutoff, dry_run=dry_run)
    root = staging_root(settings)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if time.time() - folder.stat().st_mtime < grace.total_seconds():
            out.kept_young += 1
            continue
        out.staging_folders.append(folder)
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)
    return out


def _collect_checkpoints(store: ReleaseStore, latest: dict | None, cutoff: datetime, *, dry_run: bool) -> int:
    """Remove checkpoint documents other than the latest release's, and segments no kept document lists, of
    those older than ``cutoff``; returns how many objects (would) go."""
    root = segments_prefix(store)
    everything = _objects(store, checkpoints_prefix(store))
    documents = [o for o in everything if not o["Key"].startswith(root)]
    segments = [o for o in everything if o["Key"].startswith(root)]
    latest_manifest = store.manifest(latest["release_id"]) if latest else None
    keep_key = (latest_manifest or {}).get("checkpoint")
    kept = [o["Key"] for o in documents if o["Key"] == keep_key or o["LastModified"] > cutoff]
    used: set[str] = set()
    for key in kept:
        try:
            used.update(s.segment_id for s in Checkpoint.from_json(store.get_json(key)[0] or {}).segments)
        except (ValueError, KeyError, TypeError):
            continue  # an unreadable document: the next publish rebuilds in full and writes a good one
    doomed = [o["Key"] for o in documents if o["Key"] not in kept]
    doomed += [o["Key"] for o in segments
               if o["Key"][len(root):].split("/", 1)[0] not in used and o["LastModified"] <= cutoff]
    if doomed and not dry_run:
        _delete(store, doomed)
    return len(doomed)


def _collect_shared_files(store: ReleaseStore, manifests: list[dict], cutoff: datetime, *, dry_run: bool
                         ) -> tuple[int, int]:
    """Remove split-table files and documents' parts none of ``manifests`` lists, of those older than ``cutoff``;
    returns how many (would) go and how many unlisted ones are kept as younger. The files are listed after the
    manifests were read: a file a manifest written since then lists was made young by its publisher first."""
    listed = {key for m in manifests for key in store.listed_keys(m)}
    shared = _objects(store, store.tables_prefix) + _objects(store, store.parts_prefix)
    unlisted = [o for o in shared if o["Key"] not in listed]
    doomed = [o["Key"] for o in unlisted if o["LastModified"] <= cutoff]
    if not dry_run:
        gone = []
        for key in doomed:
            # Checked again just before it goes: a publisher may have uploaded the same content since the listing.
            if _last_modified(store, key) <= cutoff:
                _delete(store, [key])
                gone.append(key)
        doomed = gone
    return len(doomed), len(unlisted) - len(doomed)


def _last_modified(store: ReleaseStore, key: str) -> datetime:
    """When ``key`` was last written (now, if it is gone: nothing to remove)."""
    try:
        return store.s3.head_object(Bucket=store.bucket, Key=key)["LastModified"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return datetime.now(UTC)
        raise ServiceUnavailable(f"S3 head {key}: {exc}") from exc
    except BotoCoreError as exc:
        raise ServiceUnavailable(f"S3 head {key}: {exc}") from exc
