"""What a release writes beside its tables, as the release store takes it: bytes as given, or a document of gzip
members published one object per member. Apart from the store so that the NIST documents' build (``cdf_ahead``, a
process of its own) does not import the S3 client: 0.1 s and 15 MB more in every build.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Blob:
    """A document written as given, not encoded as JSON by the store (a compressed export). With ``members`` (the
    sizes of the gzip members ``body`` is, in order) it is published as its parts: one content-addressed object
    per member, so that a document whose few members changed uploads those only. Joined in order, the parts are
    the document (a gzip file may be several members, RFC 1952, 2.2)."""

    body: bytes
    content_type: str
    members: tuple[int, ...] = ()

    def parts(self) -> list[memoryview]:
        """The body cut at its members' ends (views, not copies); the whole body as one part without
        ``members``."""
        view, out, at = memoryview(self.body), [], 0
        for size in self.members or (len(self.body),):
            out.append(view[at:at + size])
            at += size
        if at != len(self.body):
            raise ValueError(f"members of {sum(self.members):,} bytes in a body of {len(self.body):,}")
        return out


def parts_of(blob: Blob) -> list[dict[str, Any]]:
    """Each part's ``{sha256, bytes}``, in order: what a manifest lists of the document (with each part's key
    and URL, which the store knows)."""
    return [{"sha256": hashlib.sha256(part).hexdigest(), "bytes": len(part)} for part in blob.parts()]
