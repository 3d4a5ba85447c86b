"""The typed trace of one run: what `steward trace` shows and what `--json` prints.

A Temporal history is a flat list of events; a person debugging a run asks other
questions: which model calls ran, on which tier, what they cost, which tools acted and
why the policy let them, who approved, what failed and in which layer. These models are
the answers, built from history by `steward.trace.build` and rendered by
`steward.trace.render`. They are plain data so the JSON form round-trips and other tools
(evals, dashboards) can read it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from steward import errors

Layer = errors.Layer | Literal["policy", "budget", "orchestration", "handoff"]
"""Which part of the stack a diagnosis blames: an error's layer from the catalogue
(`steward.errors`), or one read from how the run went (a denial, the budget, a handoff,
Temporal itself)."""
LAYER_NAMES: dict[str, str] = {
    "model_provider": "model provider",
    "model_output": "model output",
    "tool": "tool",
    "policy": "policy denial",
    "approval": "approval",
    "budget": "budget",
    "orchestration": "orchestration",
    "input": "input",
    "handoff": "handoff",
    "authority": "authority",
    "retrieval": "retrieval",
    "infrastructure": "infrastructure",
    "eval": "eval",
}


class ErrorInfo(BaseModel):
    """A failure as history records it: its type and message.

    The type is the ApplicationError's type, or the kind of timeout or cancellation.
    """

    type: str
    message: str
    non_retryable: bool = False

    def line(self) -> str:
        """`Type: message` on one line."""
        return f"{self.type}: {' '.join(self.message.split())}"


class FailedAttempt(BaseModel):
    """One failed attempt of an activity and the event that shows it."""

    attempt: int
    error: ErrorInfo
    event_id: int


class ActivityRun(BaseModel):
    """An activity from scheduling to its close, with the attempts history kept.

    Temporal stores only the last failure before the final attempt, so with `attempts`
    at 4 the failures of attempts 1 and 2 are counted but not described.
    """

    activity_type: str
    activity_id: str
    task_queue: str
    scheduled_event_id: int
    scheduled_at: datetime
    closed_event_id: int | None = None
    closed_at: datetime | None = None
    state: Literal["scheduled", "started", "completed", "failed", "timed_out", "canceled"] = (
        "scheduled"
    )
    attempts: int = 0
    failed_attempts: list[FailedAttempt] = Field(default_factory=list)
    error: ErrorInfo | None = None
    retry_state: str | None = None

    @property
    def duration_ms(self) -> float | None:
        """Milliseconds from scheduling to close, retries and backoff included."""
        if self.closed_at is None:
            return None
        return (self.closed_at - self.scheduled_at).total_seconds() * 1000


class ModelCall(BaseModel):
    """One `complete` activity: one deployment of one tier, tried until it answered or failed."""

    step: str
    tier: str
    rule: str = ""
    deployment: int = 0
    model: str = "?"
    prompt_preview: str = ""
    answer_preview: str = ""
    path: str = Field(default="", description="text, schema or native (tool calls)")
    tool_calls: list[str] = Field(default_factory=list, description="tools it called natively")
    routed: str = Field(
        default="", description="what tool routing asked the turn for: a tool, or the answer"
    )
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    fallback_from: str | None = Field(default=None, description="model that failed before this")
    fallback_to: str | None = Field(default=None, description="model tried after this failed")
    activity: ActivityRun


class ToolCallTrace(BaseModel):
    """A tool call the run decided on: the policy's decision and what became of it."""

    event_id: int = Field(description="where the call sits in the run's timeline")
    call_id: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    decision: str | None = None
    reason: str = ""
    decision_source: Literal["result", "inferred"] = "result"
    outcome: str = "running"
    output: str = ""
    approval_id: str | None = None
    activity: ActivityRun | None = None
    guardrails: list[str] = Field(
        default_factory=list, description="the guardrails' verdicts on its arguments"
    )


class DecisionTrace(BaseModel):
    """A decision sent for one request: whether it counted, and if not, why.

    Why is as far as history tells; the run's `progress` query keeps the gate's own words.
    """

    event_id: int
    via: Literal["signal", "update"]
    approver: str
    approve: bool | None = None
    reason: str = ""
    counted: bool = False
    refused: str = ""
    edited: list[str] = Field(
        default_factory=list, description="arguments this decision changed (an edit)"
    )
    diff: str = Field(default="", description="the edit, as a unified diff of the arguments")


