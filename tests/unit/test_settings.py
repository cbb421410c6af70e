"""Settings are read once, validated eagerly, and unknown keys are refused with the key's name."""

from __future__ import annotations

import pytest

from pipelines.errors import ConfigError
from pipelines.settings import Settings


def test_defaults_point_at_local_services():
    s = Settings.from_env({})
    assert s.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert s.registry_url.endswith("/apis/ccompat/v7")


def test_values_are_read_and_typed():
    s = Settings.from_env({"BALLOTSTREAM_GATE_TOLERANCE": "0.01", "BALLOTSTREAM_DATASET": "xx-test",
                           "BALLOTSTREAM_READ_WORKERS": "3", "PATH": "/bin"})
    assert s.gate_tolerance == 0.01 and s.dataset == "xx-test" and s.read_workers == 3


@pytest.mark.parametrize("env, message", [
    ({"BALLOTSTREAM_KAFKA_BOOTSTRAP": "x:1"}, "unknown setting BALLOTSTREAM_KAFKA_BOOTSTRAP"),
    ({"BALLOTSTREAM_GATE_TOLERANCE": "lots"}, "BALLOTSTREAM_GATE_TOLERANCE='lots' is not a number"),
    ({"BALLOTSTREAM_KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of"),
    ({"BALLOTSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM is required"),
    ({"BALLOTSTREAM_KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "'localhost' is not host:port"),
    ({"BALLOTSTREAM_S3_ENDPOINT_URL": "ftp://x"}, "S3_ENDPOINT_URL='ftp://x' is not an http"),
    ({"BALLOTSTREAM_DATASET": "a b"}, "DATASET='a b' must be"),
    ({"BALLOTSTREAM_READ_WORKERS": "two"}, "BALLOTSTREAM_READ_WORKERS='two' is not a whole number"),
    ({"BALLOTSTREAM_READ_WORKERS": "0"}, "READ_WORKERS must be between 1 and 64"),
    ({"BALLOTSTREAM_READ_RANGES": "65"}, "READ_RANGES must be between 1 and 64"),
    ({"BALLOTSTREAM_READ_RANGE_MIN_EVENTS": "0"}, "READ_RANGE_MIN_EVENTS must be between 1 and"),
    ({"BALLOTSTREAM_INGEST_MAX_RECORD_BYTES": "100"}, "INGEST_MAX_RECORD_BYTES must be between"),
    ({"BALLOTSTREAM_INGEST_MAX_RECORD_BYTES": "1MB"}, "INGEST_MAX_RECORD_BYTES='1MB' is not a whole number"),
    ({"BALLOTSTREAM_INGEST_MAX_DEPTH": "100000"}, "INGEST_MAX_DEPTH must be between 4 and 500"),
    ({"BALLOTSTREAM_TABLE_FILE_BYTES": "99"}, "TABLE_FILE_BYTES must be between 100 and"),
    ({"BALLOTSTREAM_TABLE_FILE_BYTES": "1MB"}, "TABLE_FILE_BYTES='1MB' is not a whole number"),
    # Files are sized by bytes now: the old rows setting is refused, not silently ignored.
    ({"BALLOTSTREAM_TABLE_FILE_ROWS": "250000"}, "unknown setting BALLOTSTREAM_TABLE_FILE_ROWS"),
])
def test_invalid_values_are_refused_naming_the_key(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_sasl_options_pass_through_to_kafka_python():
    s = Settings.from_env({"BALLOTSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                           "BALLOTSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
                           "BALLOTSTREAM_KAFKA_SASL_USERNAME": "u", "BALLOTSTREAM_KAFKA_SASL_PASSWORD": "p"})
    conf = s.kafka_config()
    assert conf["security_protocol"] == "SASL_SSL" and conf["sasl_plain_username"] == "u"


def test_gate_tolerance_default_is_declared_once_in_settings():
    import inspect

    from pipelines import gate
    from pipelines.gate import frames
    from pipelines.settings import DEFAULT_GATE_TOLERANCE

    assert Settings().gate_tolerance == Settings.from_env({}).gate_tolerance == DEFAULT_GATE_TOLERANCE
    for run in (gate.run_gate, gate.run_table_checks):
        assert inspect.signature(run).parameters["tolerance"].default == DEFAULT_GATE_TOLERANCE
    assert not hasattr(frames, "DEFAULT_TOLERANCE") and not hasattr(gate, "DEFAULT_TOLERANCE")


def test_ingest_limits_default_below_kafkas_default_message_size_and_reach_the_readers():
    from pipelines.ingest.records import DEFAULT_LIMITS, Limits

    s = Settings.from_env({"BALLOTSTREAM_INGEST_MAX_RECORD_BYTES": "5000", "BALLOTSTREAM_INGEST_MAX_DEPTH": "8"})
    assert Limits.of(s) == Limits(5000, 8)
    assert Limits.of(Settings()) == DEFAULT_LIMITS and DEFAULT_LIMITS.max_record_bytes < 1024 * 1024 - 32 * 1024
