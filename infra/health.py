"""Readiness checks (each a real request) and provisioning of buckets, topics and registry config."""

from __future__ import annotations

import socket

from botocore.exceptions import BotoCoreError, ClientError
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from pipelines.errors import BallotstreamError, ServiceUnavailable
from pipelines.kafka.admin import ensure_topics
from pipelines.kafka.registry import RegistryClient
from pipelines.release.s3 import ensure_bucket, s3_client
from pipelines.settings import Settings


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, int(port))) == 0


def kafka_ready(settings: Settings) -> None:
    """A metadata request answered by the broker."""
    first = settings.kafka_bootstrap_servers.split(",")[0]
    if not _port_open(first):
        raise ServiceUnavailable(f"Kafka port {first} closed")
    try:
        consumer = KafkaConsumer(**settings.kafka_config(), request_timeout_ms=5000)
        try:
            consumer.topics()
        finally:
            consumer.close()
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka metadata request failed: {exc}") from exc


def s3_ready(settings: Settings) -> None:
    """ListBuckets answered with the configured keys."""
    try:
        s3_client(settings).list_buckets()
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 ListBuckets at {settings.s3_endpoint_url} failed: {exc}") from exc


def registry_ready(settings: Settings) -> None:
    """``GET /subjects`` answered."""
    try:
        RegistryClient(settings.registry_url, timeout_s=3).subjects()
    except BallotstreamError as exc:
        raise ServiceUnavailable(str(exc)) from exc


def provision(settings: Settings) -> list[str]:
    """Buckets, topics and the registry's compatibility level, each idempotent."""
    lines = [ensure_bucket(settings)]
    lines.extend(ensure_topics(settings))
    registry = RegistryClient(settings.registry_url)
    before = registry.compatibility()
    if before != "BACKWARD":
        registry.set_compatibility("BACKWARD")
    lines.append(f"registry compatibility: BACKWARD ({'unchanged' if before == 'BACKWARD' else 'set'})")
    return lines
