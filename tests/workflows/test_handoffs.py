"""Specialists and handoffs: each task a child workflow with its own grants, budgets rolling
up, cancellation reaching the children, fan-out bounded, bad handoffs refused."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.exceptions import CancelledError

from steward import search_attributes as sa
from steward.config import ConfigError, StewardConfig, load_config
from steward.costs import collect
from steward.handoffs import (
    HandoffArgs,
    HandoffResult,
    capped_budget,
    handoff_tool,
    record,
    summary,
)
from steward.models import (
    AgentProfile,
    Budget,
    BudgetCap,
    Ledger,
    LLMResult,
    RunRequest,
    RunResult,
    ToolCall,
    Usage,
)
from steward.runs import pending, start_run
from steward.tools import default_specs
from steward.trace import build_trace, render_text
from steward.trace.events import first, resolved_run, typed
from tests.support.fake_model import FakeModel, provider_error
from tests.support.histories import history_id, readable_history, record_history
from tests.support.stack import (
    outbox_messages,
    outbox_notices,
    running_workers,
    wait_for_approval,
)
from workflows.agent import decision_schema, system_prompt

SEND = {"to": "ops@example.com", "subject": "Refunds", "body": "30 days."}
WRITE = {"path": "notes/summary.md", "content": "what I found"}


def turn(action: str, **fields: object) -> str:
    return json.dumps({"action": action, **fields})


def handoff(*tasks: tuple[str, str]) -> str:
    return turn("handoff", arguments={"tasks": [{"specialist": s, "task": t} for s, t in tasks]})


def changed(config: StewardConfig, tmp_path: Path, **agents: dict[str, Any]) -> StewardConfig:
    """The test config with some agents' settings changed (or added) and a private workspace."""
    data = config.model_dump()
    for name, settings in agents.items():
        data["agents"][name] = data["agents"].get(name, {}) | settings
    data["files"] = data["files"] | {
        "workspace": str(tmp_path / "workspace"),
        "published": str(tmp_path / "published"),
    }
    return StewardConfig.model_validate(data)


WRITER = {
    "kind": "agent",
    "description": "Writes notes to the workspace (with approval).",
    "tools": ["write_file"],
}


async def child_ids(handle: WorkflowHandle[Any, Any], count: int = 0) -> list[str]:
    """The ids of the run's children in the order it started them, once `count` run."""
    async with asyncio.timeout(30):
        while True:
            events = (await readable_history(handle)).events
            started = [
                e
                for e in events
                if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
            ]
            if len(started) >= count:
                return [
                    e.start_child_workflow_execution_initiated_event_attributes.workflow_id
                    for e in events
                    if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
                ]
            await asyncio.sleep(0.05)


def child_request(history: WorkflowHistory) -> RunRequest:
    """The RunRequest a child run was started with."""
    started = history.events[0].workflow_execution_started_event_attributes
    request = typed(RunRequest, first(started.input))
    assert request is not None
    return request


