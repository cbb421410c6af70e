"""The one resource: Ballotstream's settings, read from the environment once per run and validated."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg

from pipelines.settings import Settings


class BallotstreamResource(dg.ConfigurableResource):
    """Where Kafka, the registry and S3 are (``BALLOTSTREAM_*`` variables; secrets stay in the environment).

    Non-empty fields override their variable for a run: ``dataset`` (``BALLOTSTREAM_DATASET``),
    ``topic_prefix`` (``BALLOTSTREAM_TOPIC_PREFIX``), ``staging_dir`` (``BALLOTSTREAM_STAGING_DIR``) and
    ``gate_withhold`` (``BALLOTSTREAM_GATE_WITHHOLD``: a dataset's choice of rules that withhold) and
    ``table_file_rows`` (``BALLOTSTREAM_TABLE_FILE_ROWS``, when above 0: how large tables are cut into files).
    """

    dataset: str = ""
    topic_prefix: str = ""
    staging_dir: str = ""
    gate_withhold: str = ""
    table_file_rows: int = 0

    @classmethod
    def of(cls, settings: Settings) -> BallotstreamResource:
        """The resource config that reproduces ``settings``' dataset, topics and staging folder."""
        return cls(dataset=settings.dataset, topic_prefix=settings.topic_prefix, staging_dir=settings.staging_dir,
                   gate_withhold=settings.gate_withhold, table_file_rows=settings.table_file_rows)

    def settings(self) -> Settings:
        settings = Settings.from_env()
        overrides = {k: v for k, v in (("dataset", self.dataset), ("topic_prefix", self.topic_prefix),
                                       ("staging_dir", self.staging_dir), ("gate_withhold", self.gate_withhold),
                                       ("table_file_rows", self.table_file_rows)) if v}
        if overrides:
            settings = replace(settings, **overrides)
            settings.validate()
        return settings
