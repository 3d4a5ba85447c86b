"""Retrieval fixtures: a store with the shipped handbook ingested once per session, through
the real IngestWorkflow, and real retrieval activities over any store.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.embeddings import WordLlamaEmbedder
from activities.retrieval import RetrievalActivities, VectorStore
from steward.config import load_config
from steward.retrieval import IngestRequest
from tests.conftest import REPO
from tests.support.retrieval import ingest
from tests.support.stack import activities_for_tests, running_workers

HANDBOOK = REPO / "examples" / "handbook"
HANDBOOK_FILES = 10


def retrieval_at(path: Path, **options: int) -> RetrievalActivities:
    """Real retrieval activities over an embedded store at `path`, with the default model."""
    return RetrievalActivities(VectorStore(path=path), WordLlamaEmbedder, **options)


@pytest.fixture(scope="session")
async def handbook(
    env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RetrievalActivities]:
    """The handbook, ingested into a session-wide store by a real ingest run."""
    retrieval = retrieval_at(tmp_path_factory.mktemp("handbook") / "qdrant")
    config = load_config(REPO / "examples" / "steward.yaml")
    queue = f"handbook-{uuid.uuid4().hex[:8]}"
    activities = activities_for_tests(config, retrieval=retrieval)
    async with running_workers(env.client, config, queue, activities):
        result = await ingest(
            env.client, IngestRequest(root=str(HANDBOOK), collection="handbook"), queue
        )
    assert result.files_ingested == HANDBOOK_FILES and not result.problems
    yield retrieval
    retrieval.store.close()
