"""EvalWorkflow with the real model activity (the fake behind litellm) and the sandbox."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import litellm
import pytest
from temporalio.client import Client

from activities.evals import SandboxTools, ScriptedRetrieval
from activities.llm import LLMActivities
from evals.models import EvalProgress, EvalRequest
from evals.runner import start_eval
from evals.suite import Suite
from evals.worker import eval_activities, eval_workers, scripted_activities
from steward.config import StewardConfig
from steward.models import ToolInvocation
from steward.trace import build_trace
from tests.evals.support import request_for, run_request
from tests.support.fake_model import FakeModel, provider_error
from tests.support.histories import history_id, readable_history, record_history
from tests.support.stack import outbox_messages, outbox_notices
from workers.build import tool_methods
from workflows.eval import EvalWorkflow

TICKET = Path(__file__).resolve().parents[2] / "examples" / "tickets" / "late-delivery.txt"
CLASSIFY = json.dumps({"category": "shipping", "urgency": "high"})
DRAFT = "Dear Dana,\n\nYour parcel is on its way.\n\nBest regards, The Support Team"


def suite(*cases: dict[str, object], **settings: object) -> Suite:
    return Suite.model_validate(
        {"suite": "t", "target": "support-reply", "cases": list(cases)} | settings
    )


def ticket_case(case_id: str, **fields: object) -> dict[str, object]:
    return {"id": case_id, "input": TICKET.read_text()} | fields


@pytest.fixture
def priced(config: StewardConfig) -> StewardConfig:
    """Every tier on a fake deployment litellm can price (so costs are numbers)."""
    litellm.register_model(
        {
            "fake/priced": {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "litellm_provider": "fake",
                "mode": "chat",
            }
        }
    )
    data = config.model_dump()
    data["tiers"] = {name: [{"model": "fake/priced"}] for name in config.tiers}
    return StewardConfig.model_validate(data)


async def test_the_sandbox_records_the_send_and_nothing_leaves(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(CLASSIFY).queue(DRAFT)
    recorded: list[ToolInvocation] = []
    request = request_for(
        suite(
            ticket_case(
                "sent",
                expect=[{"tool_called": {"tool": "send_email", "outcome": "done"}}],
            )
        ),
        config,
        task_queue,
    )

    result = await run_request(client, config, request, task_queue, recorded=recorded)

    (outcome,) = result.outcomes
    assert outcome.passed and outcome.status == "completed"
    # the sandbox saw the send, with the exact arguments the approver approved ...
    (send,) = [r for r in recorded if r.call.tool == "send_email"]
    assert send.call.arguments["to"] == "dana.whitfield@example.com"
    assert send.call.arguments["body"] == DRAFT
    # ... recorded it in the run itself, and nothing left it: no message, no notice
    child = await readable_history(client.get_workflow_handle(outcome.workflow_id))
    (action,) = [c for c in build_trace(child).tool_calls if c.tool == "send_email"]
    assert action.output.startswith("sandbox: send_email not performed")
    assert "dana.whitfield@example.com" in action.output
    assert outbox_messages(config) == [] and outbox_notices(config) == []
    assert not Path(config.outbox).exists()


def test_eval_workers_never_build_a_real_tool(config: StewardConfig) -> None:
    for activities in (
        eval_activities(config, LLMActivities(config.tiers, allow_paid=False)),
        scripted_activities(config),
    ):
        assert activities.authority.sandbox
        tools = tool_methods(activities)
        assert {"send_email", "write_file", "publish_file", "http_get"} <= set(tools)
        for name, method in tools.items():
            owner = getattr(method, "__self__", None)
            if name == "search_docs" and owner is activities.retrieval:
                continue  # a read of the handbook (scripted on the scripted queue)
            # the sandbox's recorder, made for the tool from its catalogue entry
            assert method.__qualname__.startswith(f"{SandboxTools.__name__}."), name
        assert isinstance(activities.outbox, SandboxTools)  # notify_approvers too
    assert isinstance(scripted_activities(config).retrieval, ScriptedRetrieval)


async def test_approvals_are_scripted_and_the_judge_is_paid_for_apart(
    client: Client, priced: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    judge = {"llm_judge": {"rubric": "polite", "min_score": 4}}
    cases = suite(
        ticket_case("approved", approvals=["approve"], expect=[{"status": "completed"}, judge]),
        ticket_case("rejected", approvals=["reject"], expect=[{"status": "rejected"}]),
        ticket_case(
            "timed-out",
            approvals=["timeout"],
            approval_deadline_seconds=0.5,
            expect=[{"status": "approval_timed_out"}],
        ),
        judge_tier="fast",
    )
    fake_model.queue(CLASSIFY, input_tokens=100, output_tokens=10)
    fake_model.queue(DRAFT, input_tokens=100, output_tokens=50)
    fake_model.queue(
        json.dumps({"score": 5, "reason": "polite"}), input_tokens=1000, output_tokens=1000
    )
    for _ in range(2):
        fake_model.queue(CLASSIFY, input_tokens=100, output_tokens=10)
        fake_model.queue(DRAFT, input_tokens=100, output_tokens=50)
    request = request_for(cases, priced, task_queue, concurrency=1)

    result = await run_request(client, priced, request, task_queue)

    by_id = {o.id: o for o in result.outcomes}
    assert [o.id for o in result.outcomes] == ["approved", "rejected", "timed-out"]
    assert all(o.passed for o in result.outcomes), [o.scores for o in result.outcomes]
    assert [by_id[i].status for i in by_id] == ["completed", "rejected", "approval_timed_out"]
    # the run's own two calls, and the judge's one, each priced and kept apart
    approved = by_id["approved"]
    assert approved.model_calls == 2
    assert approved.cost_usd == pytest.approx(200e-6 + 60 * 2e-6)
    assert approved.judge_cost_usd == pytest.approx(1000e-6 + 1000 * 2e-6)
    assert by_id["rejected"].judge_cost_usd == 0.0
    judge_score = next(s for s in approved.scores if s.kind == "llm_judge")
    assert judge_score.passed and judge_score.value == 5
    assert fake_model.calls[2].response_format is not None  # the verdict is grammar-bound
    assert "polite" in fake_model.calls[2].messages[-1]["content"]


async def test_cases_run_in_parallel_up_to_the_concurrency(
    client: Client, config: StewardConfig, task_queue: str
) -> None:
    script = {"model": {"classify": CLASSIFY, "draft": DRAFT}}
    slow = [{"decision": "approve", "after_seconds": 0.6}]
    request = request_for(
        suite(*(ticket_case(f"c{i}", script=script, approvals=slow) for i in range(5))),
        config,
        task_queue,
        concurrency=2,
    )
    seen: list[EvalProgress] = []
    async with eval_workers(
        client, config, task_queue=task_queue, llm=LLMActivities(config.tiers, allow_paid=False)
    ):
        handle, resumed = await start_eval(client, request, task_queue=task_queue)
        assert not resumed
        while (await handle.describe()).status.name == "RUNNING":  # type: ignore[union-attr]
            seen.append(await handle.query(EvalWorkflow.progress))
        result = await handle.result()

    assert all(o.passed for o in result.outcomes)
    spans: list[tuple[datetime, datetime]] = []
    for outcome in result.outcomes:
        history = await readable_history(client.get_workflow_handle(outcome.workflow_id))
        trace = build_trace(history)
        assert trace.run.ended_at is not None
        spans.append((trace.run.started_at, trace.run.ended_at))
    overlaps = [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]
    assert max(overlaps) == 2  # two at a time, never three
    assert max(len(p.running) for p in seen) <= 2
    assert seen[-1].done == 5 and seen[-1].passed == 5


async def test_a_long_eval_continues_as_new_between_cases(
    client: Client, config: StewardConfig, task_queue: str
) -> None:
    script = {"model": {"classify": CLASSIFY, "draft": DRAFT}}
    base = request_for(
        suite(*(ticket_case(f"c{i}", script=script) for i in range(8))),
        config,
        task_queue,
        concurrency=1,
    )
    request = EvalRequest.model_validate(base.model_dump() | {"max_history_events": 100})

    result = await run_request(client, config, request, task_queue)

    assert [o.id for o in result.outcomes] == [f"c{i}" for i in range(8)]
    assert all(o.passed for o in result.outcomes)
    last = await readable_history(client.get_workflow_handle(result.eval_id))
    started = last.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id  # the history passed 100 events: it went on anew


async def test_an_eval_history_is_recorded_for_replay(
    client: Client, config: StewardConfig, task_queue: str
) -> None:
    """tests/histories/eval-scripted.json: today's EvalWorkflow must keep replaying it."""
    script = {"model": {"classify": CLASSIFY, "draft": DRAFT}}
    request = request_for(
        suite(
            ticket_case("approved", script=script, expect=[{"status": "completed"}]),
            ticket_case(
                "rejected", script=script, approvals=["reject"], expect=[{"status": "rejected"}]
            ),
        ),
        config,
        task_queue,
        concurrency=2,
    )
    async with eval_workers(
        client, config, task_queue=task_queue, llm=LLMActivities(config.tiers, allow_paid=False)
    ):
        handle, _ = await start_eval(
            client, request, task_queue=task_queue, workflow_id=history_id("eval-scripted")
        )
        result = await handle.result()
        await record_history(handle)
    assert [o.status for o in result.outcomes] == ["completed", "rejected"]
    assert all(o.passed for o in result.outcomes)


