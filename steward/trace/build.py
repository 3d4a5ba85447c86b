"""History -> Trace: one pass over the events, then the pieces are joined up.

The pass hands activity events to `ActivityLog` (model and tool calls), search-attribute
changes, signals and updates to `ApprovalLog` (approvals and decisions), and keeps the rest
here: the run's start and close, patches, workflow task failures (where non-determinism
shows), timers and child workflows. Joining and the diagnosis come last, because a
decision or a failure is only understood once the whole history has been read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import RetryState, WorkflowTaskFailedCause
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from steward import search_attributes as sa
from steward.models import LegacyRunRequest, ResolvedRun, RunRequest, RunResult
from steward.trace.approvals import ApprovalLog
from steward.trace.calls import ActivityLog
from steward.trace.diagnose import diagnose
from steward.trace.events import (
    decode,
    error_info,
    event_time,
    first,
    indexed,
    kind,
    local_activity,
    preview,
    typed,
)
from steward.trace.events import seconds as to_seconds
from steward.trace.model import ChildTrace, ErrorInfo, FailureTrace, RunInfo, TimerTrace, Trace

_CLOSED = {
    "WORKFLOW_EXECUTION_COMPLETED": "completed",
    "WORKFLOW_EXECUTION_FAILED": "failed",
    "WORKFLOW_EXECUTION_TIMED_OUT": "timed_out",
    "WORKFLOW_EXECUTION_TERMINATED": "terminated",
    "WORKFLOW_EXECUTION_CANCELED": "canceled",
    "WORKFLOW_EXECUTION_CONTINUED_AS_NEW": "continued_as_new",
}
_CHILD = "CHILD_WORKFLOW_EXECUTION_"


STREAM_PUBLISH = "__temporal_workflow_stream_publish"
"""The signal by which a model activity streams text to the run's event stream."""


def build_trace(history: WorkflowHistory) -> Trace:
    """The typed trace of one run's history: running, completed, failed or timed out.

    Pure: payloads are decoded with the pydantic data converter; nothing is fetched. An
    encrypted history is decrypted first (`steward.decoding.decode_history`).
    """
    return _Builder(history).build()