def activity_types(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


# --- runs ----------------------------------------------------------------------------


async def test_a_specialist_runs_as_a_child_with_its_own_grants_not_its_parents(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(handoff(("researcher", "Find the refund window and tell ops by email")))
    fake_model.queue(turn("send_email", arguments=SEND))  # the researcher may not send
    fake_model.queue(turn("answer", answer="Refunds are accepted within 30 days."))
    fake_model.queue(turn("answer", answer="Refunds: 30 days (from the researcher)."))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "helpdesk",
            "How long do customers have to ask for a refund?",
            "dana",
            task_queue=task_queue,
            workflow_id=history_id("agent-handoff"),
        )
        result = await handle.result()
        await record_history(handle)
        (child_id,) = await child_ids(handle)
        child = client.get_workflow_handle(child_id, result_type=RunResult)
        child_result = await child.result()
        child_history = await readable_history(child)
        description = await child.describe()
        history = await readable_history(handle)
        costs = await collect(client, since=timedelta(minutes=10), target="helpdesk")
        specialist_costs = await collect(client, since=timedelta(minutes=10), target="researcher")
        query = f"WorkflowId = '{child_id}' AND StewardTarget = 'researcher'"
        listed = [e.id async for e in client.list_workflows(query)]

    assert result.status == "completed"
    assert result.answer == "Refunds: 30 days (from the researcher)."
    (action,) = result.actions
    assert (action.tool, action.decision, action.outcome) == ("handoff", "allow", "done")
    assert f"researcher ({child_id}): completed" in action.output
    assert "send_email: deny -> denied" in action.output
    assert "answer: Refunds are accepted within 30 days." in action.output
    # the parent's model read the specialist's answer back, as data
    assert "Refunds are accepted within 30 days." in fake_model.calls[3].messages[-1]["content"]
    assert "not instructions" in fake_model.calls[3].messages[-1]["content"]

    # the specialist's own grants: the parent's send_email was never its to use
    request = child_request(child_history)
    assert request.target == "researcher" and request.principal == "dana"
    resolved = resolved_run(child_history.events)  # by the workers, from their config
    assert resolved is not None and resolved.profile.name == "researcher"
    assert {t.name for t in resolved.profile.tools} == {"search_docs", "http_get"}
    (denied,) = child_result.actions
    assert (denied.tool, denied.outcome) == ("send_email", "denied")
    assert "not granted to 'researcher'" in denied.reason
    assert "send_email" not in activity_types(child_history)
    assert outbox_messages(config) == [] and outbox_notices(config) == []

    # a child workflow of the parent, found like any run by its search attributes
    assert child_id.startswith(f"{handle.id}--") and ":" not in child_id.removeprefix(handle.id)
    assert description.workflow_type == "AgentWorkflow"
    assert description.parent_id == handle.id
    attributes = description.typed_search_attributes
    assert attributes.get(sa.TARGET) == "researcher"
    assert attributes.get(sa.PRINCIPAL) == "dana"
    assert attributes.get(sa.STATUS) == "completed"

    # the ledger rolls up: the parent's two calls and the specialist's two
    assert [c.step for c in result.model_calls] == [
        "turn-1",
        "researcher/turn-1",
        "researcher/turn-2",
        "turn-2",
    ]
    assert result.ledger.model_calls == 4
    assert child_result.ledger.model_calls == 2
    assert result.ledger.tokens == sum(c.input_tokens + c.output_tokens for c in result.model_calls)
    assert result.ledger.tokens > child_result.ledger.tokens > 0
    assert len(result.ledger.context_tokens) == 4
    # `steward costs` counts the specialist's spend once: in its parent's ledger
    (parent_cost,) = [c for c in costs if c.workflow_id == handle.id]
    assert parent_cost.ledger is not None and parent_cost.ledger.model_calls == 4
    assert listed == [child_id]  # visible as a researcher run, yet not counted apart
    assert child_id not in {c.workflow_id for c in specialist_costs}

    # the trace shows the handoff with the child's id
    text = render_text(build_trace(history))
    assert f"handoff to researcher: child AgentWorkflow {child_id}: completed" in text
    assert "policy allow -> done" in next(
        line for line in text.splitlines() if "tool handoff" in line
    )


async def test_cancelling_the_parent_cancels_its_specialists_and_nothing_runs_after(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str, tmp_path: Path
) -> None:
    config = changed(config, tmp_path, writer=WRITER, helpdesk={"specialists": ["writer"]})
    fake_model.queue(handoff(("writer", "Write the summary"), ("writer", "Write it again")))
    # Both children ask for the same write (in either order) and wait for its approval.
    fake_model.queue(turn("write_file", arguments=WRITE))
    fake_model.queue(turn("write_file", arguments=WRITE))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Write up the summary", "dana", task_queue=task_queue
        )
        ids = await child_ids(handle, 2)
        children = [client.get_workflow_handle(i) for i in ids]
        requests = [await wait_for_approval(child) for child in children]
        assert {r.workflow_id for r in requests} == set(ids)
        waiting = {r.workflow_id for r in await pending(client)}
        assert set(ids) <= waiting  # the specialists' approvals show in `steward pending`

        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        descriptions = [await child.describe() for child in children]
        histories = [await readable_history(child) for child in children]
        await asyncio.sleep(0.5)  # room for anything that would still run
        left = {r.workflow_id for r in await pending(client)}
        parent = await handle.describe()

    assert isinstance(failure.value.cause, CancelledError)
    assert parent.status == WorkflowExecutionStatus.CANCELED
    assert [d.status for d in descriptions] == [WorkflowExecutionStatus.CANCELED] * 2
    # Nothing of theirs waits any more, for the UI and visibility queries either.
    for description in [*descriptions, parent]:
        attributes = description.typed_search_attributes
        assert attributes.get(sa.STATUS) == "cancelled"
        assert not attributes.get(sa.PENDING_APPROVALS)
    assert not (left & set(ids))
    assert not (tmp_path / "workspace").exists() or not any((tmp_path / "workspace").rglob("*"))
    for history in histories:
        assert "write_file" not in activity_types(history)
        assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
    assert len(fake_model.calls) == 3 and fake_model.pending == 0


