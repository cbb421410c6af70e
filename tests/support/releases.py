"""Fake releases uploaded to the real S3 server, and removing a dataset afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.release.catalog import publish_catalog
from pipelines.release.s3 import s3_client
from pipelines.settings import Settings
from tests.support.catalog import fake_tables, two_releases

CONTENT_TYPES = {".parquet": "application/vnd.apache.parquet", ".json": "application/json"}


@dataclass
class Published:
    settings: Settings
    dataset: str
    manifests: list[dict[str, Any]]
    files: dict[str, bytes]

    def url(self, key: str) -> str:
        return self.settings.public_url(key)


def upload_fake_releases(settings: Settings, dataset: str) -> Published:
    """Two fake releases plus catalog.json and index.html, written with the publisher's keys."""
    s3 = s3_client(settings)
    manifests, files, reports = two_releases(dataset, settings.public_url("").rstrip("/"))
    for key, body in files.items():
        s3.put_object(Bucket=settings.release_bucket, Key=key, Body=body,
                      ContentType=CONTENT_TYPES[Path(key).suffix])
    for key in publish_catalog(settings, s3, dataset, manifests, fake_tables(), reports=reports):
        files[key] = s3.get_object(Bucket=settings.release_bucket, Key=key)["Body"].read()
    return Published(settings, dataset, manifests, files)


def delete_dataset(settings: Settings, dataset: str) -> None:
    """Remove a test's dataset with the administrator's keys (the publisher may not delete releases)."""
    from dataclasses import replace

    s3 = s3_client(replace(settings, s3_access_key_id=settings.s3_admin_access_key_id,
                           s3_secret_access_key=settings.s3_admin_secret_access_key))
    listed = s3.list_objects_v2(Bucket=settings.release_bucket, Prefix=f"{dataset}/")
    for obj in listed.get("Contents", []):
        s3.delete_object(Bucket=settings.release_bucket, Key=obj["Key"])
