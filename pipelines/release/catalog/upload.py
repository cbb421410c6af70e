"""Write ``<dataset>/catalog.json`` and ``<dataset>/index.html`` to the release bucket."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.errors import ServiceUnavailable
from pipelines.release.catalog.build import DEFAULT_REPORT, build_catalog
from pipelines.release.catalog.page import render_index
from pipelines.release.s3 import JSON_TYPE
from pipelines.settings import Settings

CATALOG_NAME = "catalog.json"
INDEX_NAME = "index.html"
HTML_TYPE = "text/html; charset=utf-8"
# Both documents are replaced on every publish: caches must revalidate, unlike the immutable release files.
CACHE_CONTROL = "no-cache"


def catalog_keys(dataset: str) -> tuple[str, str]:
    """The object keys of ``catalog.json`` and ``index.html`` of ``dataset``."""
    return f"{dataset}/{CATALOG_NAME}", f"{dataset}/{INDEX_NAME}"


def _reports(settings: Settings, s3: Any, dataset: str, manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each release's validation report read from the bucket; a missing one is skipped (the manifest has the
    checks)."""
    reports: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        release_id = manifest["release_id"]
        name = (manifest.get("gate") or {}).get("report") or DEFAULT_REPORT
        try:
            body = s3.get_object(Bucket=settings.release_bucket, Key=f"{dataset}/releases/{release_id}/{name}")
            reports[release_id] = json.loads(body["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise ServiceUnavailable(f"S3 at {settings.s3_endpoint_url}: {exc}") from exc
        except ValueError:
            continue  # an unreadable report: fall back to the manifest's checks rather than fail the publish
    return reports


def publish_catalog(settings: Settings, s3: Any, dataset: str, manifests: list[dict[str, Any]],
                    latest_tables: dict[str, pa.Table], *,
                    reports: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Build the catalog of ``manifests`` and write ``catalog.json`` and ``index.html`` for ``dataset``.

    Args:
        settings: names the bucket (and the endpoint, for error messages).
        s3: a boto3 S3 client with write access (``pipelines.release.s3.s3_client(settings)``).
        dataset: the dataset folder.
        manifests: every published release's manifest (any order).
        latest_tables: the newest release's tables, for the charts.
        reports: validation reports per release id; read from the bucket when None.

    Returns:
        The keys written: ``[<dataset>/catalog.json, <dataset>/index.html]``.

    Raises:
        ServiceUnavailable: S3 refused or did not answer.
    """
    if reports is None:
        reports = _reports(settings, s3, dataset, manifests)
    catalog = build_catalog(manifests, reports, latest_tables)
    catalog_key, index_key = catalog_keys(dataset)
    documents = (
        (catalog_key, json.dumps(catalog, indent=2, ensure_ascii=False).encode(), JSON_TYPE),
        # The page last: it links to catalog.json, which then already exists.
        (index_key, render_index(catalog, latest_tables).encode(), HTML_TYPE),
    )
    try:
        for key, body, content_type in documents:
            s3.put_object(Bucket=settings.release_bucket, Key=key, Body=body, ContentType=content_type,
                          CacheControl=CACHE_CONTROL)
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 at {settings.s3_endpoint_url}: cannot write the catalog: {exc}") from exc
    return [key for key, _, _ in documents]
