"""The trace: every committed history becomes a typed trace whose facts match the run, with
a diagnosis naming the layer when the run went wrong; text, JSON and HTML render it.

Committed histories cover the shapes runs end in (approved, rejected, timed out, escalated,
N-of-M, retried, budget stop and extension, a tool that failed for good). Live runs on the
session server cover decisions by signal (with refusals), fallbacks and a provider that
fails for good; cut and extended histories cover running runs, stuck workflow tasks and
workflow timeouts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import pytest
from temporalio.api.enums.v1 import EventType, RetryState, WorkflowTaskFailedCause
from temporalio.api.failure.v1 import ActivityFailureInfo, ApplicationFailureInfo, Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory

from steward import errors
from steward.config import StewardConfig
from steward.models import ApprovalDecision
from steward.runs import start_run
from steward.trace import Trace, build_trace, render_html, render_json, render_text
from steward.trace.diagnose import diagnose
from steward.trace.model import LAYER_NAMES, ActivityRun, Layer, ModelCall, RunInfo
from tests.support.fake_model import FakeModel, provider_error
from tests.support.histories import readable_history
from tests.support.stack import running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

HISTORIES = Path(__file__).resolve().parent / "histories"


def history(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


def trace_of(name: str) -> Trace:
    return build_trace(history(name))


def event_type(name: str, event_id: int) -> str:
    event = next(e for e in history(name).events if e.event_id == event_id)
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
def test_every_history_traces_and_renders(path: Path) -> None:
    trace = build_trace(WorkflowHistory.from_json(path.stem, path.read_text()))
    assert trace.run.workflow_id == path.stem
    assert trace.run.status != "running" and trace.run.close_event_id is not None
    assert Trace.model_validate_json(render_json(trace)) == trace
    text = render_text(trace)
    assert text.startswith(f"{trace.run.workflow_type} {path.stem}: ")
    for call in trace.model_calls:
        assert f"model {call.step}: tier {call.tier}" in text
    page = render_html(trace)
    assert page.startswith("<!doctype html>") and page.count("<html") == 1
    assert not re.search(r"https?://", page), "the page must not reference anything outside it"
    assert not re.search(r"<(script|link|img|iframe)\b", page, re.I)
    assert "<details" in page and "<style>" in page
    if trace.diagnosis is not None:
        assert text.rstrip().endswith(f"(event {trace.diagnosis.event_id})")


def test_approved_reply() -> None:
    trace = trace_of("support-approved")
    run = trace.run
    assert (run.workflow_type, run.status, run.outcome) == (
        "SupportReplyWorkflow",
        "completed",
        "completed",
    )
    assert (run.principal, run.agent) == ("demo-user", "support-reply")
    assert run.input_summary.startswith("From: Dana Whitfield")
    calls = [(c.step, c.tier, c.input_tokens, c.output_tokens) for c in trace.model_calls]
    assert calls == [("classify", "fast", 85, 4), ("draft", "strong", 94, 18)]
    assert all(c.cost_usd is None and c.activity.attempts == 1 for c in trace.model_calls)
    assert (run.input_tokens, run.output_tokens, run.unpriced_calls) == (179, 22, 2)
    assert trace.model_calls[0].answer_preview == '{"category": "shipping", "urgency": "high"}'
    assert "Order #48213" in trace.model_calls[1].prompt_preview
    (approval,) = trace.approvals
    assert (approval.status, approval.approver, approval.via) == ("approved", "alice", "update")
    assert approval.tool == "send_email" and approval.reason == "looks good"
    assert approval.waited_seconds is not None and 0 < approval.waited_seconds < 5
    assert approval.deadline is not None and approval.decided_event_id == 22
    (tool,) = trace.tool_calls
    assert (tool.tool, tool.decision, tool.outcome) == ("send_email", "approve", "done")
    assert tool.decision_source == "result" and "needs approval" in tool.reason
    assert tool.approval_id == approval.request_id
    assert tool.arguments["to"] == "dana.whitfield@example.com"
    assert tool.activity is not None and tool.activity.task_queue.endswith("-privileged")
    assert trace.diagnosis is None and trace.failures == []
    assert [m.outcome for m in trace.messages] == ["counted; decided support-approved:1"]


def test_rejected_reply_is_diagnosed_as_an_approval_rejection() -> None:
    trace = trace_of("support-rejected")
    assert trace.run.outcome == "rejected"
    (tool,) = trace.tool_calls
    assert (tool.outcome, tool.activity) == ("rejected", None)
    assert trace.diagnosis is not None and trace.diagnosis.layer == "approval"
    assert "rejected by alice: promise of a refund" in trace.diagnosis.summary
    assert event_type("support-rejected", trace.diagnosis.event_id) == (
        "WORKFLOW_EXECUTION_UPDATE_ACCEPTED"
    )


def test_timed_out_approval_is_diagnosed_at_the_timer_that_fired() -> None:
    trace = trace_of("support-timed-out")
    (approval,) = trace.approvals
    assert approval.status == "timed_out" and approval.via == "timeout"
    assert approval.waited_seconds == pytest.approx(86400, abs=1)
    assert trace.diagnosis is not None and trace.diagnosis.layer == "approval"
    assert "timed out: no decision within 86400s" in trace.diagnosis.summary
    assert event_type("support-timed-out", trace.diagnosis.event_id) == "TIMER_FIRED"
    assert "diagnosis: approval: approval support-timed-out:1" in render_text(trace)


def test_retried_model_call_shows_the_failed_attempt() -> None:
    trace = trace_of("agent-model-retried")
    (call,) = trace.model_calls
    assert call.activity.attempts == 2 and call.activity.state == "completed"
    (failed,) = call.activity.failed_attempts
    assert (failed.attempt, failed.error.type) == (1, "ModelRateLimited")
    assert "HTTP 429" in failed.error.message
    assert event_type("agent-model-retried", failed.event_id) == "ACTIVITY_TASK_STARTED"
    (failure,) = trace.failures
    assert failure.where == "model call turn-1 (fake/queued)" and not failure.final
    assert trace.diagnosis is None
    assert "attempt 1 failed: ModelRateLimited" in render_text(trace)


def test_budget_stop_is_diagnosed_as_the_budget() -> None:
    trace = trace_of("agent-budget-stop")
    assert trace.run.outcome == "budget_exceeded"
    assert [c.rule for c in trace.model_calls] == ["plan is hard: difficulty high"] * 2
    assert trace.diagnosis is not None and trace.diagnosis.layer == "budget"
    assert "model calls budget (2 of 2 used)" in trace.diagnosis.summary
    assert trace.diagnosis.event_id == trace.run.close_event_id == 20


def test_budget_extension_is_an_approved_request() -> None:
    trace = trace_of("agent-budget-extended")
    (approval,) = trace.approvals
    assert (approval.tool, approval.status, approval.approver) == (
        "extend_budget",
        "approved",
        "alice",
    )
    assert [c.tier for c in trace.model_calls] == ["strong", "fast"]
    assert "budget nearly spent" in trace.model_calls[1].rule
    assert trace.tool_calls == [] and trace.diagnosis is None


def test_agent_tool_calls_in_order_with_denials_where_the_model_proposed_them() -> None:
    trace = trace_of("agent-approved")
    tools = [(t.tool, t.decision, t.outcome) for t in trace.tool_calls]
    assert tools == [
        ("delete_everything", "deny", "denied"),
        ("send_email", "deny", "denied"),
        ("send_email", "approve", "done"),
    ]
    turns = {c.step: c.activity.closed_event_id for c in trace.model_calls}
    # each denied call sits right after the model call that proposed it, with its arguments
    assert trace.tool_calls[0].event_id == turns["turn-1"]
    assert trace.tool_calls[1].event_id == turns["turn-2"]
    assert trace.tool_calls[1].arguments == {"to": "not-an-address", "subject": "x"}
    assert "invalid arguments" in trace.tool_calls[1].reason
    assert trace.tool_calls[2].approval_id == "agent-approved:1"


def test_tool_that_failed_for_good_is_diagnosed_as_the_tool() -> None:
    trace = trace_of("support-tool-failed")
    assert trace.run.status == "failed" and trace.run.outcome is None
    (tool,) = trace.tool_calls
    assert (tool.decision, tool.decision_source, tool.outcome) == ("approve", "inferred", "failed")
    assert tool.approval_id == "support-tool-failed:1"
    assert tool.activity is not None and tool.activity.retry_state == "non_retryable_failure"
    assert [(a.attempt, a.error.type) for a in tool.activity.failed_attempts] == [
        (1, "RelayBusy"),
        (2, "RecipientRejected"),
    ]
    diagnosis = trace.diagnosis
    assert diagnosis is not None and diagnosis.layer == "tool"
    assert diagnosis.summary.startswith("tool send_email (send-reply) failed for good after 2")
    assert "RecipientRejected: 550 5.1.1" in diagnosis.summary
    assert event_type("support-tool-failed", diagnosis.event_id) == "ACTIVITY_TASK_FAILED"
    assert trace.approvals[0].approver == "alice"


def test_n_of_m_and_escalated_approvals() -> None:
    (both,) = trace_of("support-two-approvers").approvals
    assert both.required == 2 and both.status == "approved"
    assert [(d.approver, d.counted) for d in both.decisions] == [
        ("alice", True),
        ("demo-approver", True),
    ]
    (escalated,) = trace_of("support-escalated").approvals
    assert escalated.approver == "carol" and escalated.status == "approved"
    assert escalated.approvers == ["alice", "bob", "demo-approver"]
    assert len(escalated.escalations) == 1 and "escalated to carol" in escalated.escalations[0]
    assert len(escalated.notifications) == 2
    assert escalated.refused == []


def test_a_running_history_has_a_pending_approval_and_no_diagnosis() -> None:
    full = history("support-approved")
    running = build_trace(WorkflowHistory(full.workflow_id, list(full.events[:19])))
    assert running.run.status == "running" and running.run.ended_at is None
    (approval,) = running.approvals
    assert approval.status == "pending" and approval.decided_at is None
    assert running.tool_calls == [] and len(running.model_calls) == 2
    assert running.diagnosis is None
    assert "pending since" in render_text(running)


def _extended(name: str, count: int, extra: HistoryEvent) -> WorkflowHistory:
    full = history(name)
    events = list(full.events[:count])
    extra.event_id = count + 1
    extra.event_time.CopyFrom(events[-1].event_time)
    return WorkflowHistory(full.workflow_id, [*events, extra])


def test_a_stuck_workflow_task_is_diagnosed_as_non_determinism() -> None:
    failed = HistoryEvent(event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    attrs = failed.workflow_task_failed_event_attributes
    attrs.cause = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
    attrs.failure.message = (
        "[TMPRL1100] Nondeterminism error: Timer machine does not handle this event: "
        "HistoryEvent(id: 5, ActivityTaskScheduled)"
    )
    trace = build_trace(_extended("support-approved", 3, failed))
    assert trace.run.status == "running"
    assert trace.diagnosis is not None and trace.diagnosis.layer == "orchestration"
    assert "non-determinism" in trace.diagnosis.summary and trace.diagnosis.event_id == 4
    assert trace.failures[0].where == "workflow task"


def test_a_workflow_timeout_is_diagnosed_as_orchestration() -> None:
    timed_out = HistoryEvent(event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT)
    timed_out.workflow_execution_timed_out_event_attributes.retry_state = (
        RetryState.RETRY_STATE_TIMEOUT
    )
    trace = build_trace(_extended("support-approved", 19, timed_out))
    assert trace.run.status == "timed_out" and trace.approvals[0].status == "pending"
    assert trace.diagnosis is not None and trace.diagnosis.layer == "orchestration"
    assert "timed out" in trace.diagnosis.summary and trace.diagnosis.event_id == 20


def test_child_workflows_are_listed_with_how_they_ended() -> None:
    started = HistoryEvent(event_type=EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)
    started.start_child_workflow_execution_initiated_event_attributes.workflow_id = "kid-1"
    started.start_child_workflow_execution_initiated_event_attributes.workflow_type.name = (
        "ResearchWorkflow"
    )
    partial = _extended("support-approved", 19, started)
    failed = HistoryEvent(event_type=EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED)
    attrs = failed.child_workflow_execution_failed_event_attributes
    attrs.initiated_event_id = 20
    attrs.failure.message = "no sources found"
    attrs.failure.application_failure_info.type = "NoSources"
    failed.event_id = 21
    failed.event_time.CopyFrom(started.event_time)
    trace = build_trace(WorkflowHistory(partial.workflow_id, [*partial.events, failed]))
    (child,) = trace.children
    assert (child.workflow_type, child.workflow_id, child.state) == (
        "ResearchWorkflow",
        "kid-1",
        "failed",
    )
    assert child.error is not None and child.error.line() == "NoSources: no sources found"
    assert "[20] child workflow ResearchWorkflow kid-1: failed" in render_text(trace)


async def test_signal_decisions_show_what_counted_and_what_was_refused(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)

        def decision(approver: str, **changes: Any) -> ApprovalDecision:
            fields = {"request_id": request.id, "args_digest": request.args_digest}
            return ApprovalDecision.model_validate(
                fields | {"approver": approver, "approve": True} | changes
            )

        for bad in (
            decision("mallory"),
            decision("demo-user"),
            decision("alice", args_digest="0" * 16),
        ):
            await handle.signal("decide", bad)
        await handle.signal("decide", decision("alice", reason="ok by me"))
        await handle.result()
        trace = build_trace(await readable_history(handle))

    (approval,) = trace.approvals
    assert (approval.status, approval.approver, approval.via) == ("approved", "alice", "signal")
    refused = {d.approver: d.refused for d in approval.refused}
    assert "is not an allowed approver" in refused["mallory"]
    assert "requested this action" in refused["demo-user"]
    assert "digest does not match" in refused["alice"]
    counted = [d for d in approval.decisions if d.counted]
    assert [(d.approver, d.reason) for d in counted] == [("alice", "ok by me")]
    assert approval.decided_event_id == counted[0].event_id
    assert [m.kind for m in trace.messages] == ["signal"] * 4
    assert sum(m.outcome.startswith("refused") for m in trace.messages) == 3
    assert "refused: 'mallory' is not an allowed approver" in render_text(trace)


async def test_fallback_and_a_provider_failing_for_good(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    tiers = {name: [{"model": "fake/primary"}, {"model": "fake/backup"}] for name in config.tiers}
    config = StewardConfig.model_validate(config.model_dump() | {"tiers": tiers})
    fake_model.queue_error(provider_error("AuthenticationError", "key revoked"))
    fake_model.queue_error(provider_error("AuthenticationError", "key revoked too"))
    task = "<script>alert('x')</script> what is the status?"
    async with running_workers(client, config, task_queue):
        handle = await start_run(client, config, "helpdesk", task, "dana", task_queue=task_queue)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        trace = build_trace(await readable_history(handle))

    first, second = trace.model_calls
    assert (first.model, first.deployment, first.fallback_to) == ("fake/primary", 0, "fake/backup")
    assert (second.model, second.deployment, second.fallback_from) == (
        "fake/backup",
        1,
        "fake/primary",
    )
    assert [c.activity.failed_attempts[0].error.type for c in trace.model_calls] == [
        "ModelAuthError"
    ] * 2
    diagnosis = trace.diagnosis
    assert diagnosis is not None and diagnosis.layer == "model_provider"
    assert (
        "fake/backup" in diagnosis.summary and "falling back from fake/primary" in diagnosis.summary
    )
    assert diagnosis.event_id == second.activity.closed_event_id
    text = render_text(trace)
    assert "fell back to fake/backup" in text and "fallback from fake/primary" in text
    # the task is untrusted text: the page shows it, escaped, and runs nothing
    assert "<script>" in first.prompt_preview
    page = render_html(trace)
    assert "<script" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)" in page


# --- the layer an error's type names ---------------------------------------------------


def _failed_run(*calls: ModelCall) -> Trace:
    started = datetime(2025, 1, 1, tzinfo=UTC)
    run = RunInfo(
        workflow_type="AgentWorkflow",
        workflow_id="w-1",
        status="failed",
        started_at=started,
        event_count=12,
        close_event_id=12,
    )
    return Trace(run=run, model_calls=list(calls))


def _raised(error_type: str) -> Failure:
    return Failure(
        message="it broke", application_failure_info=ApplicationFailureInfo(type=error_type)
    )


@pytest.mark.parametrize(
    ("error_type", "layer"),
    [
        ("BadInput", "input"),
        ("UnsignedStart", "input"),
        ("EmptyDraft", "model_output"),
        ("BadDraft", "model_output"),
        ("NotGranted", "authority"),
        ("PayloadTooLarge", "infrastructure"),
        ("SomethingOfOurOwn", "orchestration"),
    ],
)
def test_a_workflow_that_raised_is_blamed_on_its_errors_layer(error_type: str, layer: str) -> None:
    diagnosis = diagnose(_failed_run(), _raised(error_type), None)
    assert diagnosis is not None and diagnosis.layer == layer
    assert diagnosis.summary == f"the workflow raised {error_type}: it broke"


@pytest.mark.parametrize(
    ("error_type", "layer"),
    [
        ("ModelRateLimited", "model_provider"),
        ("MissingCredential", "infrastructure"),
        ("ModelBadResponse", "model_output"),
        ("PaidModelRefused", "authority"),
        ("ProviderSaidNo", "model_provider"),
    ],
)
def test_a_model_call_that_failed_is_blamed_on_its_errors_layer(
    error_type: str, layer: str
) -> None:
    activity = ActivityRun(
        activity_type="complete",
        activity_id="1",
        task_queue="q",
        scheduled_event_id=5,
        scheduled_at=datetime(2025, 1, 1, tzinfo=UTC),
        state="failed",
        attempts=1,
    )
    call = ModelCall(step="turn-1", tier="fast", model="fake/one", activity=activity)
    failure = Failure(
        message="activity failed",
        activity_failure_info=ActivityFailureInfo(scheduled_event_id=5),
        cause=_raised(error_type),
    )
    diagnosis = diagnose(_failed_run(call), failure, None)
    assert diagnosis is not None and diagnosis.layer == layer
    assert diagnosis.summary.startswith("model call turn-1 on tier fast (fake/one) failed")


def test_every_layer_has_a_name() -> None:
    layers = {value for part in get_args(Layer) for value in get_args(part)}
    assert set(errors.LAYERS) <= layers
    assert layers == set(LAYER_NAMES)


@pytest.mark.parametrize("name", ["support-approved-workers-decide", "support-approved-current"])
def test_the_trace_says_whose_config_decided_from_the_activity_or_its_local_marker(
    name: str,
) -> None:
    # Runs since CURRENT_PATCH resolve in a local activity (a marker), earlier ones in an
    # activity: either way the trace reads the workers' answer.
    trace = trace_of(name)
    assert trace.run.config_digest
    assert f"resolved by the workers' config {trace.run.config_digest}" in render_text(trace)
