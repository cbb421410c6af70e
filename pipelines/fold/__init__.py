"""Fold the event log into current tables (plain Python + pyarrow; no Dagster)."""

from pipelines.fold.core import DATASET_METADATA_KEY, fold
from pipelines.fold.tables import KEYS, SCHEMAS, TABLE_NAMES

__all__ = ["DATASET_METADATA_KEY", "KEYS", "SCHEMAS", "TABLE_NAMES", "fold"]