async def test_a_handoff_runs_at_most_max_parallel_specialists_at_once(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    assert config.profile("helpdesk", default_specs()).max_parallel == 2
    fake_model.queue(
        handoff(("researcher", "refunds"), ("researcher", "shipping"), ("researcher", "billing"))
    )
    for _ in range(3):  # the children may take these in any order
        fake_model.queue(turn("answer", answer="found it"))
    fake_model.queue(turn("answer", answer="all three found"))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Look up three things", "dana", task_queue=task_queue
        )
        result = await handle.result()
        history = await readable_history(handle)
        ids = await child_ids(handle)
        described = [await client.get_workflow_handle(i).describe() for i in ids]

    assert result.status == "completed" and result.answer == "all three found"
    assert len(ids) == 3 and [i.rsplit("-", 2)[-2] for i in ids] == ["0", "1", "2"]
    running, most, order = 0, 0, []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            running += 1
            order.append("start")
        elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            running -= 1
            order.append("end")
        most = max(most, running)
    assert most == 2  # two at once, never three
    assert order[:3] == ["start", "start", "end"]  # the third waited for a free slot
    first_close = min(d.close_time for d in described[:2] if d.close_time is not None)
    assert described[2].start_time >= first_close
    assert result.ledger.model_calls == 5
    # the model was offered the handoff, for the granted specialist, one batch at a time
    offered = json.dumps(fake_model.calls[0].response_format)
    assert '"enum": ["handoff"]' in offered and '"enum": ["researcher"]' in offered


async def test_bad_handoffs_are_refused_with_a_reason_and_the_run_goes_on(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(handoff(("writer", "write it")))  # not granted to helpdesk
    fake_model.queue(turn("handoff", arguments={"tasks": [{"specialist": "researcher"}]}))
    fake_model.queue(turn("handoff", arguments={"tasks": []}))
    fake_model.queue(handoff(("researcher", "   ")))
    fake_model.queue(turn("answer", answer="I will do it myself."))
    # the researcher has no specialists of its own
    fake_model.queue(handoff(("helpdesk", "help me")))
    fake_model.queue(turn("answer", answer="ok"))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Write it up", "dana", task_queue=task_queue
        )
        result = await handle.result()
        history = await readable_history(handle)
        alone = await start_run(
            client, config, "researcher", "Find it", "dana", task_queue=task_queue
        )
        alone_result = await alone.result()

    assert result.status == "completed" and result.answer == "I will do it myself."
    assert [(a.tool, a.decision, a.outcome) for a in result.actions] == [
        ("handoff", "deny", "denied")
    ] * 4
    reasons = [a.reason for a in result.actions]
    assert "'writer' is not a specialist granted to 'helpdesk' (granted: researcher)" in reasons[0]
    assert "invalid arguments: tasks.0.task: Field required" in reasons[1]
    assert "invalid arguments: tasks: List should have at least 1 item" in reasons[2]
    assert "the task is empty" in reasons[3]
    assert "not a specialist granted" in fake_model.calls[1].messages[-1]["content"]
    assert not any(
        e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
        for e in history.events
    )

    assert alone_result.status == "completed"
    (denied,) = alone_result.actions
    assert denied.decision == "deny" and denied.reason == "no specialists granted to 'researcher'"
    assert '"handoff"' not in json.dumps(fake_model.calls[5].response_format)


async def test_the_parents_budget_caps_its_specialists_and_their_spend_stops_it(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str, tmp_path: Path
) -> None:
    config = changed(config, tmp_path, helpdesk={"budget": {"max_model_calls": 3}})
    fake_model.queue(handoff(("researcher", "Find the refund window")))
    fake_model.queue("not json")  # the researcher spends what the parent has left...
    fake_model.queue("still not json")
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Refund window?", "dana", task_queue=task_queue
        )
        result = await handle.result()
        (child_id,) = await child_ids(handle)
        child = client.get_workflow_handle(child_id, result_type=RunResult)
        child_result = await child.result()
        child_history = await readable_history(child)

    # ...which the parent's budget capped at the two calls it had left
    assert child_request(child_history).budget_cap == BudgetCap(max_model_calls=2)
    assert child_result.status == "budget_exceeded" and child_result.ledger.model_calls == 2
    (action,) = result.actions
    assert action.outcome == "failed" and f"researcher ({child_id}): budget_exceeded" in (
        action.output
    )
    # the parent's ledger holds the children's calls, so its own next call is refused
    assert result.status == "budget_exceeded"
    assert "model calls budget (3 of 3 used)" in result.answer
    assert result.ledger.model_calls == 3 and len(fake_model.calls) == 3


