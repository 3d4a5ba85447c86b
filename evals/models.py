"""Payloads of an evaluation: cases, the eval's input, scores and outcomes.

Everything here crosses Temporal (the `EvalWorkflow`'s input and result, the scoring
activity), so it is pydantic and strict: a suite with a misspelt field is refused when it
is loaded, naming the field, before any run starts.

A case is one run to make (its `RunRequest`: the eval worker resolves the profile from its
own config, and the eval's options, one tier and short deadlines, travel as `eval`), how
its approvals are to be answered, what it must show (`evals.expectations`)
and, for a scripted case, the answers that replace the model (`evals.script`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from evals.expectations import Expectation
from evals.script import Script
from steward.models import LegacyRunRequest, RunRequest, Strict

APPROVAL_PENDING_SIGNAL = "approval_pending"
"""Signal by which an eval worker's sandbox tells an `EvalWorkflow` that a run of one of its
cases waits for approval (the payload is the `ApprovalRequest`)."""

CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"

EVAL_QUEUE = "steward-eval"
"""Where eval runs go: only eval workers (sandboxed tools) serve it and its twins."""


def scripted_queue(queue: str) -> str:
    """The task queue on which scripted cases run (served by the scripted model and tools)."""
    return f"{queue}-scripted"


# --- cases and the eval's input ------------------------------------------------------


class ApprovalStep(Strict):
    """How the eval answers one approval notice: approve, reject, or let it time out."""

    decision: Literal["approve", "reject", "timeout"]
    after_seconds: float = Field(default=0.0, ge=0, le=86_400, description="a reviewer's delay")
    approver: str | None = Field(default=None, description="default: an allowed approver")
    reason: str = Field(default="", max_length=2_000)
    arguments: dict[str, Any] | None = Field(
        default=None,
        description="approve these arguments instead of the call's: the approver's edit",
    )

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: object) -> object:
        return {"decision": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _edit_is_approved(self) -> ApprovalStep:
        if self.arguments is not None and self.decision != "approve":
            raise ValueError("arguments (an edit) go with decision approve only")
        return self


class EvalCase(Strict):
    """One run to make and what it must show."""

    id: str = Field(pattern=CASE_ID_PATTERN)
    target: str = Field(description="the playbook or agent, as named in steward.yaml")
    workflow_type: str
    request: RunRequest | LegacyRunRequest = Field(
        description="the run input (evals recorded before the workers resolved profiles "
        "carry the profile itself)"
    )
    tags: list[str] = Field(default_factory=list)
    approvals: list[ApprovalStep] = Field(
        default_factory=lambda: [ApprovalStep(decision="approve")],
        description="one per approval notice, in order; the last repeats",
    )
    expect: list[Expectation] = Field(default_factory=list)
    script: Script | None = None
    timeout_seconds: float = Field(default=900.0, gt=0, le=86_400)


class EvalRequest(Strict):
    """What `EvalWorkflow` runs: the cases, how many at once, and labels for the report."""

    suite: str = Field(min_length=1)
    cases: list[EvalCase] = Field(min_length=1)
    concurrency: int = Field(default=4, ge=1, le=100)
    scripted_queue: str = Field(min_length=1)
    labels: dict[str, str] = Field(
        default_factory=dict, description="tier, agent, judge tier: shown in reports"
    )
    done: list[CaseOutcome] = Field(
        default_factory=list, description="outcomes carried over a continue-as-new"
    )
    started_at: datetime | None = None
    max_history_events: int = Field(
        default=8_000, ge=100, description="continue as new beyond this many events"
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> EvalRequest:
        seen: set[str] = set()
        for case in self.cases:
            if case.id in seen:
                raise ValueError(f"case id {case.id!r} is used twice")
            seen.add(case.id)
        return self


# --- scores and outcomes -------------------------------------------------------------


class Score(Strict):
    """One scorer's verdict on one run."""

    name: str
    kind: str
    passed: bool
    required: bool = True
    value: float | None = Field(default=None, description="the measured number, if any")
    detail: str = ""


class ScoreRequest(Strict):
    """The scoring activity's input: the run to read and the expectations to check."""

    case_id: str
    workflow_id: str
    run_id: str = ""
    result: dict[str, Any] | None = Field(
        default=None, description="the run's result as data (None when the run failed)"
    )
    error: str = ""
    expect: list[Expectation]


class CaseScores(Strict):
    """What the scoring activity found: scores, and measures read from history."""

    scores: list[Score]
    latency_seconds: float | None = None
    review_seconds: float = 0.0
    model_calls: int = 0
    diagnosis: str = ""


class CaseOutcome(Strict):
    """One case's run, scores, cost and time, as the report shows it."""

    id: str
    target: str
    tags: list[str] = Field(default_factory=list)
    workflow_id: str
    run_id: str = ""
    status: str
    passed: bool
    scores: list[Score] = Field(default_factory=list)
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    judge_cost_usd: float = 0.0
    judge_unpriced_calls: int = 0
    latency_seconds: float | None = None
    review_seconds: float = 0.0
    model_calls: int = 0
    tokens: int = 0
    answer_preview: str = ""
    error: str = ""
    diagnosis: str = ""
    scripted: bool = False


class EvalProgress(Strict):
    """What the `progress` query of a running eval says."""

    suite: str
    total: int
    done: int
    passed: int
    errors: int
    running: dict[str, str] = Field(description="case id -> what it is doing")
    cost_usd: float
    judge_cost_usd: float


class EvalResult(Strict):
    """The end of an eval: every case's outcome, in suite order."""

    suite: str
    eval_id: str
    started_at: datetime
    finished_at: datetime
    concurrency: int
    labels: dict[str, str] = Field(default_factory=dict)
    outcomes: list[CaseOutcome]


EvalRequest.model_rebuild()
