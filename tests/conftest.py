"""Shared fixtures. Integration tests use the real local services; `make test` starts them, and this file
starts them too (idempotently) when pytest is run on its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.settings import Settings
from tests.support.services import make_isolated


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath) or "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def services(settings: Settings) -> Settings:
    """The three local services, up and provisioned (started here if `make up` was not run)."""
    from infra import services as infra_services

    infra_services.up(settings)
    return settings


@pytest.fixture
def unique() -> str:
    """A short unique suffix so tests sharing one Kafka/S3/registry never see each other's data."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def isolated(services: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings with this test's own topics, dataset and staging folder (topics deleted afterwards)."""
    from pipelines.kafka.admin import delete_topics

    settings = make_isolated(services, tmp_path / "staging")
    yield settings
    delete_topics(settings)
