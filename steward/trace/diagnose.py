"""The one-line diagnosis: which layer made a run fail or end unsuccessfully, and where.

A team asks "was it the prompt, the model provider, a tool, the policy, a human, the
budget, or our orchestration?" This answers from the trace alone, naming the event that
shows it so `temporal workflow show` or the UI can be opened at the right place. A run
that succeeded, or is still going normally, gets no diagnosis.

Where a run failed says which layer to suspect (a model call, a tool call); the error's
type, when it is one of Steward's, says it better, by its layer in the catalogue
(`steward.errors`): a model call that failed on a missing key blames the workers' setup,
not the provider.
"""

from __future__ import annotations

from temporalio.api.failure.v1 import Failure

from steward import errors
from steward.trace.events import error_info
from steward.trace.model import ChildTrace, Diagnosis, ErrorInfo, FailureTrace, Layer, Trace


def diagnose(
    trace: Trace, failure: Failure | None, stuck: FailureTrace | None, detail: str = ""
) -> Diagnosis | None:
    """Why this run did not succeed, or None if it did (or is running without trouble).

    `failure` is the workflow's failure when it failed; `stuck` the last workflow task
    failure when no task completed after it (a non-determinism error looks like this);
    `detail` what the close event adds (timeout kind, who terminated).
    """
    run = trace.run
    if stuck is not None and run.outcome in (None, "completed") and run.status != "completed":
        what = "non-determinism" if "Nondetermin" in stuck.error.message else "a failing task"
        return Diagnosis(
            layer="orchestration",
            summary=f"workflow task failed ({what}): {stuck.error.line()}",
            event_id=stuck.event_id,
        )
    end = run.close_event_id or run.event_count
    if run.status == "completed":
        return _outcome(trace, end)
    if run.status == "failed" and failure is not None:
        return _failed(trace, failure, end)
    summary = {
        "timed_out": f"the workflow timed out ({detail or 'run timeout'})",
        "terminated": f"the workflow was terminated {detail}",
        "canceled": "the workflow was canceled",
    }.get(run.status)
    if summary is None:
        return None
    return Diagnosis(layer="orchestration", summary=summary, event_id=end)


def _outcome(trace: Trace, end: int) -> Diagnosis | None:
    outcome = trace.run.outcome
    if outcome in (None, "completed"):
        return None
    if outcome in ("rejected", "approval_timed_out"):
        wanted = "rejected" if outcome == "rejected" else "timed_out"
        approval = next((a for a in reversed(trace.approvals) if a.status == wanted), None)
        if approval is None:
            return Diagnosis(layer="approval", summary=f"the run ended {outcome}", event_id=end)
        what = f"approval {approval.request_id} ({approval.tool or 'unknown tool'})"
        if wanted == "rejected":
            because = f": {approval.reason}" if approval.reason else ""
            summary = f"{what} was rejected by {approval.approver}{because}"
        else:
            summary = f"{what} timed out: {approval.reason or 'no decision before its deadline'}"
        return Diagnosis(
            layer="approval", summary=summary, event_id=approval.decided_event_id or end
        )
    if outcome == "denied":
        denied = next((t for t in reversed(trace.tool_calls) if t.outcome == "denied"), None)
        summary = (
            f"policy denied {denied.tool} ({denied.call_id}): {denied.reason}" if denied else ""
        )
        return Diagnosis(
            layer="policy", summary=summary or "the policy denied an action", event_id=end
        )
    if outcome == "budget_exceeded":
        refused = next(
            (a for a in trace.approvals if a.tool == "extend_budget" and a.status != "approved"),
            None,
        )
        event_id = refused.decided_event_id if refused and refused.decided_event_id else end
        summary = f"the run stopped on its budget: {trace.run.answer_preview}"
        return Diagnosis(layer="budget", summary=summary, event_id=event_id)
    if outcome == "failed":
        broken = next(
            (t for t in reversed(trace.tool_calls) if t.outcome == "failed" and t.activity),
            None,
        )
        if broken is not None and broken.activity is not None:
            ran = broken.activity
            last = ran.error or (ran.failed_attempts[-1].error if ran.failed_attempts else None)
            return Diagnosis(
                layer=_layer(last, "tool"),
                summary=f"tool {broken.tool} ({broken.call_id}) failed for good "
                f"{_attempts(ran.attempts)}: {broken.reason}",
                event_id=ran.closed_event_id or end,
            )
        child = next((c for c in reversed(trace.children) if c.handoff_failed), None)
        if child is not None:
            summary = (
                f"{_handoff(child)}; then the agent loop ended without an answer: "
                f"{trace.run.answer_preview}"
            )
            return Diagnosis(
                layer="handoff", summary=summary, event_id=child.closed_event_id or end
            )
        summary = f"the agent loop ended without an answer: {trace.run.answer_preview}"
        return Diagnosis(layer="orchestration", summary=summary, event_id=end)
    return Diagnosis(layer="orchestration", summary=f"the run ended {outcome}", event_id=end)


