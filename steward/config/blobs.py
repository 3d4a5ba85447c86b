"""Blob storage: where text too large for history is kept (a directory, or an S3 bucket),
and from what size.
"""

from __future__ import annotations

from pydantic import Field

from steward.blobs import OFFLOAD_BYTES
from steward.strict import Strict


class S3BlobConfig(Strict):
    """An S3-compatible bucket for blobs. Credentials come from the workers' environment
    (the AWS variables or files boto3 reads), never from this file.
    """

    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="steward/blobs/", description="key prefix inside the bucket")
    endpoint_url: str | None = Field(
        default=None, description="for a store other than AWS (MinIO, Ceph, R2...)"
    )
    region: str | None = None


class BlobConfig(Strict):
    """Where large text lives instead of history, and from what size."""

    path: str = Field(
        default=".steward/blobs", min_length=1, description="local directory (the default)"
    )
    threshold_bytes: int | None = Field(
        default=OFFLOAD_BYTES,
        ge=1024,
        le=1_000_000,
        description="text over this many bytes is stored by content address; null: never",
    )
    s3: S3BlobConfig | None = Field(default=None, description="store blobs here instead of path")
