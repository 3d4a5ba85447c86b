"""Approval rules beyond one approver: N of M, escalation at the deadline, notices, caps."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from steward import policy
from steward.config import StewardConfig
from steward.models import AgentProfile, ApprovalDecision, RiskClass, ToolCall, ToolSpec
from steward.runs import decide, start_run
from tests.support.fake_model import FakeModel
from tests.support.histories import history_id, record_history
from tests.support.stack import (
    mail_text,
    outbox_messages,
    outbox_notices,
    running_workers,
    wait_for_approval,
)
from tests.workflows.test_support import TICKET, queue_happy_path


def with_send_rule(config: StewardConfig, **approval: Any) -> StewardConfig:
    data = config.model_dump()
    data["approvers"] |= {"leads": ["alice", "bob", "demo-approver"], "managers": ["carol"]}
    data["tools"]["send_email"]["approval"] = approval
    data["notify"] = {"contacts": {"carol": "carol@example.com"}}
    return StewardConfig.model_validate(data)


def spec(**extra: Any) -> ToolSpec:
    return ToolSpec.model_validate({"name": "t", "description": "d", "risk": "send"} | extra)


@pytest.mark.parametrize(
    ("tool", "calls_so_far", "kind", "reason"),
    [
        (spec(risk=RiskClass.READ), 0, "allow", "default for risk class 'read'"),
        (spec(risk=RiskClass.WRITE, approval={"approvers": ["a"]}), 0, "approve", "one of a"),
        (
            spec(approval={"approvers": ["a", "b", "c"], "required": 2}),
            0,
            "approve",
            "2 of a, b, c",
        ),
        (spec(risk=RiskClass.PURCHASE), 0, "deny", "no approvers configured"),
        (spec(risk=RiskClass.DELETE, decision="deny"), 0, "deny", "tool setting"),
        (spec(risk=RiskClass.READ, max_calls_per_run=2), 1, "allow", "allowed"),
        (spec(risk=RiskClass.READ, max_calls_per_run=2), 2, "deny", "cap 2"),
        (spec(risk=RiskClass.SEND, decision="allow"), 0, "allow", "tool setting"),
    ],
)
def test_policy_table(tool: ToolSpec, calls_so_far: int, kind: str, reason: str) -> None:
    profile = AgentProfile(name="a", kind="agent", tools=[tool])
    decision = policy.decide(
        ToolCall(id="c", tool="t", arguments={}),
        profile,
        policy.RunState(calls_by_tool={"t": calls_so_far}),
    )
    assert decision.kind == kind
    assert reason in decision.reason


def test_n_of_m_needs_enough_approvers() -> None:
    with pytest.raises(ValueError, match="3 approvals but only 2 approvers"):
        spec(approval={"approvers": ["a", "b"], "required": 3})


async def test_two_of_three_distinct_approvers(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = with_send_rule(config, group="leads", required=2)
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "support-reply",
            TICKET,
            "bob",
            task_queue=task_queue,
            workflow_id=history_id("support-two-approvers"),
        )
        request = await wait_for_approval(handle)
        assert request.required == 2

        def decision(approver: str) -> ApprovalDecision:
            return ApprovalDecision(
                request_id=request.id,
                args_digest=request.args_digest,
                approver=approver,
                approve=True,
            )

        _, receipt = await decide(client, request.id, "alice", approve=True)
        assert receipt is not None and receipt.status == "awaiting_more"
        assert receipt.approved_by == ["alice"]
        for refused, why in [("alice", "already approved"), ("bob", "cannot approve it")]:
            with pytest.raises(WorkflowUpdateFailedError) as caught:
                await handle.execute_update("decide", decision(refused))
            assert why in str(caught.value.cause)
        assert outbox_messages(config) == []  # one approval of two sends nothing
        _, receipt = await decide(client, request.id, "demo-approver", approve=True)
        assert receipt is not None and receipt.status == "approved"
        result = await handle.result()
        await record_history(handle)

    assert result.status == "completed"
    assert result.approvals[0].approver == "alice, demo-approver"
    assert len(outbox_messages(config)) == 1
    (notice,) = outbox_notices(config)
    text = mail_text(notice)
    assert "2 of you must decide" in text and f"steward approve {request.id}" in text
    assert "alice@steward.local" in text and request.args_digest in text


async def test_deadline_escalates_to_the_next_group(
    time_env: WorkflowEnvironment, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = with_send_rule(
        config,
        group="leads",
        timeout_seconds=3600,
        escalate={"group": "managers", "timeout_seconds": 7200},
    )
    queue_happy_path(fake_model)
    client = time_env.client
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "support-reply",
            TICKET,
            "dana",
            task_queue=task_queue,
            workflow_id=history_id("support-escalated"),
        )
        first = await wait_for_approval(handle)
        assert first.approvers == ["alice", "bob", "demo-approver"] and not first.escalated
        await time_env.sleep(3700)  # the leads let the deadline pass
        escalated = await wait_for_approval(handle)
        assert escalated.escalated and escalated.approvers == ["carol"]
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update(
                "decide",
                ApprovalDecision(
                    request_id=first.id,
                    args_digest=first.args_digest,
                    approver="alice",
                    approve=True,
                ),
            )
        assert "not an allowed approver" in str(caught.value.cause)
        _, receipt = await decide(client, first.id, "carol", approve=True)
        assert receipt is not None and receipt.status == "approved"
        result = await handle.result()
        await record_history(handle)

    assert result.status == "completed"
    assert result.approvals[0].approver == "carol"
    notices = [mail_text(p) for p in outbox_notices(config)]
    assert len(notices) == 2  # one when opened, one on escalation
    assert any("carol@example.com" in n and "escalated to you" in n for n in notices)


async def test_escalation_that_also_lapses_times_out(
    time_env: WorkflowEnvironment, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = with_send_rule(
        config,
        group="leads",
        timeout_seconds=60,
        escalate={"group": "managers", "timeout_seconds": 60},
    )
    queue_happy_path(fake_model)
    client = time_env.client
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        result = await handle.result()
    assert result.status == "approval_timed_out"
    assert result.approvals[0].reason == "no decision within 120s (escalated once)"
    assert outbox_messages(config) == []
