"""Typed errors. Library code raises these; only the CLI turns them into one-line messages."""

from __future__ import annotations


class BallotstreamError(Exception):
    """Base of every error Ballotstream raises on purpose."""


class ConfigError(BallotstreamError):
    """A setting is unknown, missing or invalid; the message names the key."""


class ServiceUnavailable(BallotstreamError):
    """A service (Kafka, S3, registry) did not answer; the message names it and its address."""


class SchemaError(BallotstreamError):
    """A schema is invalid, unknown, or was refused by the registry."""


class SerializationError(BallotstreamError):
    """An event could not be encoded or decoded; the message names the topic and schema id."""

    def __init__(self, message: str, *, topic: str | None = None, schema_id: int | None = None):
        super().__init__(message)
        self.topic = topic
        self.schema_id = schema_id


class InputError(BallotstreamError):
    """A record in an input file is invalid; carries where (file, line) and which field."""

    def __init__(self, reason_code: str, reason: str, *, field: str | None = None):
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason
        self.field = field


class TopicDrift(BallotstreamError):
    """A topic exists with a configuration different from its declaration."""


class GateFailed(BallotstreamError):
    """A blocking data-quality check failed, so nothing was published; ``report`` is the gate's report."""

    def __init__(self, message: str, report: object | None = None):
        super().__init__(message)
        self.report = report


class NothingToPublish(BallotstreamError):
    """The event topics hold no events: a release would be empty (usually wrong topics or cluster)."""


class CheckError(BallotstreamError):
    """A data-quality check could not be evaluated at all (as opposed to failing)."""


class PublishConflict(BallotstreamError):
    """Another publisher switched ``latest.json`` first; ``winner`` is the release it published (None: unknown)."""

    def __init__(self, message: str, winner: str | None = None):
        super().__init__(message)
        self.winner = winner


class ChecksumMismatch(BallotstreamError):
    """The bytes uploaded for a file are not the bytes its manifest entry describes; nothing was published."""


class ReadWorkerFailed(BallotstreamError):
    """A worker process reading a snapshot died without an error of its own (killed, or out of memory)."""
