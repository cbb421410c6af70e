"""The one resource: Ballotstream's settings, read from the environment once per run and validated."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg

from pipelines.settings import Settings

# The settings a run's resource config can set (its fields, named as the settings).
_OVERRIDABLE = ("dataset", "topic_prefix", "staging_dir", "gate_withhold", "table_file_bytes", "read_ranges",
                "read_range_min_events")


class BallotstreamResource(dg.ConfigurableResource):
    """Where Kafka, the registry and S3 are (``BALLOTSTREAM_*`` variables; secrets stay in the environment).

    Non-empty fields override their variable for a run: ``dataset`` (``BALLOTSTREAM_DATASET``),
    ``topic_prefix`` (``BALLOTSTREAM_TOPIC_PREFIX``), ``staging_dir`` (``BALLOTSTREAM_STAGING_DIR``) and
    ``gate_withhold`` (``BALLOTSTREAM_GATE_WITHHOLD``: a dataset's choice of rules that withhold) and
    ``table_file_bytes`` (``BALLOTSTREAM_TABLE_FILE_BYTES``, when above 0: how large tables are cut into files),
    ``read_ranges`` and ``read_range_min_events`` (``BALLOTSTREAM_READ_RANGES``, ``..._READ_RANGE_MIN_EVENTS``,
    when above 0: how many read steps).
    """

    dataset: str = ""
    topic_prefix: str = ""
    staging_dir: str = ""
    gate_withhold: str = ""
    table_file_bytes: int = 0
    read_ranges: int = 0
    read_range_min_events: int = 0

    @classmethod
    def of(cls, settings: Settings) -> BallotstreamResource:
        """The resource config that reproduces ``settings``' dataset, topics, staging folder and the rest of
        ``_OVERRIDABLE``."""
        return cls(**{k: getattr(settings, k) for k in _OVERRIDABLE})

    def settings(self) -> Settings:
        settings = Settings.from_env()
        overrides = {k: getattr(self, k) for k in _OVERRIDABLE if getattr(self, k)}
        if overrides:
            settings = replace(settings, **overrides)
            settings.validate()
        return settings
