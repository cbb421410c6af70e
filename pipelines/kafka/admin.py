"""Create the declared topics idempotently and report drift between a declaration and the live topic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from pipelines.contract.topics import ALL_TOPICS, TopicSpec
from pipelines.errors import TopicDrift
from pipelines.kafka.clients import kafka_errors
from pipelines.settings import Settings


def admin_client(settings: Settings) -> KafkaAdminClient:
    """An admin client with the settings' connection and security options.

    Raises:
        ServiceUnavailable: Kafka does not answer.
    """
    with kafka_errors(settings):
        return KafkaAdminClient(**settings.kafka_config(), request_timeout_ms=15000)


def _config_value(entry: Any) -> str | None:
    if isinstance(entry, dict):
        value = entry.get("value", entry.get("config_value"))
        return None if value is None else str(value)
    return None if entry is None else str(entry)


def live_configs(admin: KafkaAdminClient, names: Iterable[str]) -> dict[str, dict[str, str | None]]:
    """Every (non-default and default) config value of the named topics."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    result = admin.describe_configs(resources, config_filter="all")
    by_name = next(iter(result.values())) if result else {}
    return {name: {k: _config_value(v) for k, v in configs.items()} for name, configs in by_name.items()}


def ensure_topics(settings: Settings, specs: Iterable[TopicSpec] = ALL_TOPICS, *, strict: bool = True) -> list[str]:
    """Create missing topics; compare existing ones with their declaration.

    Args:
        settings: where Kafka is.
        specs: the declarations.
        strict: raise on drift (otherwise only report it).

    Returns:
        One line per topic: created, unchanged, or what drifted.

    Raises:
        TopicDrift: an existing topic's partitions or config differ from its declaration (when ``strict``).
    """
    specs = [replace(s, name=settings.topic(s.name)) for s in specs]
    admin = admin_client(settings)
    try:
        with kafka_errors(settings):
            existing = set(admin.list_topics())
            missing = [s for s in specs if s.name not in existing]
            if missing:
                admin.create_topics([
                    NewTopic(s.name, s.partitions, settings.kafka_replication_factor, topic_configs=dict(s.config))
                    for s in missing
                ])
            present = [s for s in specs if s.name in existing]
            partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([s.name for s in present])}
            configs = live_configs(admin, [s.name for s in present]) if present else {}
    finally:
        admin.close()

    lines, drift = [], []
    for spec in specs:
        if spec in missing:
            lines.append(f"topic {spec.name}: created ({spec.partitions} partitions)")
            continue
        problems = []
        if partitions.get(spec.name) != spec.partitions:
            problems.append(f"partitions {partitions.get(spec.name)} != declared {spec.partitions}")
        for key, value in spec.config.items():
            live = configs.get(spec.name, {}).get(key)
            if live != value:
                problems.append(f"{key}={live} != declared {value}")
        if problems:
            drift.append(f"topic {spec.name} drifted: {'; '.join(problems)}")
            lines.append(drift[-1])
        else:
            lines.append(f"topic {spec.name}: unchanged")
    if drift and strict:
        raise TopicDrift("\n".join(drift) + "\n(fix the declaration in pipelines/contract/topics.py or the live topic)")
    return lines


def delete_topics(settings: Settings, specs: Iterable[TopicSpec] = ALL_TOPICS) -> None:
    """Delete the declared topics under this environment's prefix (benchmarks and tests clean up with it)."""
    admin = admin_client(settings)
    try:
        with kafka_errors(settings):
            admin.delete_topics([settings.topic(s.name) for s in specs])
    finally:
        admin.close()
