"""Client-side ingest: check the request, start (or join) the collection's IngestWorkflow.

One ingest per collection runs at a time: its workflow id is derived from the collection,
and starting while one runs joins it instead of starting a second. Shared by the CLI, the
demo and the tests. Paths are resolved here, on the machine that asks, because the worker
reads the files (with the embedded store, that is this machine).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from steward import queues
from steward.config import StewardConfig
from steward.models import problems
from steward.retrieval import IngestProgress, IngestRequest, IngestState
from steward.runs import RunError

INGEST_WORKFLOW = "IngestWorkflow"


def ingest_workflow_id(collection: str) -> str:
    """The id of a collection's ingest (one at a time per collection)."""
    return f"ingest-{collection}"


def ingest_request(
    config: StewardConfig, collection: str, path: str | Path | None, tags: list[str] | None = None
) -> IngestRequest:
    """The request for ingesting `path` (or the collection's configured folder)."""
    settings = config.retrieval.collections.get(collection)
    if settings is None:
        known = ", ".join(sorted(config.retrieval.collections)) or "none"
        raise RunError(
            f"unknown collection {collection!r} (declared: {known}); add it under "
            "retrieval.collections in steward.yaml"
        )
    if path is None:
        if settings.path is None:
            raise RunError(
                f"give a PATH, or set retrieval.collections.{collection}.path in steward.yaml"
            )
        path = settings.path
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise RunError(f"{path} does not exist")
    try:
        return IngestRequest(root=str(root), collection=collection, tags=tags or [])
    except ValidationError as err:
        raise RunError(f"bad ingest request: {problems(err, 'request')}") from None


async def start_ingest(
    client: Client,
    request: IngestRequest,
    *,
    task_queue: str = queues.DEFAULT,
    workflow_id: str | None = None,
) -> WorkflowHandle[object, IngestProgress]:
    """Start the ingest, or join the one already running for this collection."""
    return await client.start_workflow(
        INGEST_WORKFLOW,
        IngestState(request=request),
        id=workflow_id or ingest_workflow_id(request.collection),
        task_queue=task_queue,
        result_type=IngestProgress,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
