"""Run Steward's real workers in-process for a test, and drive runs to their approval."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from activities.blobs import make_offloader
from activities.llm import LLMActivities
from activities.retrieval import RetrievalActivities
from activities.tools.email import OutboxActivities
from steward.codec import keyring_from_environment
from steward.config import StewardConfig
from steward.models import ApprovalRequest, RunProgress
from workers.build import (
    Activities,
    authority,
    build_workers,
    file_activities,
    http_activities,
    mcp_activities,
    retrieval_activities,
)


def activities_for_tests(
    config: StewardConfig, *, retrieval: RetrievalActivities | None = None
) -> Activities:
    """The real activity classes, configured for tests (no paid models).

    Retrieval uses the config's store unless a test passes its own (say, one with the
    handbook ingested).
    """
    blobs = make_offloader(config.blobs, keyring_from_environment())
    return Activities(
        llm=LLMActivities(config.tiers, allow_paid=False, blobs=blobs),
        blobs=blobs,
        outbox=OutboxActivities(
            Path(config.outbox), config.sender, contacts=config.notify.contacts
        ),
        authority=authority(config),
        files=file_activities(config),
        http=http_activities(config),
        mcp=mcp_activities(config),
        retrieval=retrieval or retrieval_activities(config, environ={}),
    )


@asynccontextmanager
async def running_workers(
    client: Client,
    config: StewardConfig,
    task_queue: str,
    activities: Activities | None = None,
    **options: Any,
) -> AsyncIterator[None]:
    """Default and privileged workers on `task_queue` for the duration of the block."""
    workers = build_workers(
        client,
        activities or activities_for_tests(config),
        task_queue=task_queue,
        role="all",
        **options,
    )
    async with AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


def with_send_approval(config: StewardConfig, **approval: Any) -> StewardConfig:
    """`config` with send_email's approval rule replaced by `approval` (group, required...)."""
    data = config.model_dump()
    data["tools"]["send_email"]["approval"] = approval
    return StewardConfig.model_validate(data)


QUERY_RPC_SECONDS = 5.0
"""How long one progress query may wait for a worker before it is asked again."""


async def progress_of(handle: WorkflowHandle[Any, Any]) -> RunProgress | None:
    """The run's progress, or None when no worker answered in time.

    A query waits for a worker to take it; a worker process still starting on a loaded
    machine answers late, so the pollers ask again instead of failing on the first wait.
    """
    try:
        progress: RunProgress = await handle.query(
            "progress", result_type=RunProgress, rpc_timeout=timedelta(seconds=QUERY_RPC_SECONDS)
        )
    except RPCError as err:
        if err.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise
        return None
    return progress


async def wait_for_approval(
    handle: WorkflowHandle[Any, Any], timeout: float = 30
) -> ApprovalRequest:
    """Poll the run's progress until an approval is pending."""
    async with asyncio.timeout(timeout):
        while True:
            progress = await progress_of(handle)
            if progress is not None and progress.pending:
                return progress.pending[0]
            await asyncio.sleep(0.05)


async def wait_for_refusals(
    handle: WorkflowHandle[Any, Any], count: int, timeout: float = 10
) -> RunProgress:
    """Poll until the run has recorded `count` refused decisions."""
    async with asyncio.timeout(timeout):
        while True:
            progress = await progress_of(handle)
            if progress is not None and len(progress.refused) >= count:
                return progress
            await asyncio.sleep(0.05)


def outbox_messages(config: StewardConfig) -> list[Path]:
    """The messages tools delivered so far (approval notices left out)."""
    return [path for path in _outbox(config) if not _is_notice(path)]


def outbox_notices(config: StewardConfig) -> list[Path]:
    """The approval notices delivered so far."""
    return [path for path in _outbox(config) if _is_notice(path)]


def mail_text(path: Path) -> str:
    """A delivered message's headers and decoded body, as a person would read it."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    headers = "".join(f"{key}: {value}\n" for key, value in message.items())
    body = message.get_body()
    return headers + "\n" + (body.get_content() if body is not None else "")


def _outbox(config: StewardConfig) -> list[Path]:
    outbox = Path(config.outbox)
    return sorted(outbox.glob("*.eml")) if outbox.is_dir() else []


def _is_notice(path: Path) -> bool:
    return "\nX-Steward-Approval:" in path.read_text()