async def test_the_same_eval_started_again_attaches_to_the_running_one(
    client: Client, config: StewardConfig, task_queue: str
) -> None:
    script = {"model": {"classify": CLASSIFY, "draft": DRAFT}}
    request = request_for(suite(ticket_case("a", script=script)), config, task_queue)
    first, resumed = await start_eval(client, request, task_queue=task_queue)
    assert not resumed  # no worker yet: it waits, as after a crash
    again, resumed = await start_eval(client, request, task_queue=task_queue)
    assert resumed and again.id == first.id
    assert again.result_run_id == first.result_run_id
    async with eval_workers(
        client, config, task_queue=task_queue, llm=LLMActivities(config.tiers, allow_paid=False)
    ):
        result = await again.result()
        # once it has finished, the same command starts a fresh eval under the same id
        fresh, resumed = await start_eval(client, request, task_queue=task_queue)
        assert not resumed and fresh.result_run_id != first.result_run_id
        await fresh.result()
    assert result.outcomes[0].passed


async def test_the_judge_falls_back_to_its_tiers_next_deployment(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    data = config.model_dump()
    data["tiers"]["judging"] = [{"model": "fake/first"}, {"model": "fake/second"}]
    two = StewardConfig.model_validate(data)
    fake_model.queue_error(provider_error("AuthenticationError", "bad key"))
    fake_model.queue(json.dumps({"score": 4, "reason": "fine"}))
    script = {"model": {"classify": CLASSIFY, "draft": DRAFT}}
    judged_case = ticket_case("a", script=script, expect=[{"llm_judge": "polite"}])
    request = request_for(suite(judged_case, judge_tier="judging"), two, task_queue)

    result = await run_request(client, two, request, task_queue)

    (judged,) = result.outcomes[0].scores
    assert judged.passed and judged.value == 4
    assert [c.model for c in fake_model.calls] == ["fake/first", "fake/second"]
