"""What a release writes beside its tables, as the release store takes it: bytes as given, or a copy of an earlier
release's file. Apart from the store so that the NIST documents' build (``cdf_ahead``, a process of its own) does
not import the S3 client: 0.1 s and 15 MB more in every build.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Blob:
    """A document written as given, not encoded as JSON by the store (a compressed export)."""

    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Carried:
    """A document an earlier release already holds with the same bytes: copied within the bucket from that
    release's folder (``path`` in it), not uploaded again."""

    release_id: str
    path: str
