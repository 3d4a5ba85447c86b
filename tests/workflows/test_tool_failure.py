"""A tool that fails for good: the approved send_email cannot deliver.

The outbox here is the real activity class with delivery replaced: its first attempt fails
as a retryable error (the retry shows in history), the second as a non-retryable one. The
run records the action as failed, with the relay's reason, and ends with status `failed`
(runs recorded before that change failed as workflows: tests/histories/support-tool-
failed.json still replays that way). Either way the trace blames the tool, not the model
or the workflow. The run is recorded as tests/histories/support-send-failed.json.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.tools.email import OutboxActivities
from steward.config import StewardConfig
from steward.models import ToolInvocation, ToolResult
from steward.replay import load_history
from steward.runs import decide, start_run
from steward.trace import build_trace
from tests.support.fake_model import FakeModel
from tests.support.histories import HISTORIES, history_id, readable_history, record_history
from tests.support.stack import (
    activities_for_tests,
    outbox_messages,
    running_workers,
    wait_for_approval,
)
from tests.workflows.test_support import TICKET, queue_happy_path


class RefusingRelay(OutboxActivities):
    """An outbox whose relay is busy once, then refuses the recipient for good."""

    @activity.defn(name="send_email")
    async def send_email(self, invocation: ToolInvocation) -> ToolResult:
        if activity.info().attempt == 1:
            raise ApplicationError(
                "mail relay busy, try again",
                type="RelayBusy",
                next_retry_delay=timedelta(milliseconds=100),
            )
        raise ApplicationError(
            "550 5.1.1 recipient rejected by the relay",
            type="RecipientRejected",
            non_retryable=True,
        )


async def test_a_tool_that_fails_for_good_is_recorded_and_the_trace_says_so(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    activities = activities_for_tests(config)
    real = activities.outbox
    activities.outbox = RefusingRelay(real.outbox, real.sender, contacts=real.contacts)
    async with running_workers(client, config, task_queue, activities):
        handle = await start_run(
            client,
            config,
            "support-reply",
            TICKET,
            "demo-user",
            task_queue=task_queue,
            workflow_id=history_id("support-send-failed"),
        )
        request = await wait_for_approval(handle)
        await decide(client, request.id, "alice", approve=True, reason="fine")
        result = await handle.result()
        await record_history(handle)
        history = await readable_history(handle)

    assert result.status == "failed"
    (action,) = result.actions
    assert (action.tool, action.decision, action.outcome) == ("send_email", "approve", "failed")
    assert action.reason == "RecipientRejected: 550 5.1.1 recipient rejected by the relay"
    assert outbox_messages(config) == []

    trace = build_trace(history)
    assert trace.run.status == "completed" and trace.run.outcome == "failed"
    assert trace.diagnosis is not None
    assert trace.diagnosis.layer == "tool"
    assert "send_email" in trace.diagnosis.summary
    assert "RecipientRejected" in trace.diagnosis.summary
    (tool,) = trace.tool_calls
    assert tool.activity is not None
    assert trace.diagnosis.event_id == tool.activity.closed_event_id
    assert [a.error.type for a in tool.activity.failed_attempts] == [
        "RelayBusy",
        "RecipientRejected",
    ]


def test_a_run_recorded_before_failed_as_a_workflow_and_the_trace_still_blames_the_tool() -> None:
    history = load_history(HISTORIES / "support-tool-failed.json")
    trace = build_trace(history)
    assert trace.run.status == "failed"
    assert trace.diagnosis is not None and trace.diagnosis.layer == "tool"
    assert "RecipientRejected" in trace.diagnosis.summary