class _Builder:
    def __init__(self, history: WorkflowHistory) -> None:
        self.history = history
        self.run = RunInfo(
            workflow_type="?",
            workflow_id=history.workflow_id,
            started_at=datetime.fromtimestamp(0, UTC),
        )
        self.deployments: dict[str, list[str]] = {}
        self.activities = ActivityLog()
        self.approvals = ApprovalLog()
        self.timers: dict[str, TimerTrace] = {}
        self.children: dict[int, ChildTrace] = {}
        self.failures: list[FailureTrace] = []
        self.stuck: FailureTrace | None = None
        self.result: RunResult | None = None
        self.close_failure: Failure | None = None
        self.close_detail = ""
        self.streamed = 0

    def build(self) -> Trace:
        for event in self.history.events:
            self._read(event)
        self.run.event_count = len(self.history.events)
        model_calls = self.activities.model_calls(self.deployments)
        approvals, messages = self.approvals.resolve(
            self.result, self.run.principal, self.activities.runs
        )
        end = self.run.close_event_id or len(self.history.events)
        tools = self.activities.tool_calls(
            model_calls, approvals, self.approvals.closed_in, self.result, end
        )
        names = {
            c.activity.scheduled_event_id: f"model call {c.step} ({c.model})" for c in model_calls
        }
        names.update(
            {
                t.activity.scheduled_event_id: f"tool {t.tool} ({t.call_id})"
                for t in tools
                if t.activity is not None
            }
        )
        names.update({s: f"notice to approvers of {r}" for s, r in self.approvals.notices.items()})
        answered = [c for c in model_calls if c.activity.state == "completed"]
        self.run.input_tokens = sum(c.input_tokens or 0 for c in answered)
        self.run.output_tokens = sum(c.output_tokens or 0 for c in answered)
        self.run.unpriced_calls = sum(1 for c in answered if c.cost_usd is None)
        priced = [c.cost_usd for c in answered if c.cost_usd is not None]
        # An unpriced call is not free: with no priced call the cost is unknown, not zero.
        self.run.cost_usd = sum(priced) if priced or not answered else None
        trace = Trace(
            run=self.run,
            model_calls=model_calls,
            tool_calls=tools,
            approvals=approvals,
            messages=messages,
            timers=list(self.timers.values()),
            children=list(self.children.values()),
            activities=[a for s, a in self.activities.runs.items() if s not in names],
            failures=sorted(
                self.activities.failures(names) + self.failures, key=lambda f: f.event_id
            ),
            notes=[
                *self.activities.notes(),
                *(
                    [f"streamed text reached watchers in {self.streamed} signal(s)"]
                    if self.streamed
                    else []
                ),
            ],
        )
        trace.diagnosis = diagnose(trace, self.close_failure, self.stuck, self.close_detail)
        return trace

    def _read(self, event: HistoryEvent) -> None:
        name = kind(event)
        if name.startswith(_CHILD):
            self._child(event, name.removeprefix(_CHILD).lower())
        handler = getattr(self, f"_on_{name.lower()}", None)
        if handler is not None:
            handler(event)
        if name in _CLOSED:
            self.run.status = _CLOSED[name]
            self.run.close_event_id = event.event_id
            self.run.ended_at = event_time(event.event_time)
            self.run.duration_seconds = (self.run.ended_at - self.run.started_at).total_seconds()

    # --- the run --------------------------------------------------------------------

    def _on_workflow_execution_started(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_started_event_attributes
        value = first(attrs.input)
        request = typed(RunRequest, value)
        legacy = typed(LegacyRunRequest, value) if request is None else None
        given = request or legacy
        self.run = RunInfo(
            workflow_type=attrs.workflow_type.name,
            workflow_id=attrs.workflow_id or self.history.workflow_id,
            run_id=attrs.original_execution_run_id or self.history.run_id,
            task_queue=attrs.task_queue.name,
            started_at=event_time(event.event_time),
            input_summary=preview(given.input if given else value),
            principal=given.principal if given else "",
            agent=request.target if request else legacy.profile.name if legacy else "",
        )
        if legacy is not None:
            self.deployments = legacy.profile.deployments
        principal = indexed(attrs.search_attributes.indexed_fields).get(sa.PRINCIPAL.name)
        if not self.run.principal and isinstance(principal, str):
            self.run.principal = principal

    def _on_workflow_execution_completed(self, event: HistoryEvent) -> None:
        value = first(event.workflow_execution_completed_event_attributes.result)
        self.result = typed(RunResult, value)
        if isinstance(value, dict):
            self.run.outcome = str(value.get("status", "")) or None
            self.run.answer_preview = preview(value.get("answer", ""))

    def _on_workflow_execution_failed(self, event: HistoryEvent) -> None:
        self.close_failure = event.workflow_execution_failed_event_attributes.failure
        error = error_info(self.close_failure)
        self.failures.append(
            FailureTrace(event_id=event.event_id, where="workflow", error=error, final=True)
        )

    def _on_workflow_execution_timed_out(self, event: HistoryEvent) -> None:
        state = event.workflow_execution_timed_out_event_attributes.retry_state
        self.close_detail = RetryState.Name(state).removeprefix("RETRY_STATE_").lower()

    def _on_workflow_execution_terminated(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_terminated_event_attributes
        self.close_detail = f"by {attrs.identity or 'someone'}: {attrs.reason or 'no reason given'}"

    def _on_workflow_execution_continued_as_new(self, event: HistoryEvent) -> None:
        new_run = event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        self.close_detail = f"continued as new run {new_run}"

    def _on_marker_recorded(self, event: HistoryEvent) -> None:
        local = local_activity(event)
        if local is not None:
            self._resolved(first(local[1]))  # resolve_run, a local activity since CURRENT_PATCH
            return
        data = event.marker_recorded_event_attributes.details.get("patch-data")
        patch = decode(data.payloads[0]) if data is not None and data.payloads else None
        if isinstance(patch, dict) and isinstance(patch.get("id"), str):
            self.run.patches.append(patch["id"])

    # --- workflow tasks: where non-determinism and worker trouble show ---------------

    def _on_workflow_task_completed(self, event: HistoryEvent) -> None:
        self.stuck = None

    def _on_workflow_task_failed(self, event: HistoryEvent) -> None:
        attrs = event.workflow_task_failed_event_attributes
        cause = WorkflowTaskFailedCause.Name(attrs.cause).removeprefix(
            "WORKFLOW_TASK_FAILED_CAUSE_"
        )
        error = error_info(attrs.failure) if attrs.HasField("failure") else None
        if error is None or cause == "NON_DETERMINISTIC_ERROR":
            label = "".join(part.title() for part in cause.split("_")).removesuffix("Error")
            error = ErrorInfo(type=label, message=error.message if error else cause.lower())
        self._task_problem(event, error)

    def _on_workflow_task_timed_out(self, event: HistoryEvent) -> None:
        message = "no worker completed the workflow task in time"
        self._task_problem(event, ErrorInfo(type="Timeout(WORKFLOW_TASK)", message=message))

    def _task_problem(self, event: HistoryEvent, error: ErrorInfo) -> None:
        self.stuck = FailureTrace(event_id=event.event_id, where="workflow task", error=error)
        self.failures.append(self.stuck)

    # --- activities, approvals and messages ------------------------------------------

    def _on_activity_task_scheduled(self, event: HistoryEvent) -> None:
        self.activities.scheduled(event)
        self.approvals.notice(event.event_id, self.activities.inputs[event.event_id])

    def _on_activity_task_started(self, event: HistoryEvent) -> None:
        self.activities.started(event)

    def _on_activity_task_completed(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_completed_event_attributes
        result = first(attrs.result)
        self.activities.closed(event, attrs.scheduled_event_id, "completed", result=result)
        self._resolved(result)

    def _resolved(self, result: object) -> None:
        resolved = typed(ResolvedRun, result)
        if resolved is not None:
            # The workers' answer to what this run may do: its tiers and config digest.
            self.deployments = resolved.profile.deployments
            self.run.config_digest = resolved.config_digest
            self.run.principal_verified = resolved.principal_verified

    def _on_activity_task_failed(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_failed_event_attributes
        self.activities.closed(
            event,
            attrs.scheduled_event_id,
            "failed",
            failure=attrs.failure,
            retry_state=attrs.retry_state,
        )

    def _on_activity_task_timed_out(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_timed_out_event_attributes
        self.activities.closed(
            event,
            attrs.scheduled_event_id,
            "timed_out",
            failure=attrs.failure,
            retry_state=attrs.retry_state,
        )

    def _on_activity_task_canceled(self, event: HistoryEvent) -> None:
        scheduled = event.activity_task_canceled_event_attributes.scheduled_event_id
        self.activities.closed(event, scheduled, "canceled")

    def _on_upsert_workflow_search_attributes(self, event: HistoryEvent) -> None:
        attrs = event.upsert_workflow_search_attributes_event_attributes
        values = indexed(attrs.search_attributes.indexed_fields)
        self.approvals.search_attributes(event, values, attrs.workflow_task_completed_event_id)

    def _on_workflow_execution_signaled(self, event: HistoryEvent) -> None:
        if event.workflow_execution_signaled_event_attributes.signal_name == STREAM_PUBLISH:
            # Streamed text for the run's watchers: not a message to the run itself.
            self.streamed += 1
            return
        self.approvals.signal(event)

    def _on_workflow_execution_update_accepted(self, event: HistoryEvent) -> None:
        self.approvals.update_accepted(event)

    def _on_workflow_execution_update_completed(self, event: HistoryEvent) -> None:
        self.approvals.update_completed(event)

    # --- timers and child workflows ---------------------------------------------------

    def _on_timer_started(self, event: HistoryEvent) -> None:
        attrs = event.timer_started_event_attributes
        timer = TimerTrace(
            timer_id=attrs.timer_id,
            event_id=event.event_id,
            started_at=event_time(event.event_time),
            seconds=to_seconds(attrs.start_to_fire_timeout),
        )
        self.timers[attrs.timer_id] = timer
        self.approvals.timer_started(timer)

    def _on_timer_fired(self, event: HistoryEvent) -> None:
        self._timer_closed(event, event.timer_fired_event_attributes.timer_id, "fired")

    def _on_timer_canceled(self, event: HistoryEvent) -> None:
        self._timer_closed(event, event.timer_canceled_event_attributes.timer_id, "canceled")

    def _timer_closed(self, event: HistoryEvent, timer_id: str, state: Any) -> None:
        timer = self.timers.get(timer_id)
        if timer is not None:
            timer.state, timer.closed_event_id = state, event.event_id
            timer.closed_at = event_time(event.event_time)

    def _on_start_child_workflow_execution_initiated(self, event: HistoryEvent) -> None:
        attrs = event.start_child_workflow_execution_initiated_event_attributes
        given = first(attrs.input)  # a handoff: the specialist's run
        request = typed(RunRequest, given)
        legacy = typed(LegacyRunRequest, given) if request is None else None
        self.children[event.event_id] = ChildTrace(
            workflow_type=attrs.workflow_type.name,
            workflow_id=attrs.workflow_id,
            initiated_event_id=event.event_id,
            specialist=request.target if request else legacy.profile.name if legacy else None,
        )

    def _on_start_child_workflow_execution_failed(self, event: HistoryEvent) -> None:
        attrs = event.start_child_workflow_execution_failed_event_attributes
        child = self.children.get(attrs.initiated_event_id)
        if child is not None:
            child.state, child.closed_event_id = "start_failed", event.event_id

    def _child(self, event: HistoryEvent, state: str) -> None:
        # Every child event (started, completed, failed, ...) names the initiating event.
        attrs = getattr(event, f"child_workflow_execution_{state}_event_attributes")
        child = self.children.get(attrs.initiated_event_id)
        if child is None:
            return
        child.state = state
        if state != "started":
            child.closed_event_id = event.event_id
        if state == "failed":
            child.error = error_info(attrs.failure)
        if state == "completed":
            value = first(attrs.result)
            if isinstance(value, dict):
                child.outcome = str(value.get("status", "")) or None
                child.answer_preview = preview(value.get("answer", ""))
