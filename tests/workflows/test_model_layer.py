"""The model layer inside runs: fallbacks in history, the ledger, budgets that stop or ask."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError

from steward import search_attributes as sa
from steward.config import StewardConfig
from steward.models import RunResult
from steward.runs import decide, start_run
from tests.support.fake_model import FakeModel, provider_error
from tests.support.histories import history_id, readable_history, record_history
from tests.support.stack import running_workers, wait_for_approval

ANSWER = json.dumps({"action": "answer", "answer": "ok"})


def with_changes(config: StewardConfig, **changes: Any) -> StewardConfig:
    return StewardConfig.model_validate(config.model_dump() | changes)


def with_budget(config: StewardConfig, **budget: Any) -> StewardConfig:
    agents = config.model_dump()["agents"]
    agents["helpdesk"]["budget"] = budget
    return with_changes(config, agents=agents)


async def test_fallback_to_the_next_deployment_shows_in_history(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    tiers = {name: [{"model": "fake/primary"}, {"model": "fake/backup"}] for name in config.tiers}
    config = with_changes(config, tiers=tiers)
    fake_model.queue_error(provider_error("AuthenticationError", "key revoked"))
    fake_model.queue(ANSWER)
    async with running_workers(client, config, task_queue):
        handle = await start_run(client, config, "helpdesk", "hi", "dana", task_queue=task_queue)
        result = await handle.result()
        history = await readable_history(handle)

    assert result.status == "completed"
    (call,) = result.model_calls
    assert (call.model, call.deployment, call.attempt) == ("fake/backup", 1, 1)
    assert result.ledger.fallbacks == 1 and result.ledger.model_calls == 1
    assert "difficulty high" in call.rule
    # both attempts are in history: the failed deployment 0 and the answering deployment 1
    kinds = [e.event_type for e in history.events]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["complete", "complete"]  # resolve_run is a local activity
    assert kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED) == 1
    failed = next(
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    )
    assert "ModelAuthError" in str(failed.activity_task_failed_event_attributes.failure)
    assert [c.model for c in fake_model.calls] == ["fake/primary", "fake/backup"]


async def test_budget_stops_the_run_with_a_clear_status(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = with_budget(config, max_model_calls=2)
    fake_model.queue("not json").queue("still not json").queue(ANSWER)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "helpdesk",
            "hi",
            "dana",
            task_queue=task_queue,
            workflow_id=history_id("agent-budget-stop"),
        )
        result = await handle.result()
        await record_history(handle)
        described = await handle.describe()

    assert result.status == "budget_exceeded"
    assert "model calls budget (2 of 2 used)" in result.answer
    assert result.ledger.model_calls == 2 and len(fake_model.calls) == 2
    assert described.typed_search_attributes.get(sa.STATUS) == "budget_exceeded"
    assert described.typed_search_attributes.get(sa.COST) == 0.0


async def test_budget_extension_is_an_approval(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = with_budget(
        config, max_model_calls=1, on_exceed="approve", approval={"group": "support-leads"}
    )
    fake_model.queue("not json").queue(ANSWER)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "helpdesk",
            "hi",
            "dana",
            task_queue=task_queue,
            workflow_id=history_id("agent-budget-extended"),
        )
        request = await wait_for_approval(handle)
        assert request.tool == "extend_budget"
        assert request.arguments["model_calls"] == 1
        assert request.approvers == ["demo-approver", "alice"]
        _, outcome = await decide(client, request.id, "alice", approve=True)
        assert outcome is not None and outcome.status == "approved"
        result: RunResult = await handle.result()
        await record_history(handle)

    assert result.status == "completed"
    assert result.ledger.budget_extensions == 1 and result.ledger.model_calls == 2
    assert result.ledger.review_seconds > 0
    assert [a.tool for a in result.approvals] == ["extend_budget"]


async def test_a_refused_extension_stops_the_run(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = with_budget(
        config, max_model_calls=1, on_exceed="approve", approval={"group": "support-leads"}
    )
    fake_model.queue("not json")
    async with running_workers(client, config, task_queue):
        handle = await start_run(client, config, "helpdesk", "hi", "dana", task_queue=task_queue)
        request = await wait_for_approval(handle)
        await decide(client, request.id, "alice", approve=False, reason="enough")
        result = await handle.result()
    assert result.status == "budget_exceeded"
    assert "extending it was rejected" in result.answer
    assert len(fake_model.calls) == 1


async def test_a_tier_outside_the_agents_grant_is_refused(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    # A tier comes only from the workers' config, which refuses one outside the grant...
    data = config.model_dump()
    data["agents"]["helpdesk"] |= {"model_tiers": ["fast"], "tiers": {"plan": "strong"}}
    with pytest.raises(ValidationError, match="tier 'strong' is not among the agent's"):
        StewardConfig.model_validate(data)
    # ...and a client that sends a profile routing planning to it is refused outright.
    from steward.tools import default_specs

    profile = config.profile("helpdesk", default_specs())
    narrowed = profile.model_copy(update={"tier_order": ["fast"], "tiers": {"plan": "strong"}})
    sent = {"input": "hello", "principal": "dana", "profile": narrowed.model_dump(mode="json")}
    async with running_workers(client, config, task_queue):
        handle = await client.start_workflow(
            "AgentWorkflow", sent, id=f"tier-grant-{task_queue}", task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert "profile: a run input carries only" in str(failed.value.cause)
    assert fake_model.calls == []  # no model was called
