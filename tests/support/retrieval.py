"""Retrieval helpers for tests: run an ingest to its end, a small deterministic embedder."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence

from temporalio.client import Client

from steward.ingest import start_ingest
from steward.retrieval import IngestProgress, IngestRequest


async def ingest(
    client: Client, request: IngestRequest, task_queue: str, workflow_id: str | None = None
) -> IngestProgress:
    """Run an IngestWorkflow on `task_queue` (workers must be running) and return its result."""
    handle = await start_ingest(
        client,
        request,
        task_queue=task_queue,
        workflow_id=workflow_id or f"ingest-test-{uuid.uuid4().hex[:10]}",
    )
    return await handle.result()


class HashEmbedder:
    """A tiny embedder of another name and dimension, to test model mismatches."""

    def __init__(self, name: str = "test/hash-8", dimension: int = 8) -> None:
        self.name = name
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            raw = [b - 127.5 for b in digest[: self.dimension]]
            norm = math.sqrt(sum(x * x for x in raw)) or 1.0
            vectors.append([x / norm for x in raw])
        return vectors
