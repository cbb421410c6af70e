"""Asset keys, check names and the job name, declared once."""

from __future__ import annotations

import dagster as dg

from pipelines.fold.tables import TABLE_NAMES

GROUP = "ballotstream"
STAGED = dg.AssetKey([GROUP, "staged_snapshot"])
RELEASE = dg.AssetKey([GROUP, "release"])
TABLES: dict[str, dg.AssetKey] = {name: dg.AssetKey([GROUP, name]) for name in TABLE_NAMES}
PUBLISH_JOB = "publish"


def gate_check_name(table: str) -> str:
    """The blocking Great Expectations check of one table."""
    return f"gx_gate_{table}"
