"""Write ``<dataset>/catalog.json`` and ``<dataset>/index.html`` to the release bucket."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.errors import ServiceUnavailable
from pipelines.release.catalog.build import (
    CATALOG_FORMAT,
    DEFAULT_REPORT,
    ENTRIES_VERSION,
    build_catalog,
    reusable_entries,
)
from pipelines.release.catalog.page import render_index
from pipelines.release.s3 import JSON_TYPE, json_document
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings

CATALOG_NAME = "catalog.json"
INDEX_NAME = "index.html"
HTML_TYPE = "text/html; charset=utf-8"
# Both documents are replaced on every publish: caches must revalidate, unlike the immutable release files.
CACHE_CONTROL = "no-cache"
# What the catalog reads of the latest release's tables (``latest_tables``): a caller may read only these. The
# whole tables cost 1.2 GB at a million stations (divisions lists every station; the contest-level rows of
# contest_results keep the dictionary of every unit id), these columns 0.3 GB.
LATEST_COLUMNS: dict[str, list[str]] = {
    "station_turnout": ["station_id", "municipality_id", "registered_voters", "ballots_cast"],
    "seats": ["party_id"],
    "observations": ["category", "occurred_at"],
    "divisions": ["division_id", "name"],
    "parties": ["party_id", "name"],
    "elections": ["election_id", "name", "date"],
    "candidates": ["candidate_id", "name"],
    "contests": ["contest_id", "election_id", "name", "kind", "office"],
    "contest_selections": ["contest_id", "selection_id", "label"],
    "contest_summary": ["contest_id", "total_votes", "winners", "margin", "stations_reporting", "stations_expected"],
    "contest_results": ["contest_id", "selection_id", "level", "votes"],
}
# Object metadata of catalog.json: the ENTRIES_VERSION that built it (S3 lower-cases metadata names).
ENTRIES_METADATA = "ballotstream-catalog-entries"


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


def read_catalog(settings: Settings, s3: Any, dataset: str) -> dict[str, Any] | None:
    """``dataset``'s ``catalog.json`` as the last publish wrote it, when its releases can be reused: None when
    there is none, it is unreadable, or another format or version of the code built it.

    Raises:
        ServiceUnavailable: S3 refused or did not answer.
    """
    catalog_key, _ = catalog_keys(dataset)
    try:
        obj = s3.get_object(Bucket=settings.release_bucket, Key=catalog_key)
        if ENTRIES_VERSION is None or (obj.get("Metadata") or {}).get(ENTRIES_METADATA) != ENTRIES_VERSION:
            return None
        catalog = json.loads(obj["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise ServiceUnavailable(f"S3 at {settings.s3_endpoint_url}: {exc}") from exc
    except BotoCoreError as exc:
        raise ServiceUnavailable(f"S3 at {settings.s3_endpoint_url}: {exc}") from exc
    except ValueError:
        return None  # unreadable: the catalog is built from the manifests again
    ok = isinstance(catalog, dict) and catalog.get("format") == CATALOG_FORMAT and catalog.get("dataset") == dataset
    return catalog if ok else None


def manifests_since(store: ReleaseStore, catalog: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Manifests of the published releases ``catalog`` does not list, newest first: the chain from
    ``latest.json`` back to the newest release it lists (the whole chain when it lists none)."""
    return store.published_manifests(until=reusable_entries(catalog))


def publish_catalog(settings: Settings, s3: Any, dataset: str, manifests: list[dict[str, Any]],
                    latest_tables: dict[str, pa.Table], *, reports: dict[str, dict[str, Any]] | None = None,
                    previous: dict[str, Any] | None = None) -> list[str]:
    """Build the catalog of ``manifests`` and write ``catalog.json`` and ``index.html`` for ``dataset``.

    Args:
        settings: names the bucket (and the endpoint, for error messages).
        s3: a boto3 S3 client with write access (``pipelines.release.s3.s3_client(settings)``).
        dataset: the dataset folder.
        manifests: every published release's manifest (any order), or only those ``previous`` lacks
            (:func:`manifests_since`).
        latest_tables: the newest release's tables, for the charts.
        reports: validation reports per release id; read from the bucket when None.
        previous: the catalog the last publish wrote (:func:`read_catalog`); read from the bucket when None and
            ``reports`` is None. The releases it lists are kept from it: their reports are not read again.

    Returns:
        The keys written: ``[<dataset>/catalog.json, <dataset>/index.html]``.

    Raises:
        ServiceUnavailable: S3 refused or did not answer.
    """
    if reports is None:
        previous = read_catalog(settings, s3, dataset) if previous is None else previous
        listed = reusable_entries(previous)
        reports = _reports(settings, s3, dataset, [m for m in manifests if m["release_id"] not in listed])
    catalog = build_catalog(manifests, reports, latest_tables, previous)
    catalog_key, index_key = catalog_keys(dataset)
    documents = (
        (catalog_key, json_document(catalog, sort_keys=False), JSON_TYPE,
         {ENTRIES_METADATA: ENTRIES_VERSION} if ENTRIES_VERSION else {}),
        # The page last: it links to catalog.json, which then already exists.
        (index_key, render_index(catalog, latest_tables).encode(), HTML_TYPE, {}),
    )
    try:
        for key, body, content_type, metadata in documents:
            s3.put_object(Bucket=settings.release_bucket, Key=key, Body=body, ContentType=content_type,
                          CacheControl=CACHE_CONTROL, Metadata=metadata)
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 at {settings.s3_endpoint_url}: cannot write the catalog: {exc}") from exc
    return [key for key, *_ in documents]
