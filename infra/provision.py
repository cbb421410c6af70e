"""Provisioning, each step idempotent: the release bucket and who may write it, the topics and who may read
them, the registry's compatibility level."""

from __future__ import annotations

from infra import kafka_access, s3_access
from infra.health import port_open
from pipelines.kafka.admin import ensure_topics
from pipelines.kafka.registry import RegistryClient
from pipelines.settings import Settings


def provision(settings: Settings) -> list[str]:
    """Bucket, publisher account and bucket policy; topics; subscriber credential and ACLs; registry config."""
    lines = s3_access.ensure_publisher(settings)
    lines.extend(ensure_topics(settings))
    lines.extend(_subscriber(settings))
    registry = RegistryClient(settings.registry_url)
    before = registry.compatibility()
    if before != "BACKWARD":
        registry.set_compatibility("BACKWARD")
    lines.append(f"registry compatibility: BACKWARD ({'unchanged' if before == 'BACKWARD' else 'set'})")
    return lines


def _subscriber(settings: Settings) -> list[str]:
    address = settings.kafka_subscriber_bootstrap_servers.split(",")[0].strip()
    if not port_open(address):
        # A broker started before the subscriber listener existed (no authorizer either): the pipeline keeps
        # working; downstream apps get no access until it is restarted with the new server.properties.
        return [f"kafka subscriber listener {address}: not open, so no subscriber access; the running broker "
                "predates it: restart Kafka (make down && make up)"]
    return kafka_access.ensure_subscriber(settings)
