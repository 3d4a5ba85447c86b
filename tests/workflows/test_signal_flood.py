"""No message can kill a run: oversized and malformed signals, sent by the megabyte to a
run that waits for its approval.

Temporal stores every signal in the run's history before the run sees it, and stops a run
whose history passes 50 MB. The run refuses each one (recorded, bounded) and continues as
new whenever its history passes its limit, carrying the waiting request; `steward status`
keeps reading it, and the approval still works: one email, once.
"""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from steward.config import StewardConfig
from steward.runs import RunError, decide, find_request, start_run, status
from tests.support.fake_model import FakeModel
from tests.support.stack import outbox_messages, running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

MB = 1_000_000


async def test_a_flood_of_oversized_signals_never_kills_the_run(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        fat_reason = {
            "request_id": request.id,
            "args_digest": request.args_digest,
            "approver": "alice",
            "approve": True,
            "reason": "x" * (19 * MB // 10),
        }
        extra_field = {**fat_reason, "reason": "", "padding": "y" * MB}
        for payload in [extra_field] * 6 + [fat_reason] * 8:
            await handle.signal("decide", payload)
            # status reads the run whatever was sent to it
            report = await status(client, handle.id)
            assert report.execution == "running", report.failure

        # every one refused, none applied; the request still waits, with its id
        async with asyncio.timeout(30):
            while True:
                try:
                    waiting = await find_request(client, request.id)
                    break
                except RunError:  # a continue-as-new in between: ask the next run
                    await asyncio.sleep(0.2)
        assert waiting.id == request.id and waiting.approved_by == []
        report = await status(client, handle.id)
        assert report.progress is not None
        assert any("malformed decision" in r.reason for r in report.progress.refused)

        await decide(client, request.id, "alice", approve=True)
        result = await handle.result()

    assert result.status == "completed"
    assert len(outbox_messages(config)) == 1
    # the chain continued as new to stay small: no run of it came near Temporal's limits
    async with asyncio.timeout(20):  # visibility is eventually consistent
        while True:
            runs = [e async for e in client.list_workflows(f"WorkflowId = '{handle.id}'")]
            if any(run.status == WorkflowExecutionStatus.COMPLETED for run in runs):
                break
            await asyncio.sleep(0.2)
    assert len(runs) >= 3
    for run in runs:
        assert run.status in (
            WorkflowExecutionStatus.COMPLETED,
            WorkflowExecutionStatus.CONTINUED_AS_NEW,
        )
        history = await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        size = sum(event.ByteSize() for event in history.events)
        assert size < 10 * MB, f"one run's history grew to {size:,} bytes"
        kinds = [event.event_type for event in history.events]
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
