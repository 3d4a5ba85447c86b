"""A run from start to end: its input, what the workers resolve it may do, what it reports
while it runs, and its result.

A run's input grants nothing: it names a target, the task and who asks, and its options
can only narrow what the workers' config allows. The `resolve_run` activity answers with
the profile in force and the evidence for who asked; the result says what the run
answered, did and spent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool, field_validator

from steward.blobs import BlobRef
from steward.guardrails import Verdict
from steward.payloads.approvals import ApprovalOutcome, ApprovalRequest, RefusedDecision
from steward.payloads.budgets import BudgetCap, Ledger
from steward.payloads.models import ModelCallRecord
from steward.payloads.profiles import AgentProfile
from steward.payloads.tools import Citation
from steward.questions import Question
from steward.strict import Strict

MAX_INPUT_CHARS = 1_000_000
"""Largest run input accepted. Temporal rejects payloads over 2 MB; stay well under it."""

TARGET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
PRINCIPAL_MAX = 200


def _task_fits(value: str) -> str:
    if not value.strip():
        raise ValueError("input is empty: give the task or ticket text")
    if len(value) > MAX_INPUT_CHARS:
        raise ValueError(f"input is {len(value):,} characters; the limit is {MAX_INPUT_CHARS:,}")
    return value


class StartSignature(Strict):
    """The requester's signature over the start of a run (`steward run` makes it)."""

    issued_at: datetime
    signature: str = Field(min_length=1, max_length=128)


class EvalOptions(Strict):
    """How an eval changes a run. Only an eval worker honours them (its tools record and
    never act); any other worker refuses a run that carries them.
    """

    tier: str | None = Field(default=None, description="route every step to this tier")
    approval_deadline_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="every approval waits at most this long"
    )
    profile: AgentProfile | None = Field(
        default=None, description="re-run a recorded run under the profile it had"
    )


class RunRequest(Strict):
    """A run's input. It grants nothing.

    It names the target (a playbook or agent of the workers' steward.yaml), the task and
    who asks. What the run may do (tools, policy, approvers, budget, tiers) is resolved by
    the workers from their own config; the options here can only narrow it.
    """

    target: str = Field(pattern=TARGET_PATTERN, description="playbook or agent name")
    input: str
    principal: str = Field(min_length=1, max_length=PRINCIPAL_MAX)
    start_signature: StartSignature | None = Field(
        default=None, description="the principal's signature, where starts must be signed"
    )
    budget_cap: BudgetCap | None = Field(
        default=None, description="lowers the configured budget (a handoff passes what is left)"
    )
    parent_verified: StrictBool = Field(
        default=False,
        description="set by a parent run whose principal was verified; ignored at top level",
    )
    eval: EvalOptions | None = None

    @field_validator("input")
    @classmethod
    def _input_fits(cls, value: str) -> str:
        return _task_fits(value)


class LegacyRunRequest(Strict):
    """The run input of runs recorded before the workers resolved profiles.

    Only replay of those histories reads it; a new run that sends it is refused.
    """

    input: str
    principal: str = Field(min_length=1, max_length=PRINCIPAL_MAX)
    profile: AgentProfile

    @field_validator("input")
    @classmethod
    def _input_fits(cls, value: str) -> str:
        return _task_fits(value)


class ResolveRun(Strict):
    """What the workers need to decide what a run may do (the `resolve_run` activity).

    Everything here comes from Temporal (ids, times, whether there is a parent) or from
    the run input, whose task travels only as its SHA-256.
    """

    target: str
    principal: str
    workflow_type: str
    workflow_id: str
    run_id: str = Field(description="the first execution's run id")
    started_at: datetime
    input_sha256: str
    start_signature: StartSignature | None = None
    child: bool = Field(description="Temporal says the run has a parent")
    parent_verified: bool = False
    eval: EvalOptions | None = None


class ResolvedRun(Strict):
    """What a run may do, as the workers' config says, and the evidence for who asked."""

    profile: AgentProfile
    environment: str | None = None
    config_digest: str = Field(description="SHA-256 (first 16 hex) of the config in force")
    principal_verified: bool = False
    public_keys: dict[str, str] = Field(
        default_factory=dict,
        description="public keys of the people this run's approvals may come from",
    )


RunStatus = Literal[
    "completed", "rejected", "approval_timed_out", "denied", "failed", "budget_exceeded"
]


class ActionRecord(Strict):
    """A tool call the run decided on, and what became of it."""

    call_id: str
    tool: str
    args_digest: str
    decision: Literal["allow", "approve", "deny"]
    reason: str
    outcome: Literal["done", "rejected", "timed_out", "denied", "failed"]
    output: str = ""
    citations: list[Citation] = Field(default_factory=list)
    output_blob: BlobRef | None = Field(
        default=None, description="the whole output, stored by content address"
    )
    guardrails: list[Verdict] = Field(
        default_factory=list, description="the guardrails' verdicts on the call's arguments"
    )


class RunResult(Strict):
    """The end of a run: the answer, what it did, and what the model calls cost."""

    status: RunStatus
    answer: str
    details: dict[str, str] = Field(default_factory=dict)
    actions: list[ActionRecord] = Field(default_factory=list)
    citations: list[Citation] = Field(
        default_factory=list, description="the document passages the answer rests on"
    )
    approvals: list[ApprovalOutcome] = Field(default_factory=list)
    model_calls: list[ModelCallRecord] = Field(default_factory=list)
    ledger: Ledger = Field(default_factory=Ledger)
    config_digest: str = Field(default="", description="the workers' config in force")


class Passage(Strict):
    """A retrieved passage a run's draft was written from, numbered as the draft cites it."""

    n: int = Field(ge=1, description="the draft cites it as [n]")
    text: str
    citation: Citation


class RunProgress(Strict):
    """What a running workflow reports to the `progress` query."""

    status: str
    step: str
    pending: list[ApprovalRequest]
    refused: list[RefusedDecision]
    model_calls: list[ModelCallRecord]
    questions: list[Question] = Field(
        default_factory=list, description="questions waiting for a human's reply"
    )
    ledger: Ledger = Field(default_factory=Ledger)
    config_digest: str = Field(default="", description="the workers' config in force")
    passages: list[Passage] = Field(
        default_factory=list,
        description="the retrieved passages the waiting draft was written from, as it numbers them",
    )
