"""What the support playbook carries when it continues as new while a reply waits.

A reply can wait a day for its approver. Meanwhile anyone who may signal the run can grow
its history (every signal is stored before the run sees it), so the playbook, like the
agent loop, continues as new when its history gets long, carrying what it has done: the
classification, the passages, the draft, the waiting call and its approval gate. The next
run of the chain goes straight back to waiting for the same request (same id, deadline
and approvals so far).

Pure: no Temporal, no I/O.
"""

from __future__ import annotations

from pydantic import Field

from steward.conversation import GateState
from steward.guardrails import Verdict
from steward.models import (
    ActionRecord,
    ApprovalOutcome,
    Ledger,
    ModelCallRecord,
    ResolvedRun,
    RunRequest,
    Strict,
    ToolCall,
)
from steward.retrieval import RetrievedChunk


class SupportState(Strict):
    """Everything the support playbook needs to go on waiting after continuing as new."""

    category: str
    urgency: str
    note: str = ""
    grounding: str = ""
    passages: list[RetrievedChunk] = Field(default_factory=list)
    draft: str
    waiting: ToolCall = Field(description="the reply, waiting for approval")
    runs: int = Field(default=1, ge=1, description="runs in this chain so far")
    actions: list[ActionRecord] = Field(default_factory=list)
    calls_by_tool: dict[str, int] = Field(default_factory=dict)
    model_calls: list[ModelCallRecord] = Field(default_factory=list)
    approvals: list[ApprovalOutcome] = Field(default_factory=list)
    ledger: Ledger = Field(default_factory=Ledger)
    gate: GateState = Field(default_factory=GateState)
    resolved: ResolvedRun
    verdicts: list[Verdict] = Field(
        default_factory=list, description="the draft step's guardrail verdicts"
    )
    input_flags: list[str] = Field(
        default_factory=list, description="what the input guardrail found"
    )
    stream_offset: int = Field(
        default=0, ge=0, description="events published to the run's stream so far, in the chain"
    )


class SupportRun(RunRequest):
    """The support playbook's input: a new run, or the next run of a chain (`resume`).

    Only the run's own continue-as-new may carry `resume`: a new run that sends it is
    refused, since the state holds the resolved profile.
    """

    resume: SupportState | None = None
