"""Shared fixtures. Integration tests use the real local services; `make test` starts them, and this file
starts them too (idempotently) when pytest is run on its own."""

from __future__ import annotations

import uuid

import pytest

from pipelines.settings import Settings


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
def isolated(services: Settings, unique: str) -> Settings:
    """Settings with this test's own topics (a unique prefix), created and empty."""
    from dataclasses import replace

    from pipelines.kafka_admin import ensure_topics

    settings = replace(services, topic_prefix=f"t{unique}.", dataset=f"test-{unique}")
    ensure_topics(settings)
    return settings
