"""Settings isolated per test (own topics, dataset and staging folder) and the environment of a CLI run."""

from __future__ import annotations

import uuid
from pathlib import Path

from pipelines.settings import Settings


def make_isolated(settings: Settings, tmp: Path) -> Settings:
    """Settings with their own topics (a unique prefix, created empty), dataset and staging folder."""
    from dataclasses import replace

    from pipelines.kafka.admin import ensure_topics

    unique = uuid.uuid4().hex[:10]
    isolated = replace(settings, topic_prefix=f"t{unique}.", dataset=f"test-{unique}", staging_dir=str(tmp))
    ensure_topics(isolated)
    return isolated


def env_of(settings: Settings) -> dict[str, str]:
    """The environment that makes a CLI run use ``settings``' topics, dataset and staging folder."""
    return {"BALLOTSTREAM_TOPIC_PREFIX": settings.topic_prefix, "BALLOTSTREAM_DATASET": settings.dataset,
            "BALLOTSTREAM_STAGING_DIR": settings.staging_dir}
