"""Activities in a history, joined into the model calls and tool calls of a run.

Each attempt to call a model deployment is one `complete` activity; a deployment that
fails for good is followed by one on the tier's next deployment, and the trace links the
two as a fallback. Tool calls come from two places: tool activities (what ran, with its
validated arguments and result) and the run's recorded actions (the policy's decision and
reason, including calls that were denied or never approved and so never ran). A run with
no result yet (running or failed) has no recorded actions; then the decision is inferred:
a tool that ran right after an approval closed was approved, any other was allowed.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from temporalio.api.enums.v1 import RetryState
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent

from steward.models import (
    LLMRequest,
    LLMResult,
    Routing,
    RunResult,
    ToolInvocation,
    ToolResult,
    args_digest,
)
from steward.trace.events import error_info, event_time, first, last_user_message, preview, typed
from steward.trace.model import (
    ActivityRun,
    ApprovalTrace,
    FailedAttempt,
    FailureTrace,
    ModelCall,
    ToolCallTrace,
)

MODEL_ACTIVITY = "complete"
"""The activity name of `LLMActivities.complete`; every model call is one of these."""

_OUTCOMES = {"completed": "done", "failed": "failed", "timed_out": "failed", "canceled": "canceled"}

State = Literal["scheduled", "started", "completed", "failed", "timed_out", "canceled"]


class ActivityLog:
    """Activities as history tells them, keyed by their scheduled event id."""

    def __init__(self) -> None:
        self.runs: dict[int, ActivityRun] = {}
        self.inputs: dict[int, Any] = {}
        self.results: dict[int, Any] = {}
        self.scheduled_in: dict[int, int] = {}  # scheduled event -> its workflow task

    def scheduled(self, event: HistoryEvent) -> None:
        """ACTIVITY_TASK_SCHEDULED: what was asked, on which queue, in which workflow task."""
        attrs = event.activity_task_scheduled_event_attributes
        self.runs[event.event_id] = ActivityRun(
            activity_type=attrs.activity_type.name,
            activity_id=attrs.activity_id,
            task_queue=attrs.task_queue.name,
            scheduled_event_id=event.event_id,
            scheduled_at=event_time(event.event_time),
        )
        self.inputs[event.event_id] = first(attrs.input)
        self.scheduled_in[event.event_id] = attrs.workflow_task_completed_event_id

    def started(self, event: HistoryEvent) -> None:
        """ACTIVITY_TASK_STARTED: written once, for the last attempt, with the failure before."""
        attrs = event.activity_task_started_event_attributes
        run = self.runs.get(attrs.scheduled_event_id)
        if run is None:  # a partial history: its scheduling event is not in it
            return
        run.state, run.attempts = "started", attrs.attempt
        if attrs.HasField("last_failure"):
            error = error_info(attrs.last_failure)
            run.failed_attempts.append(
                FailedAttempt(attempt=attrs.attempt - 1, error=error, event_id=event.event_id)
            )

    def closed(
        self,
        event: HistoryEvent,
        scheduled: int,
        state: State,
        *,
        result: Any = None,
        failure: Failure | None = None,
        retry_state: int = 0,
    ) -> None:
        """ACTIVITY_TASK_COMPLETED, _FAILED, _TIMED_OUT or _CANCELED."""
        run = self.runs.get(scheduled)
        if run is None:
            return
        run.state, run.closed_event_id = state, event.event_id
        run.closed_at = event_time(event.event_time)
        if state != "canceled":
            run.attempts = max(run.attempts, 1)
        self.results[scheduled] = result
        if failure is not None:
            run.error = error_info(failure)
            run.failed_attempts.append(
                FailedAttempt(attempt=run.attempts, error=run.error, event_id=event.event_id)
            )
            name = RetryState.Name(RetryState.ValueType(retry_state))
            run.retry_state = name.removeprefix("RETRY_STATE_").lower()

    def model_calls(self, deployments: dict[str, list[str]]) -> list[ModelCall]:
        """Every `complete` activity as a model call, with fallbacks linked."""
        calls: list[ModelCall] = []
        for scheduled, run in self.runs.items():
            request = typed(LLMRequest, self.inputs[scheduled])
            if run.activity_type != MODEL_ACTIVITY or request is None:
                continue
            result = typed(LLMResult, self.results.get(scheduled))
            names = deployments.get(request.tier, [])
            planned = names[request.deployment] if request.deployment < len(names) else "?"
            calls.append(
                ModelCall(
                    step=request.step,
                    tier=request.tier,
                    rule=request.rule,
                    deployment=request.deployment,
                    model=result.model if result else planned,
                    prompt_preview=preview(last_user_message(request.messages)),
                    answer_preview=preview(result.text) if result else "",
                    path=result.path if result else "",
                    tool_calls=[c.name for c in result.tool_calls] if result else [],
                    routed=_routed(result.routed) if result and result.routed else "",
                    input_tokens=result.usage.input_tokens if result else None,
                    output_tokens=result.usage.output_tokens if result else None,
                    cost_usd=result.usage.cost_usd if result else None,
                    latency_ms=result.latency_ms if result else None,
                    activity=run,
                )
            )
        for index, call in enumerate(calls):
            if call.activity.state in ("failed", "timed_out"):
                nxt = (call.step, call.tier, call.deployment + 1)
                later = next(
                    (c for c in calls[index + 1 :] if (c.step, c.tier, c.deployment) == nxt), None
                )
                if later is not None:
                    call.fallback_to, later.fallback_from = later.model, call.model
        return calls

    def tool_calls(
        self,
        calls: list[ModelCall],
        approvals: list[ApprovalTrace],
        closed_in: dict[str, int],
        result: RunResult | None,
        end_event_id: int,
    ) -> list[ToolCallTrace]:
        """Tool calls in timeline order: the run's actions joined to the activities that ran."""
        ran = [
            (scheduled, invocation)
            for scheduled, value in self.inputs.items()
            if (invocation := typed(ToolInvocation, value)) is not None
        ]
        proposed = self._proposed(calls)
        waiting = list(approvals)
        tools: list[ToolCallTrace] = []
        for action in result.actions if result else []:
            found = next(((s, i) for s, i in ran if i.call.id == action.call_id), None)
            approval = None
            if action.decision == "approve":
                approval = next((a for a in waiting if a.tool == action.tool), None)
            if approval is not None:
                waiting.remove(approval)
            event_id, arguments = proposed.get(action.args_digest, (end_event_id, {}))
            trace = ToolCallTrace(
                event_id=event_id,
                call_id=action.call_id,
                tool=action.tool,
                arguments=arguments,
                decision=action.decision,
                reason=action.reason,
                outcome=action.outcome,
                output=action.output,
                approval_id=approval.request_id if approval else None,
                guardrails=[verdict.line() for verdict in action.guardrails],
            )
            if approval is not None:
                trace.event_id = approval.decided_event_id or approval.requested_event_id
                trace.arguments = trace.arguments or approval.arguments
            if found is not None:
                ran.remove(found)
                self._ran(trace, *found)
            tools.append(trace)
        for scheduled, invocation in ran:  # no recorded action: the run has not ended well
            task = self.scheduled_in[scheduled]
            approval = next((a for a in waiting if closed_in.get(a.request_id) == task), None)
            trace = ToolCallTrace(
                event_id=scheduled,
                call_id=invocation.call.id,
                tool=invocation.call.tool,
                decision="approve" if approval else "allow",
                reason=(
                    f"it ran once approval {approval.request_id} was {approval.status}"
                    if approval
                    else "it ran without waiting for an approval"
                ),
                decision_source="inferred",
                approval_id=approval.request_id if approval else None,
            )
            self._ran(trace, scheduled, invocation)
            trace.outcome = _OUTCOMES.get(self.runs[scheduled].state, "running")
            tools.append(trace)
        return sorted(tools, key=lambda t: t.event_id)

    def _ran(self, trace: ToolCallTrace, scheduled: int, invocation: ToolInvocation) -> None:
        trace.event_id = scheduled
        trace.activity = self.runs[scheduled]
        trace.arguments = invocation.call.arguments
        trace.idempotency_key = invocation.idempotency_key
        output = typed(ToolResult, self.results.get(scheduled))
        if output is not None:
            trace.output = output.output

    def _proposed(self, calls: list[ModelCall]) -> dict[str, tuple[int, dict[str, Any]]]:
        """Tool calls the model proposed, by argument digest: where each came from.

        The agent loop's answers are `{"action": TOOL, "arguments": {...}}`; a call the
        policy denied never ran, so its arguments are found here.
        """
        proposed: dict[str, tuple[int, dict[str, Any]]] = {}
        for call in calls:
            result = typed(LLMResult, self.results.get(call.activity.scheduled_event_id))
            if result is None or call.activity.closed_event_id is None:
                continue
            try:
                answer = json.loads(result.text)
            except ValueError:
                continue
            if not isinstance(answer, dict) or not isinstance(answer.get("arguments"), dict):
                continue
            if isinstance(answer.get("action"), str):
                digest = args_digest(answer["action"], answer["arguments"])
                proposed.setdefault(digest, (call.activity.closed_event_id, answer["arguments"]))
        return proposed

    def failures(self, names: dict[int, str]) -> list[FailureTrace]:
        """Every failed attempt of every activity, named by what the activity was for."""
        return [
            FailureTrace(
                event_id=attempt.event_id,
                where=names.get(scheduled, f"activity {run.activity_type}"),
                error=attempt.error,
                attempt=attempt.attempt,
                final=attempt.event_id == run.closed_event_id,
            )
            for scheduled, run in self.runs.items()
            for attempt in run.failed_attempts
        ]

    def notes(self) -> list[str]:
        """What history cannot show about retries, said once per activity."""
        notes = []
        for run in self.runs.values():
            described = {a.attempt for a in run.failed_attempts}
            unseen = [n for n in range(1, run.attempts) if n not in described]
            if unseen:
                notes.append(
                    f"{run.activity_type} (event {run.scheduled_event_id}): attempt(s) "
                    f"{', '.join(map(str, unseen))} failed too; history keeps only the last "
                    "failure before the final attempt"
                )
        return notes


def _routed(routing: Routing) -> str:
    if routing.similarity is None:
        return routing.tool
    return f"{routing.tool} (similarity {routing.similarity:.2f})"
