"""The public catalog of a dataset: ``catalog.json`` (every release, machine-readable) and ``index.html`` (the
human page with charts), both regenerated on each publish and served from the release bucket.

``build_catalog`` and ``render_index`` are pure; ``publish_catalog`` writes both documents to S3.
"""

from pipelines.release.catalog.build import CATALOG_FORMAT, build_catalog
from pipelines.release.catalog.page import render_index
from pipelines.release.catalog.upload import (
    CATALOG_NAME,
    INDEX_NAME,
    LATEST_COLUMNS,
    catalog_keys,
    manifests_since,
    publish_catalog,
    read_catalog,
)

__all__ = [
    "CATALOG_FORMAT",
    "CATALOG_NAME",
    "INDEX_NAME",
    "LATEST_COLUMNS",
    "build_catalog",
    "catalog_keys",
    "manifests_since",
    "publish_catalog",
    "read_catalog",
    "render_index",
]