async def test_a_failed_specialist_is_a_result_and_the_trace_names_the_handoff(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str, tmp_path: Path
) -> None:
    config = changed(config, tmp_path, helpdesk={"max_turns": 1})
    fake_model.queue(handoff(("researcher", "Find the refund window")))
    fake_model.queue_error(provider_error("AuthenticationError", "bad key for the researcher"))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Refund window?", "dana", task_queue=task_queue
        )
        result = await handle.result()
        (child_id,) = await child_ids(handle)
        history = await readable_history(handle)
        child = await client.get_workflow_handle(child_id).describe()

    assert child.status == WorkflowExecutionStatus.FAILED
    assert result.status == "failed"  # its one turn went to the handoff
    (action,) = result.actions
    assert action.outcome == "failed"
    assert f"researcher ({child_id}): failed" in action.output
    assert "bad key for the researcher" in action.output
    trace = build_trace(history)
    assert trace.diagnosis is not None and trace.diagnosis.layer == "handoff"
    assert f"handoff to researcher (child {child_id}) failed" in trace.diagnosis.summary
    text = render_text(trace)
    assert f"handoff to researcher: child AgentWorkflow {child_id}: failed" in text
    assert "diagnosis: handoff: handoff to researcher" in text
    assert "handoffs: 1 (1 failed)" in text


# --- configuration -------------------------------------------------------------------


def with_agents(config: StewardConfig, **agents: dict[str, Any]) -> dict[str, Any]:
    data = config.model_dump()
    for name, settings in agents.items():
        data["agents"][name] = data["agents"].get(name, {}) | settings
    return data


@pytest.mark.parametrize(
    ("agents", "message"),
    [
        (
            {"helpdesk": {"specialists": ["nobody"]}},
            "agents.helpdesk.specialists: unknown agent 'nobody' (agents: ['helpdesk', "
            "'researcher'])",
        ),
        (
            {"helpdesk": {"specialists": ["support-reply"]}},
            "agents.helpdesk.specialists: 'support-reply' is a playbook",
        ),
        (
            {"helpdesk": {"specialists": ["helpdesk"]}},
            "agents.helpdesk.specialists: 'helpdesk' cannot be its own specialist",
        ),
        (
            {"researcher": {"specialists": ["helpdesk"]}},
            "agents.helpdesk.specialists: handoffs go round in a cycle "
            "(helpdesk -> researcher -> helpdesk)",
        ),
        (
            {
                "researcher": {"specialists": ["fetcher"]},
                "fetcher": WRITER | {"specialists": ["helpdesk"]},
            },
            "handoffs go round in a cycle (helpdesk -> researcher -> fetcher -> helpdesk)",
        ),
        (
            {"support-reply": {"specialists": ["researcher"]}},
            "agents.support-reply.specialists: only agents hand off",
        ),
        ({"helpdesk": {"max_parallel": 0}}, "max_parallel"),
        ({"helpdesk": {"max_parallel": 17}}, "max_parallel"),
    ],
)
def test_specialists_must_be_other_agents_without_cycles(
    config: StewardConfig, agents: dict[str, dict[str, Any]], message: str
) -> None:
    with pytest.raises(ValidationError) as error:
        StewardConfig.model_validate(with_agents(config, **agents))
    assert message in str(error.value)


def test_a_bad_specialist_in_steward_yaml_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "steward.yaml"
    path.write_text(
        "tiers: {fast: [{model: fake/queued}]}\n"
        "agents:\n"
        "  a: {kind: agent, specialists: [b]}\n"
        "  b: {kind: agent, specialists: [a]}\n"
    )
    with pytest.raises(ConfigError, match=r"agents\.a\.specialists: handoffs go round"):
        load_config(path)


