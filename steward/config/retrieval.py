"""Retrieval: where vectors live, which embedding model makes them, how documents are
cut, and the collections agents may be granted.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from steward.retrieval import COLLECTION_NAME, WORDLLAMA
from steward.strict import Strict


class EmbeddingConfig(Strict):
    """The embedding model: the offline default, or a litellm model name with its dimension."""

    model: str = Field(default=WORDLLAMA, min_length=1)
    dimension: int | None = Field(default=None, gt=0, le=65536)
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the key"
    )

    @model_validator(mode="after")
    def _dimension_known(self) -> EmbeddingConfig:
        if self.model != WORDLLAMA and self.dimension is None:
            raise ValueError(f"dimension: required for {self.model!r} (e.g. 1536)")
        return self


class CollectionConfig(Strict):
    """A retrieval collection: what it holds and, optionally, the folder it is ingested from."""

    description: str = ""
    path: str | None = Field(default=None, description="default folder for `steward ingest`")


class RetrievalConfig(Strict):
    """Where vectors live (embedded Qdrant, or the server in `url_env`), how text is cut."""

    store: str = Field(
        default=".steward/qdrant", min_length=1, description="embedded Qdrant's directory"
    )
    url_env: str = Field(
        default="QDRANT_URL", description="variable that, when set, names a Qdrant server"
    )
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    chunk_tokens: int = Field(default=200, ge=32, le=2000)
    max_file_bytes: int = Field(default=20_000_000, gt=0, le=500_000_000)
    collections: dict[str, CollectionConfig] = Field(default_factory=dict)

    @field_validator("collections")
    @classmethod
    def _names(cls, value: dict[str, CollectionConfig]) -> dict[str, CollectionConfig]:
        for name in value:
            if not re.fullmatch(COLLECTION_NAME, name):
                raise ValueError(f"{name!r}: use lower-case letters, digits, - and _")
        return value
