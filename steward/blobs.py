"""Content addresses for large text kept out of workflow history.

A tool output, retrieved passage or model message over the threshold is stored once in a
blob store (a local directory by default, S3-compatible when configured) under the
SHA-256 of its bytes, and history carries a `BlobRef` instead: the digest, the size and a
short preview for people reading the trace. The same text stored twice is one blob, so a
long conversation that resends its context every turn adds a reference per turn to
history, not the context again. Only activities read or write blobs; workflows pass
references around.
"""

from __future__ import annotations

import hashlib

from pydantic import Field

from steward.strict import Strict

OFFLOAD_BYTES = 16 * 1024
"""Default threshold: text larger than this (UTF-8 bytes) is stored as a blob."""

PREVIEW_CHARS = 200
"""Characters of a blob kept in history next to its reference, for the trace and the UI."""


class BlobRef(Strict):
    """Where a large text is stored: its SHA-256, size and opening words."""

    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the UTF-8 bytes")
    size: int = Field(ge=0, description="bytes")
    preview: str = Field(default="", max_length=PREVIEW_CHARS + 1)

    def placeholder(self) -> str:
        """What history shows in place of the text."""
        return f"{self.preview}… [{self.size:,} bytes stored as blob {self.digest[:12]}]"


def digest_of(data: bytes) -> str:
    """The content address of `data`."""
    return hashlib.sha256(data).hexdigest()


def preview_of(text: str) -> str:
    """The opening of `text`, on one line, cut at PREVIEW_CHARS."""
    flat = " ".join(text[: PREVIEW_CHARS * 2].split())
    return flat[:PREVIEW_CHARS]
