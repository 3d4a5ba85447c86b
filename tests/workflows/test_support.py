"""The demo playbook end to end with the fake model: approve, reject, time out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from steward.config import StewardConfig
from steward.runs import decide, start_run
from tests.support.fake_model import FakeModel
from tests.support.histories import history_id, record_history
from tests.support.stack import outbox_messages, running_workers, wait_for_approval

TICKET = (Path(__file__).resolve().parents[2] / "examples/tickets/late-delivery.txt").read_text()
DRAFT = "Hello Dana,\n\nWe are sorry for the delay; a refund of the express fee is on its way.\n"


def queue_happy_path(fake: FakeModel) -> None:
    fake.queue(json.dumps({"category": "shipping", "urgency": "high"}))
    fake.queue(DRAFT)


async def test_approved_reply_is_sent_once(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "support-reply",
            TICKET,
            "demo-user",
            task_queue=task_queue,
            workflow_id=history_id("support-approved"),
        )
        request = await wait_for_approval(handle)
        assert request.tool == "send_email"
        assert request.arguments["to"] == "dana.whitfield@example.com"
        assert request.requester == "demo-user"
        assert outbox_messages(config) == []  # nothing sent before the approval

        _, outcome = await decide(client, request.id, "alice", approve=True, reason="looks good")
        assert outcome is not None and outcome.status == "approved"
        result = await handle.result()
        await record_history(handle)

    assert result.status == "completed"
    assert result.details == {
        "category": "shipping",
        "urgency": "high",
        "grounding": (
            "not grounded: no collection 'handbook' in embedded store "
            f"{config.retrieval.store}: ingest documents first "
            "(steward ingest PATH --collection handbook)"
        ),
        "guardrails": "2 checks passed",  # the draft step's, from examples/steward.yaml
    }
    assert result.citations == []
    assert [a.outcome for a in result.actions] == ["done"]
    assert [(c.step, c.model) for c in result.model_calls] == [
        ("classify", "fake/queued"),
        ("draft", "fake/queued"),
    ]
    assert len(fake_model.calls) == 2
    # the classify call was grammar-constrained to the classification schema
    assert fake_model.calls[0].response_format is not None
    messages = outbox_messages(config)
    assert len(messages) == 1
    text = messages[0].read_text()
    assert "To: dana.whitfield@example.com" in text
    assert "Subject: Re: Order #48213 still not delivered" in text
    assert "refund of the express fee" in text


async def test_rejected_reply_is_not_sent(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "support-reply",
            TICKET,
            "demo-user",
            task_queue=task_queue,
            workflow_id=history_id("support-rejected"),
        )
        request = await wait_for_approval(handle)
        _, outcome = await decide(
            client, request.id, "alice", approve=False, reason="promise of a refund"
        )
        assert outcome is not None and outcome.status == "rejected"
        result = await handle.result()
        await record_history(handle)

    assert result.status == "rejected"
    assert [a.outcome for a in result.actions] == ["rejected"]
    assert result.approvals[0].reason == "promise of a refund"
    assert outbox_messages(config) == []


async def test_approval_deadline_rejects_the_action(
    time_env: WorkflowEnvironment, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    client = time_env.client
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "support-reply",
            TICKET,
            "demo-user",
            task_queue=task_queue,
            workflow_id=history_id("support-timed-out"),
        )
        result = await handle.result()  # the test server skips the day-long deadline
        await record_history(handle)

    assert result.status == "approval_timed_out"
    assert result.approvals[0].status == "timed_out"
    assert "no decision within 86400s" in result.approvals[0].reason
    assert outbox_messages(config) == []


@pytest.mark.parametrize("cache", [0])
async def test_full_replay_on_every_task(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str, cache: int
) -> None:
    """With no workflow cache every task replays the whole history: it must still agree."""
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue, max_cached_workflows=cache):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        await decide(client, request.id, "alice", approve=True)
        result = await handle.result()
    assert result.status == "completed"
    assert len(fake_model.calls) == 2
    assert len(outbox_messages(config)) == 1
