"""The one resource: Ballotstream's settings, read from the environment once per run and validated."""

from __future__ import annotations

import dagster as dg

from pipelines.settings import Settings


class BallotstreamResource(dg.ConfigurableResource):
    """Where Kafka, the registry and S3 are (``BALLOTSTREAM_*`` variables; secrets stay in the environment).

    ``dataset`` overrides ``BALLOTSTREAM_DATASET`` for a run.
    """

    dataset: str = ""

    def settings(self) -> Settings:
        settings = Settings.from_env()
        if self.dataset:
            from dataclasses import replace

            settings = replace(settings, dataset=self.dataset)
            settings.validate()
        return settings
