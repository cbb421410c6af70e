"""Settings: the one place Ballotstream reads its environment.

Every setting is a ``BALLOTSTREAM_*`` environment variable with a default pointing at the local services that
``make up`` starts. ``Settings.from_env()`` reads them once, validates them eagerly and refuses any unknown
``BALLOTSTREAM_*`` variable, so a typo fails loudly instead of silently using a default. Pointing Ballotstream at
AWS S3 or a remote Kafka cluster is a matter of these variables only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlparse

from pipelines.errors import ConfigError

PREFIX = "BALLOTSTREAM_"
# Read by infra/ (the local services), not by the pipelines; accepted here so they are not "unknown".
INFRA_VARIABLES = ("BALLOTSTREAM_STATE_DIR", "BALLOTSTREAM_REGISTRY_JAVA")

# Relative tolerance of the gate's reported-vs-computed comparison (national_summary), declared once: the
# setting's default, and the gate's default for callers without settings. Qualifiers on reported figures
# (MORE_THAN, ALMOST, ABOUT) relax it in the direction they allow (pipelines.gate.frames).
DEFAULT_GATE_TOLERANCE = 0.001

# Gate rules whose failures may withhold the failing tallies instead of blocking the release
# (BALLOTSTREAM_GATE_WITHHOLD): the per-tally rules of station_turnout, station_results and contest_results (station
# level), whose failing rows each name one tally (election_id, contest_id, station_id). Declared here because
# settings sit below the gate in the import layers; pipelines.gate.checks refuses to load if one is not a rule.
WITHHOLDABLE_RULES: frozenset[str] = frozenset({
    "station_turnout.counts_non_negative", "station_turnout.cast_le_registered",
    "station_turnout.valid_plus_invalid_eq_cast", "station_turnout.turnout_in_range",
    "station_turnout.status_in_vocabulary", "station_turnout.votes_le_cast_times_allowed",
    "station_turnout.station_id_resolves", "station_turnout.municipality_id_resolves",
    "station_results.key_unique", "station_results.counts_non_negative", "station_results.votes_sum_eq_valid",
    "station_results.candidate_id_resolves", "station_results.station_id_resolves",
    "contest_results.counts_non_negative", "contest_results.selection_declared",
    "contest_results.methods_sum_eq_votes",
})

_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings. Field ``x`` is read from ``BALLOTSTREAM_X``; secrets have no default."""

    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_client_id: str = "ballotstream"
    # Downstream apps: the SASL/SCRAM-SHA-512 listener of the local Kafka and the read-only principal `make up`
    # provisions on it (read the public topics, consumer groups named <group prefix>*; nothing else). The
    # password's default is for the local services only.
    kafka_subscriber_bootstrap_servers: str = "127.0.0.1:19094"
    kafka_subscriber_username: str = "subscriber"
    kafka_subscriber_password: str = "ballotstream-subscriber-secret"
    kafka_subscriber_group_prefix: str = "sub-"
    registry_url: str = "http://127.0.0.1:18081/apis/ccompat/v7"
    s3_endpoint_url: str = "http://127.0.0.1:17070"
    s3_region: str = "us-east-1"
    # The publisher: writes releases, cannot delete one (an account `make up` creates, see infra/s3_access.py).
    s3_access_key_id: str = "ballotstream-publisher"
    s3_secret_access_key: str = "ballotstream-publisher-secret"
    # The S3 server's administrator (versitygw's root): `make up` provisioning and removing partial releases only.
    s3_admin_access_key_id: str = "ballotstream"
    s3_admin_secret_access_key: str = "ballotstream-local-secret"
    s3_public_base_url: str = ""
    release_bucket: str = "ballotstream-releases"
    dataset: str = "az-municipal-2025"
    gate_tolerance: float = DEFAULT_GATE_TOLERANCE
    # Gate rules (``table.rule``, comma-separated) whose failing tallies are withheld instead of blocking the
    # release; empty: every blocking rule blocks (WITHHOLDABLE_RULES lists the rules allowed).
    gate_withhold: str = ""
    # Prepended to every declared topic name: separate environments (or test runs) on one cluster.
    topic_prefix: str = ""
    # Where a run stages its Parquet before upload (local disk; one folder per dataset and snapshot).
    staging_dir: str = ".state/staging"
    # Processes that consume and decode a snapshot in parallel (1: all in the calling process).
    read_workers: int = 2
    # Most Dagster steps a publish's read is split into, one per range of partitions (each step reads its range
    # with ``read_workers`` processes and hands it on as a checkpoint segment). Steps run one after another under
    # the in-process executor, so more than 1 pays only with a multi-process or Kubernetes executor
    # (docs/deployment.md).
    read_ranges: int = 1
    # Fewer ranges when there are fewer new events than this per range: each range costs a step (a process start
    # on a multi-process executor) and leaves one more segment in the checkpoint.
    read_range_min_events: int = 100_000
    # About how many bytes of Parquet each file of a large table holds, whatever its width: a table of more than
    # twice this (by its declared width, ``tables.FILE_WIDTHS``) is published as several content-addressed files
    # (pipelines/release/parquet.py, ``chunk_bounds``), and an update uploads only the files holding its rows.
    # 250 KB: at a million stations a batch of 10,000 tallies of one region uploads 3.2 % of the release's bytes
    # (6.1 % with 1 MB files), as fast (benchmarks/README.md, session 39), and the large tables are some 830 files.
    table_file_bytes: int = 250_000
    # Replicas of each topic Ballotstream creates (1 on the single local broker; 3 on a production cluster).
    kafka_replication_factor: int = 1
    # Largest input record (a JSON line, a CSV station's rows) ingest accepts; larger ones are dead-lettered.
    # The default stays below Kafka's default 1 MiB message size with room for the dead letter's other fields.
    ingest_max_record_bytes: int = 1_000_000
    # Deepest JSON nesting ingest parses (the record types need 3); deeper lines are dead-lettered.
    ingest_max_depth: int = 32

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``BALLOTSTREAM_*`` variables.

        Raises:
            ConfigError: a variable is unknown or its value is invalid; the message names it.
        """
        env = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, raw in env.items():
            if not name.startswith(PREFIX) or name in INFRA_VARIABLES:
                continue
            key = name[len(PREFIX):].lower()
            if key not in known:
                raise ConfigError(f"unknown setting {name} (known: {', '.join(sorted(known))})")
            if known[key].type in ("float", float):
                try:
                    values[key] = float(raw)
                except ValueError:
                    raise ConfigError(f"{name}={raw!r} is not a number") from None
            elif known[key].type in ("int", int):
                try:
                    values[key] = int(raw)
                except ValueError:
                    raise ConfigError(f"{name}={raw!r} is not a whole number") from None
            else:
                values[key] = raw
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every value; raise ``ConfigError`` naming the first bad one."""
        if self.kafka_security_protocol not in _SECURITY_PROTOCOLS:
            raise ConfigError(f"{PREFIX}KAFKA_SECURITY_PROTOCOL must be one of {_SECURITY_PROTOCOLS}")
        if self.kafka_sasl_mechanism and self.kafka_sasl_mechanism not in _SASL_MECHANISMS:
            raise ConfigError(f"{PREFIX}KAFKA_SASL_MECHANISM must be one of {_SASL_MECHANISMS}")
        if self.kafka_security_protocol.startswith("SASL") and not self.kafka_sasl_mechanism:
            raise ConfigError(f"{PREFIX}KAFKA_SASL_MECHANISM is required with {self.kafka_security_protocol}")
        for key in ("kafka_bootstrap_servers", "kafka_subscriber_bootstrap_servers"):
            for server in getattr(self, key).split(","):
                host, _, port = server.strip().rpartition(":")
                if not host or not port.isdigit():
                    raise ConfigError(f"{PREFIX}{key.upper()}: {server!r} is not host:port")
        if not self.kafka_subscriber_group_prefix:
            raise ConfigError(f"{PREFIX}KAFKA_SUBSCRIBER_GROUP_PREFIX must not be empty (it would grant every group)")
        for key in ("registry_url", "s3_endpoint_url", "s3_public_base_url"):
            value = getattr(self, key)
            if value and urlparse(value).scheme not in ("http", "https"):
                raise ConfigError(f"{PREFIX}{key.upper()}={value!r} is not an http(s) URL")
        if not self.release_bucket or not self.dataset.replace("-", "").isalnum():
            raise ConfigError(f"{PREFIX}DATASET={self.dataset!r} must be letters, digits and dashes")
        if self.topic_prefix and not all(c.isalnum() or c in "._-" for c in self.topic_prefix):
            raise ConfigError(f"{PREFIX}TOPIC_PREFIX={self.topic_prefix!r} may hold only letters, digits, '.', '_', '-'")
        if not 0 <= self.gate_tolerance < 1:
            raise ConfigError(f"{PREFIX}GATE_TOLERANCE must be in [0, 1)")
        for rule in self.withheld_rules:
            if rule not in WITHHOLDABLE_RULES:
                raise ConfigError(f"{PREFIX}GATE_WITHHOLD: {rule!r} is not a gate rule that can withhold (only "
                                  f"per-tally rules can: {', '.join(sorted(WITHHOLDABLE_RULES))})")
        if not 1 <= self.read_workers <= 64:
            raise ConfigError(f"{PREFIX}READ_WORKERS must be between 1 and 64")
        if not 1 <= self.read_ranges <= 64:
            raise ConfigError(f"{PREFIX}READ_RANGES must be between 1 and 64")
        if not 1 <= self.read_range_min_events <= 1_000_000_000:
            raise ConfigError(f"{PREFIX}READ_RANGE_MIN_EVENTS must be between 1 and 1000000000")
        if not 100 <= self.table_file_bytes <= 10_000_000_000:
            raise ConfigError(f"{PREFIX}TABLE_FILE_BYTES must be between 100 and 10000000000")
        if not 1 <= self.kafka_replication_factor <= 16:
            raise ConfigError(f"{PREFIX}KAFKA_REPLICATION_FACTOR must be between 1 and 16")
        if not 1024 <= self.ingest_max_record_bytes <= 64 * 1024 * 1024:
            raise ConfigError(f"{PREFIX}INGEST_MAX_RECORD_BYTES must be between 1024 and 67108864 (64 MiB); "
                              "Kafka's topics and producer must allow messages that large")
        if not 4 <= self.ingest_max_depth <= 500:
            raise ConfigError(f"{PREFIX}INGEST_MAX_DEPTH must be between 4 and 500")

    @property
    def withheld_rules(self) -> frozenset[str]:
        """The gate rules (``table.rule``) whose failures withhold the failing tallies instead of blocking."""
        return frozenset(r.strip() for r in self.gate_withhold.split(",") if r.strip())

    def kafka_config(self) -> dict[str, Any]:
        """Connection options passed through to kafka-python clients."""
        conf: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers.split(","),
            "security_protocol": self.kafka_security_protocol,
            "client_id": self.kafka_client_id,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl_mechanism"] = self.kafka_sasl_mechanism
            conf["sasl_plain_username"] = self.kafka_sasl_username
            conf["sasl_plain_password"] = self.kafka_sasl_password
        if self.kafka_ssl_cafile:
            conf["ssl_cafile"] = self.kafka_ssl_cafile
        return conf

    def subscriber_kafka_config(self) -> dict[str, Any]:
        """kafka-python options of the read-only subscriber on the SASL/SCRAM listener (local services)."""
        return {
            "bootstrap_servers": self.kafka_subscriber_bootstrap_servers.split(","),
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": self.kafka_subscriber_username,
            "sasl_plain_password": self.kafka_subscriber_password,
            "client_id": f"{self.kafka_client_id}-subscriber",
        }

    def topic(self, name: str) -> str:
        """The live name of a declared topic (``TopicSpec.name``), with this environment's prefix."""
        return self.topic_prefix + name

    def public_url(self, key: str) -> str:
        """Anonymous download URL of an object in the release bucket (path-style)."""
        base = (self.s3_public_base_url or self.s3_endpoint_url).rstrip("/")
        return f"{base}/{self.release_bucket}/{key}"

    def documented(self) -> dict[str, str]:
        """Every setting's environment variable and default, for docs and ``ballotstream settings``."""
        secret = {"s3_secret_access_key", "s3_admin_secret_access_key", "kafka_sasl_password",
                  "kafka_subscriber_password"}
        return {
            f"{PREFIX}{f.name.upper()}": ("***" if f.name in secret else str(getattr(self, f.name)))
            for f in fields(self)
        }