def test_profiles_resolve_specialists_with_their_own_grants(
    config: StewardConfig, tmp_path: Path
) -> None:
    nested = changed(
        config,
        tmp_path,
        researcher={"specialists": ["writer"], "max_parallel": 3},
        writer=WRITER | {"budget": {"max_model_calls": 4}},
    )
    helpdesk = nested.profile("helpdesk", default_specs())
    (researcher,) = helpdesk.specialists
    (writer,) = researcher.specialists
    assert (helpdesk.max_parallel, researcher.max_parallel) == (2, 3)
    assert [t.name for t in researcher.tools] == ["search_docs", "http_get"]
    assert researcher.collections == ["handbook"]
    assert [t.name for t in writer.tools] == ["write_file"]
    assert writer.tools[0].approval is not None  # its grants come with their policy
    assert writer.budget.max_model_calls == 4 and writer.specialists == []
    assert "researcher: Looks things up" in system_prompt(helpdesk)
    assert "Specialists" not in system_prompt(writer)
    assert handoff_tool(writer) is None
    offered = handoff_tool(researcher)
    assert offered is not None and offered.parameters is not None
    assert offered.parameters["properties"]["tasks"]["maxItems"] == 3
    assert actions(helpdesk).count("handoff") == 1 and "handoff" not in actions(writer)


def actions(profile: AgentProfile) -> list[str]:
    """The actions a profile's decision schema offers the model."""
    decision = decision_schema(profile)["properties"]["decision"]
    return [o["properties"]["action"]["enum"][0] for o in decision.get("anyOf", [decision])]


# --- pure rules ----------------------------------------------------------------------


def spent(calls: int, tokens: int = 10, cost: float | None = 0.01) -> Ledger:
    ledger = Ledger()
    for _ in range(calls):
        ledger.add_call(
            LLMResult(
                text="x",
                model="m",
                tier="fast",
                latency_ms=1.0,
                attempt=1,
                usage=Usage(input_tokens=tokens, output_tokens=0, cost_usd=cost),
            )
        )
    return ledger


def test_a_ledger_absorbs_a_childs_spend() -> None:
    parent, child = spent(2), spent(3, tokens=7, cost=None)
    child.retries, child.tool_seconds, child.review_seconds, child.fallbacks = 2, 1.5, 60.0, 1
    child.budget_extensions = 1
    parent.absorb(child)
    assert parent.model_calls == 5 and parent.input_tokens == 20 + 21
    assert parent.cost_usd == pytest.approx(0.02) and parent.unpriced_calls == 3
    assert parent.by_tier["fast"].calls == 5 and parent.by_tier["fast"].unpriced_calls == 3
    assert (parent.retries, parent.fallbacks, parent.tool_seconds) == (2, 1, 1.5)
    assert parent.review_seconds == 60.0 and parent.context_tokens == [10, 10, 7, 7, 7]
    assert parent.budget_extensions == 0  # an extension granted the child is the child's


def test_a_specialists_budget_is_capped_by_what_the_parent_has_left() -> None:
    own = Budget(max_model_calls=10, max_cost_usd=1.0)
    parent = Budget(max_model_calls=5, max_tokens=1000)
    capped = capped_budget(own, parent, spent(2, tokens=100))
    assert isinstance(capped, Budget)
    assert (capped.max_model_calls, capped.max_tokens, capped.max_cost_usd) == (3, 800, 1.0)
    assert capped_budget(own, Budget(), spent(2)) == own  # an unlimited parent caps nothing
    refused = capped_budget(own, parent, spent(5))
    assert refused == "the next call would pass the model calls budget (5 of 5 used)"


def test_a_handoffs_record_is_compact_data_for_the_model() -> None:
    call = ToolCall(id="call-1", tool="handoff", arguments={"tasks": []})
    results = [
        HandoffResult(specialist="a", workflow_id="p--call-1-0-a", status="completed", answer="x"),
        HandoffResult(specialist="b", workflow_id="", status="budget_exceeded", error="no money"),
    ]
    action = record(call, results)
    assert action.outcome == "done" and "1 completed" in action.reason
    assert summary(results) == (
        "a (p--call-1-0-a): completed\nanswer: x\n\n"
        "b (not started): budget_exceeded\nerror: no money\nanswer: "
    )
    assert record(call, results[1:]).outcome == "failed"
    with pytest.raises(ValidationError, match="at most 20,000"):
        HandoffArgs.model_validate({"tasks": [{"specialist": "a", "task": "x" * 20_001}]})
    profile = AgentProfile(name="p", kind="agent")
    assert handoff_tool(profile) is None
