"""The release store on S3: immutable release folders, and ``latest.json`` switched by a conditional write.

Order of writes is what makes a publish atomic for readers: data files, then ``manifest.json`` (a release
without a manifest is incomplete and never listed as published), then ``latest.json`` with ``If-Match`` on the
ETag read at the start, so of two concurrent publishers exactly one wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.errors import PublishConflict, ServiceUnavailable
from pipelines.release.parquet import StagedFile
from pipelines.release.s3 import JSON_TYPE, s3_client
from pipelines.settings import Settings

PARQUET_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """One release folder and its status: latest, published, or incomplete (no manifest)."""

    release_id: str
    status: str
    created_at: str | None
    gate_passed: bool | None
    rows: int | None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ReleaseStore:
    """Reads and writes one dataset's releases in the release bucket.

    Args:
        settings: bucket, endpoint, keys.
        s3: a boto3 S3 client (default: one built from settings).
        dataset: dataset name (default: ``settings.dataset``).
    """

    def __init__(self, settings: Settings, s3: Any = None, dataset: str | None = None):
        self.settings = settings
        self.s3 = s3 or s3_client(settings)
        self.bucket = settings.release_bucket
        self.dataset = dataset or settings.dataset

    # --- keys and URLs --------------------------------------------------------------------------------------
    def release_prefix(self, release_id: str) -> str:
        return f"{self.dataset}/releases/{release_id}/"

    @property
    def latest_key(self) -> str:
        return f"{self.dataset}/latest.json"

    def url(self, key: str) -> str:
        return self.settings.public_url(key)

    def manifest_url(self, release_id: str) -> str:
        return self.url(self.release_prefix(release_id) + "manifest.json")

    # --- reads ----------------------------------------------------------------------------------------------
    def get_json(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """An object parsed as JSON and its ETag, or (None, None) when it does not exist."""
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None, None
            raise ServiceUnavailable(f"S3 get {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"S3 get {key}: {exc}") from exc
        return json.loads(obj["Body"].read()), obj["ETag"]

    def latest(self) -> tuple[dict[str, Any] | None, str | None]:
        """``latest.json`` and its ETag (None, None before the first release)."""
        return self.get_json(self.latest_key)

    def manifest(self, release_id: str) -> dict[str, Any] | None:
        return self.get_json(self.release_prefix(release_id) + "manifest.json")[0]

    def release_ids(self) -> list[str]:
        """Every release folder, complete or not, oldest first."""
        prefix = f"{self.dataset}/releases/"
        ids: set[str] = set()
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                ids.update(p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", []))
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"S3 list {prefix}: {exc}") from exc
        return sorted(ids)

    def published_manifests(self) -> list[dict[str, Any]]:
        """Manifests of published releases, newest first: the chain of ``previous_release`` from latest."""
        latest, _ = self.latest()
        out: list[dict[str, Any]] = []
        release_id = latest["release_id"] if latest else None
        while release_id:
            manifest = self.manifest(release_id)
            if manifest is None:
                break
            out.append(manifest)
            release_id = manifest.get("previous_release")
        return out

    def list(self) -> list[ReleaseInfo]:
        """Every release folder with its status, newest first."""
        published = {m["release_id"]: m for m in self.published_manifests()}
        latest, _ = self.latest()
        infos = []
        for release_id in reversed(self.release_ids()):
            manifest = published.get(release_id) or self.manifest(release_id)
            if manifest is None:
                infos.append(ReleaseInfo(release_id, "incomplete (no manifest; never published)", None, None, None))
                continue
            if latest and release_id == latest["release_id"]:
                status = "latest"
            elif release_id in published:
                status = "published"
            else:
                status = "not published (lost a publish race)"
            rows = sum(t["rows"] for t in manifest["tables"].values())
            infos.append(ReleaseInfo(release_id, status, manifest["created_at"], manifest["gate"]["passed"], rows))
        return infos

    # --- writes ---------------------------------------------------------------------------------------------
    def put_json(self, key: str, body: dict[str, Any], **conditions: str) -> str:
        data = json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False).encode()
        try:
            return str(self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=JSON_TYPE,
                                          **conditions)["ETag"])
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise PublishConflict(f"{key} changed while publishing: another publisher won") from exc
            raise ServiceUnavailable(f"S3 put {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"S3 put {key}: {exc}") from exc

    def put_file(self, key: str, staged: StagedFile) -> None:
        try:
            # upload_file switches to multipart for large tables.
            self.s3.upload_file(str(staged.path), self.bucket, key, ExtraArgs={"ContentType": PARQUET_TYPE})
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"S3 upload {key}: {exc}") from exc

    def write_release(self, release_id: str, files: list[StagedFile], documents: dict[str, dict[str, Any]],
                      manifest: dict[str, Any]) -> None:
        """Upload data files, then the documents (datapackage, validation report), then the manifest.

        The manifest is written with ``If-None-Match: *``: a release folder is written once, never replaced.
        """
        prefix = self.release_prefix(release_id)
        for staged in files:
            self.put_file(f"{prefix}tables/{staged.table}.parquet", staged)
        for name, body in documents.items():
            self.put_json(prefix + name, body)
        self.put_json(prefix + "manifest.json", manifest, IfNoneMatch="*")

    def switch_latest(self, manifest: dict[str, Any], expected_etag: str | None) -> None:
        """Point ``latest.json`` at the release, only if nobody switched it since we read ``expected_etag``."""
        key = self.release_prefix(manifest["release_id"]) + "manifest.json"
        body = {
            "dataset": self.dataset,
            "release_id": manifest["release_id"],
            "manifest": key,
            "manifest_url": self.url(key),
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        condition = {"IfMatch": expected_etag} if expected_etag else {"IfNoneMatch": "*"}
        self.put_json(self.latest_key, body, **condition)

    def store_blocked_report(self, attempt_id: str, report: dict[str, Any]) -> str:
        """Keep the report of a publish the gate blocked; returns its URL."""
        key = f"{self.dataset}/reports/{attempt_id}/validation.json"
        self.put_json(key, report)
        return self.url(key)
