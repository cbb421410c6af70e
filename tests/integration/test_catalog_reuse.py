"""The catalog against the real S3 server: a publish keeps the entries of the catalog it wrote last (its version
travels as object metadata) and writes the same bytes as a catalog built from every manifest and report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.release.catalog import catalog_keys, publish_catalog
from pipelines.release.catalog.upload import read_catalog
from pipelines.release.s3 import s3_client
from pipelines.settings import Settings
from tests.support.catalog import fake_tables, two_releases
from tests.support.releases import CONTENT_TYPES, delete_dataset


def _documents(settings: Settings, s3: Any, dataset: str) -> list[bytes]:
    return [s3.get_object(Bucket=settings.release_bucket, Key=k)["Body"].read() for k in catalog_keys(dataset)]


def test_a_publish_keeps_the_last_catalogs_entries_and_writes_the_same_bytes(services, unique):
    dataset = f"test-catalog-{unique}"
    s3 = s3_client(services)
    manifests, files, reports = two_releases(dataset, services.public_url("").rstrip("/"))
    first, second = sorted(manifests, key=lambda m: m["release_id"])
    try:
        for key, body in files.items():
            s3.put_object(Bucket=services.release_bucket, Key=key, Body=body, ContentType=CONTENT_TYPES[Path(key).suffix])
        assert read_catalog(services, s3, dataset) is None
        publish_catalog(services, s3, dataset, [first], fake_tables())
        previous = read_catalog(services, s3, dataset)
        assert previous is not None and [r["release_id"] for r in previous["releases"]] == [first["release_id"]]
        # The first release's report now says otherwise: a publish that read it again would show that.
        report_key = f"{dataset}/releases/{first['release_id']}/validation.json"
        s3.put_object(Bucket=services.release_bucket, Key=report_key, ContentType=CONTENT_TYPES[".json"],
                      Body=json.dumps({**reports[first["release_id"]], "checks_run": 99}).encode())
        publish_catalog(services, s3, dataset, manifests, fake_tables(True))
        reused = _documents(services, s3, dataset)
        publish_catalog(services, s3, dataset, manifests, fake_tables(True), reports=reports)
        assert _documents(services, s3, dataset) == reused
        publish_catalog(services, s3, dataset, manifests, fake_tables(True), previous={})  # every report read
        assert json.loads(_documents(services, s3, dataset)[0])["releases"][1]["gate"]["checks_run"] == 99
    finally:
        delete_dataset(services, dataset)
