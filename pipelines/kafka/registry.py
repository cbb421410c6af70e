"""A small client for the Confluent Schema Registry REST API (served here by Apicurio under /apis/ccompat/v7).

Only what Ballotstream needs: register a schema under a subject, fetch one by id, test compatibility and set the
global compatibility level. Schemas fetched by id are cached: ids are immutable.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import requests

from pipelines.errors import SchemaError, ServiceUnavailable

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryClient:
    """Talks to a registry with the Confluent API.

    Args:
        url: base URL of the Confluent API, e.g. ``http://127.0.0.1:18081/apis/ccompat/v7``.
        timeout_s: per-request timeout.
    """

    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["Content-Type"] = _CONTENT_TYPE
        self._ids: dict[tuple[str, str], int] = {}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            resp = self._session.request(method, self.url + path, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"schema registry at {self.url} did not answer: {exc}") from exc
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("message", resp.text)
            except ValueError:
                detail = resp.text
            raise SchemaError(f"registry refused {method} {path}: HTTP {resp.status_code}: {detail}")
        return resp.json() if resp.content else None

    def subjects(self) -> list[str]:
        """All subjects (also the health check: a real request)."""
        return list(self._call("GET", "/subjects"))

    def set_compatibility(self, level: str, subject: str | None = None) -> None:
        """Set the global (or one subject's) compatibility level, e.g. ``BACKWARD``."""
        path = f"/config/{subject}" if subject else "/config"
        self._call("PUT", path, {"compatibility": level})

    def compatibility(self) -> str:
        """The global compatibility level."""
        body = self._call("GET", "/config")
        return str(body.get("compatibilityLevel") or body.get("compatibility"))

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` (Avro JSON text) under ``subject``; return its id. Idempotent.

        Raises:
            SchemaError: the registry refused it, e.g. as incompatible with the subject's latest version.
        """
        cached = self._ids.get((subject, schema))
        if cached is not None:
            return cached
        try:
            body = self._call("POST", f"/subjects/{subject}/versions", {"schema": schema, "schemaType": "AVRO"})
        except SchemaError as exc:
            raise SchemaError(f"schema for subject {subject} was refused: {exc}") from None
        schema_id = int(body["id"])
        self._ids[(subject, schema)] = schema_id
        return schema_id

    def is_compatible(self, subject: str, schema: str) -> bool:
        """Whether ``schema`` may be registered as the subject's next version."""
        body = self._call(
            "POST", f"/compatibility/subjects/{subject}/versions/latest", {"schema": schema, "schemaType": "AVRO"}
        )
        return bool(body["is_compatible"])

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        """The Avro schema (parsed JSON) registered under ``schema_id``."""
        return _schema_by_id(self, schema_id)

    def versions(self, subject: str) -> list[int]:
        return list(self._call("GET", f"/subjects/{subject}/versions"))


@lru_cache(maxsize=1024)
def _schema_by_id(client: RegistryClient, schema_id: int) -> dict[str, Any]:
    body = client._call("GET", f"/schemas/ids/{schema_id}")
    return json.loads(body["schema"])
