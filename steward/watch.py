"""Follow a run's event stream from a client: what `steward watch` and `run --follow` read.

The stream lives in the workflow (`workflows.stream`). Workflow Streams' own subscriber
long-polls it with an *update*, and every update is two events in the run's history (plus
a workflow task): a few watchers of a long run would grow its history faster than the run
itself. This reader polls the stream's *query* instead, which Temporal answers without
writing anything: any number of watchers cost the run nothing. Queries go to the workflow
id, so they reach the newest run of a chain, and offsets carry across continue-as-new.

It stops after the run's `RunFinished`, or, when the run closed without one (failed,
terminated, timed out), with a `RunFinished` made from Temporal's own account of it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Final

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.contrib.workflow_streams import PollInput, PollResult
from temporalio.service import RPCError

from steward.events import RUN_EVENT, TOPIC, RunEvent, RunFinished

POLL_QUERY: Final = "__temporal_workflow_stream_poll"
"""Workflow Streams' poll, as a query: it reads the log and changes nothing."""

POLL_EVERY: Final = timedelta(milliseconds=100)
CLOSED: Final = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}


async def follow(
    client: Client,
    workflow_id: str,
    *,
    from_offset: int = 0,
    poll_every: timedelta = POLL_EVERY,
) -> AsyncIterator[RunEvent]:
    """The run's events from `from_offset` on, as they happen, until it ends."""
    handle = client.get_workflow_handle(workflow_id)
    offset = from_offset
    converter = client.data_converter.payload_converter
    closing: RunFinished | None = None
    while True:
        try:
            polled: PollResult = await handle.query(
                POLL_QUERY, PollInput(topics=[TOPIC], from_offset=offset), result_type=PollResult
            )
        except (WorkflowQueryFailedError, RPCError):
            # Not queryable now: between two runs of a chain, or closed with no worker to
            # replay it. Temporal's own record says which.
            closing = closing or await _closed(client, workflow_id)
            if closing is not None:
                yield closing
                return
            await asyncio.sleep(poll_every.total_seconds())
            continue
        for item in polled.items:
            payload = Payload()
            payload.ParseFromString(base64.b64decode(item.data))
            event: RunEvent = RUN_EVENT.validate_python(converter.from_payload(payload))
            yield event
            if isinstance(event, RunFinished):
                return
        offset = max(polled.next_offset, offset)
        if polled.more_ready:
            continue
        if not polled.items:
            if closing is not None:  # closed, and read to its end
                yield closing
                return
            # Closed since the last poll? Then one more poll reads what it published last.
            closing = await _closed(client, workflow_id)
            if closing is not None:
                continue
        await asyncio.sleep(poll_every.total_seconds())


async def _closed(client: Client, workflow_id: str) -> RunFinished | None:
    """How the run ended, if it ended without saying so on its stream; else None."""
    described = await client.get_workflow_handle(workflow_id).describe()
    status = CLOSED.get(described.status) if described.status is not None else None
    if status is None:
        return None  # running, or continued as new (the next run is being started)
    return RunFinished(status=status, answer="(the run ended without a result on its stream)")