class ApprovalTrace(BaseModel):
    """One approval request: opened, waited on, escalated, and decided or timed out."""

    request_id: str
    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    original_arguments: dict[str, Any] | None = Field(
        default=None, description="the arguments as the run asked, when an approver edited them"
    )
    flags: list[str] = Field(
        default_factory=list, description="what the guardrails flagged for the approver"
    )
    args_digest: str | None = None
    requester: str | None = None
    approvers: list[str] = Field(default_factory=list)
    required: int = 1
    requested_at: datetime
    requested_event_id: int
    deadline: datetime | None = None
    status: Literal["pending", "approved", "rejected", "timed_out"] = "pending"
    approver: str | None = None
    reason: str = ""
    via: Literal["update", "signal", "timeout"] | None = None
    decided_at: datetime | None = None
    decided_event_id: int | None = None
    waited_seconds: float | None = None
    escalations: list[str] = Field(default_factory=list)
    notifications: list[ActivityRun] = Field(default_factory=list)
    decisions: list[DecisionTrace] = Field(default_factory=list)

    @property
    def refused(self) -> list[DecisionTrace]:
        """Decisions that did not count."""
        return [d for d in self.decisions if not d.counted]


class MessageTrace(BaseModel):
    """A signal or update the run received."""

    kind: Literal["signal", "update"]
    name: str
    event_id: int
    at: datetime
    sender: str = ""
    summary: str = ""
    outcome: str = ""
    approval_id: str | None = None


class TimerTrace(BaseModel):
    """A durable timer; approval deadlines are timers too."""

    timer_id: str
    event_id: int
    started_at: datetime
    seconds: float
    state: Literal["pending", "fired", "canceled"] = "pending"
    closed_event_id: int | None = None
    closed_at: datetime | None = None
    purpose: str = ""


class ChildTrace(BaseModel):
    """A child workflow; a handoff to a specialist when it runs one (its input says so)."""

    workflow_type: str
    workflow_id: str
    initiated_event_id: int
    state: str = "initiated"
    closed_event_id: int | None = None
    error: ErrorInfo | None = None
    specialist: str | None = Field(default=None, description="the agent a handoff went to")
    outcome: str | None = Field(default=None, description="the child's RunResult.status")
    answer_preview: str = ""

    @property
    def handoff_failed(self) -> bool:
        """Whether this is a handoff whose specialist did not complete its task."""
        if self.specialist is None or self.state in ("initiated", "started"):
            return False
        return self.state != "completed" or self.outcome not in (None, "completed")


class FailureTrace(BaseModel):
    """A failure anywhere in the run, retried or final, with the event that shows it."""

    event_id: int
    where: str
    error: ErrorInfo
    attempt: int | None = None
    final: bool = False


class Diagnosis(BaseModel):
    """Why a run did not succeed, in one line, naming the layer and the event."""

    layer: Layer
    summary: str
    event_id: int

    def line(self) -> str:
        """The diagnosis as one line."""
        return f"{LAYER_NAMES[self.layer]}: {self.summary} (event {self.event_id})"


class RunInfo(BaseModel):
    """The run itself: what it was asked, by whom, how it ended and what it cost."""

    workflow_type: str
    workflow_id: str
    run_id: str = ""
    task_queue: str = ""
    agent: str = ""
    principal: str = ""
    principal_verified: bool = Field(
        default=False, description="the principal signed the start (or a verified parent did)"
    )
    config_digest: str = Field(default="", description="the workers' config that decided")
    input_summary: str = ""
    status: str = "running"
    outcome: str | None = Field(default=None, description="RunResult.status when completed")
    answer_preview: str = ""
    started_at: datetime
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    event_count: int = 0
    close_event_id: int | None = None
    patches: list[str] = Field(default_factory=list)
    cost_usd: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    unpriced_calls: int = 0


class Trace(BaseModel):
    """Everything `steward trace` knows about one run, in history order within each list."""

    run: RunInfo
    model_calls: list[ModelCall] = Field(default_factory=list)
    tool_calls: list[ToolCallTrace] = Field(default_factory=list)
    approvals: list[ApprovalTrace] = Field(default_factory=list)
    messages: list[MessageTrace] = Field(default_factory=list)
    timers: list[TimerTrace] = Field(default_factory=list)
    children: list[ChildTrace] = Field(default_factory=list)
    activities: list[ActivityRun] = Field(
        default_factory=list, description="activities that are neither model nor tool calls"
    )
    failures: list[FailureTrace] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    diagnosis: Diagnosis | None = None
