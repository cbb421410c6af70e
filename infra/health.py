"""Readiness checks, each a real request (provisioning is in ``infra.provision``)."""

from __future__ import annotations

import socket

from botocore.exceptions import BotoCoreError, ClientError
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from pipelines.errors import BallotstreamError, ServiceUnavailable
from pipelines.kafka.registry import RegistryClient
from pipelines.release.s3 import s3_client
from pipelines.settings import Settings


def port_open(address: str) -> bool:
    """A TCP connection to ``host:port`` succeeds within a second."""
    host, _, port = address.rpartition(":")
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, int(port))) == 0


def kafka_ready(settings: Settings) -> None:
    """A metadata request answered by the broker."""
    first = settings.kafka_bootstrap_servers.split(",")[0]
    if not port_open(first):
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
    """ListBuckets answered with the administrator's keys (the publisher's account may not exist yet)."""
    from dataclasses import replace

    admin = replace(settings, s3_access_key_id=settings.s3_admin_access_key_id,
                    s3_secret_access_key=settings.s3_admin_secret_access_key)
    try:
        s3_client(admin).list_buckets()
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"S3 ListBuckets at {settings.s3_endpoint_url} failed: {exc}") from exc


def registry_ready(settings: Settings) -> None:
    """``GET /subjects`` answered."""
    try:
        RegistryClient(settings.registry_url, timeout_s=3).subjects()
    except BallotstreamError as exc:
        raise ServiceUnavailable(str(exc)) from exc
