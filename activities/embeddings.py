"""Embedding models: the offline default shipped in a wheel, or a provider through litellm.

The default is WordLlama's `l2_supercat` (256 dimensions): its weights and tokenizer ship
inside the `wordllama` wheel, it needs numpy and tokenizers but no torch, and it embeds
about 30,000 short passages a second on one core. It is a static (pooled token) model, so
it ranks less finely than a transformer; retrieval adds a keyword (sparse) vector to make
up for it, and a provider model is one line of steward.yaml away.

Every embedder has a name and a dimension; a collection records both, and a query or an
ingest with another model is refused (vectors from two models are not comparable).
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from steward.retrieval import WORDLLAMA


class Embedder(Protocol):
    """Turns texts into dense vectors of a fixed dimension."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text."""
        ...


class WordLlamaEmbedder:
    """The offline default: WordLlama's weights, loaded from the installed package."""

    name = WORDLLAMA
    dimension = 256

    def __init__(self) -> None:
        import wordllama
        from wordllama import WordLlama

        # The package ships its tokenizer in a folder its own lookup does not check
        # first; pointing the cache at the package makes loading find both files there
        # and never try a download.
        self._model = WordLlama.load(
            config="l2_supercat",
            dim=self.dimension,
            cache_dir=Path(wordllama.__file__).parent,
            disable_download=True,
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Normalised vectors, so cosine similarity is a dot product."""
        if not texts:
            return []
        vectors = self._model.embed(list(texts), norm=True)
        return [[float(x) for x in row] for row in vectors]


class LiteLLMEmbedder:
    """A provider's embedding model through litellm (which Temporal, not litellm, retries)."""

    def __init__(
        self,
        model: str,
        dimension: int,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.name = model
        self.dimension = dimension
        self._options: dict[str, Any] = {"timeout": timeout_seconds, "num_retries": 0}
        if api_base:
            self._options["api_base"] = api_base
        if api_key:
            self._options["api_key"] = api_key

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """The provider's vectors, normalised; a wrong dimension is an error, not a guess."""
        import litellm

        if not texts:
            return []
        response = litellm.embedding(model=self.name, input=list(texts), **self._options)
        vectors = [_unit(list(item["embedding"])) for item in response.data]
        for vector in vectors:
            if len(vector) != self.dimension:
                raise ValueError(
                    f"{self.name} returned {len(vector)} dimensions; steward.yaml says "
                    f"{self.dimension} (retrieval.embedding.dimension)"
                )
        return vectors


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def make_embedder(
    model: str,
    dimension: int | None,
    environ: Mapping[str, str],
    *,
    api_base: str | None = None,
    api_key_env: str | None = None,
) -> Embedder:
    """The embedder steward.yaml names; its key, if any, read from `environ` here only."""
    if model == WORDLLAMA:
        return WordLlamaEmbedder()
    if dimension is None:
        raise ValueError(f"retrieval.embedding.dimension is required for {model!r}")
    key = environ.get(api_key_env) if api_key_env else None
    return LiteLLMEmbedder(model, dimension, api_base=api_base, api_key=key)


# --- keyword (sparse) vectors ------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset(
    "a an and are as at be by can do for from has have i if in is it its me my not of on or "
    "our so that the their them then there this to us was we were what when which will with "
    "you your".split()
)


def keyword_vector(text: str) -> tuple[list[int], list[float]]:
    """A sparse bag of words: hashed term ids and 1 + log(term frequency).

    The collection's IDF modifier weighs rare terms up at query time, so together this is
    BM25-like keyword matching without a vocabulary to keep in sync.
    """
    counts = Counter(
        word for word in _WORD.findall(text.lower()) if word not in _STOP and len(word) > 1
    )
    ids: dict[int, float] = {}
    for word, count in counts.items():
        term = zlib.crc32(_stem(word).encode()) & 0x7FFFFFFF
        ids[term] = ids.get(term, 0.0) + 1.0 + math.log(count)
    ordered = sorted(ids)
    return ordered, [ids[i] for i in ordered]


def _stem(word: str) -> str:
    """A light suffix strip so 'refunds', 'refunded' and 'refund' match."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word