def _failed(trace: Trace, failure: Failure, end: int) -> Diagnosis:
    error = error_info(failure)
    timed_out = error.type.startswith("Timeout")
    info = failure.WhichOneof("failure_info")
    if info == "activity_failure_info":
        scheduled = failure.activity_failure_info.scheduled_event_id
        model = next(
            (c for c in trace.model_calls if c.activity.scheduled_event_id == scheduled), None
        )
        if model is not None:
            attempts = _attempts(model.activity.attempts)
            fell = f", after falling back from {model.fallback_from}" if model.fallback_from else ""
            summary = (
                f"model call {model.step} on tier {model.tier} ({model.model}) failed for good "
                f"{attempts}{fell}: {error.line()}"
            )
            return Diagnosis(
                layer="orchestration" if timed_out else _layer(error, "model_provider"),
                summary=summary,
                event_id=model.activity.closed_event_id or end,
            )
        tool = next(
            (
                t
                for t in trace.tool_calls
                if t.activity is not None and t.activity.scheduled_event_id == scheduled
            ),
            None,
        )
        if tool is not None and tool.activity is not None:
            summary = (
                f"tool {tool.tool} ({tool.call_id}) failed for good "
                f"{_attempts(tool.activity.attempts)}: {error.line()}"
            )
            return Diagnosis(
                layer="orchestration" if timed_out else _layer(error, "tool"),
                summary=summary,
                event_id=tool.activity.closed_event_id or end,
            )
        activity = failure.activity_failure_info.activity_type.name
        summary = f"activity {activity} failed for good: {error.line()}"
        return Diagnosis(layer=_layer(error, "orchestration"), summary=summary, event_id=end)
    if info == "child_workflow_execution_failure_info":
        child_id = failure.child_workflow_execution_failure_info.workflow_execution.workflow_id
        handoff = next(
            (c for c in trace.children if c.workflow_id == child_id and c.specialist), None
        )
        if handoff is not None:
            return Diagnosis(
                layer="handoff",
                summary=f"{_handoff(handoff)}: {error.line()}",
                event_id=handoff.closed_event_id or end,
            )
        child = failure.child_workflow_execution_failure_info.workflow_type.name
        summary = f"child workflow {child} failed: {error.line()}"
        return Diagnosis(layer="orchestration", summary=summary, event_id=end)
    summary = f"the workflow raised {error.line()}"
    return Diagnosis(layer=_layer(error, "orchestration"), summary=summary, event_id=end)


def _layer(error: ErrorInfo | None, otherwise: Layer) -> Layer:
    """The layer of a Steward error type, by the catalogue; `otherwise` for any other."""
    kind = errors.kind(error.type) if error is not None else None
    return kind.layer if kind is not None else otherwise


def _handoff(child: ChildTrace) -> str:
    """How a handoff went wrong: the specialist, its workflow, and its end."""
    if child.state == "completed":
        ended = f"ended {child.outcome}"
        if child.answer_preview:
            ended += f" ({child.answer_preview})"
    else:
        ended = child.state.replace("_", " ")
        if child.error is not None:
            ended += f" ({child.error.line()})"
    return f"handoff to {child.specialist} (child {child.workflow_id}) {ended}"


def _attempts(count: int) -> str:
    return f"after {count} attempt{'s' if count != 1 else ''}"
