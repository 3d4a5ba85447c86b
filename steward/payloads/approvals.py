"""Approvals: who must approve a tool call (`ApprovalRule`), the request a run opens, the
decisions people send, and how each request ended.

An approval is bound to one call by the digest of its tool and exact arguments
(`args_digest`), and to one run. A decision arrives from outside the run (the `decide`
signal or update), so its model is strict about types and bounded in size; the workflow
keeps every decision it received, accepted or refused, for the trace and its queries.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from steward.bounds import ApprovalsNeeded, ApprovalWait
from steward.strict import Strict, finite_json

MAX_EDIT_CHARS = 1_100_000
"""Largest edit of a call's arguments, as JSON (a file's whole content fits)."""


class Escalation(Strict):
    """Who is asked next when nobody decided by the deadline, and for how long."""

    approvers: list[str] = Field(min_length=1)
    timeout_seconds: ApprovalWait = 3600.0


class ApprovalRule(Strict):
    """Who must approve a tool call, how many of them, how long they have, and what next."""

    approvers: list[str] = Field(min_length=1)
    timeout_seconds: ApprovalWait = 3600.0
    required: ApprovalsNeeded = Field(default=1, description="distinct approvals needed (N of M)")
    escalation: Escalation | None = None
    signed: bool = Field(
        default=False, description="decisions must carry a signature from the approver's key"
    )

    @model_validator(mode="after")
    def _enough_approvers(self) -> ApprovalRule:
        if self.required > len(set(self.approvers)):
            raise ValueError(
                f"required: {self.required} approvals but only {len(set(self.approvers))} approvers"
            )
        return self


def run_tag(run_id: str) -> str:
    """8 hex characters that tell runs of one workflow id apart in approval and question
    ids. A hash: run ids are time-ordered UUIDs, so their first characters are not.
    """
    return hashlib.sha256(run_id.encode()).hexdigest()[:8]


def arguments_sha256(tool: str, arguments: dict[str, Any]) -> str:
    """SHA-256 (hex) over the canonical JSON of a tool name and its arguments.

    Signatures cover all of it; the `args_digest` people compare is its first 16 hex.
    """
    canonical = json.dumps(
        {"tool": tool, "arguments": arguments}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def args_digest(tool: str, arguments: dict[str, Any]) -> str:
    """The first 16 hex of `arguments_sha256`: what an approver compares and types."""
    return arguments_sha256(tool, arguments)[:16]


class ApprovalRequest(Strict):
    """A tool call waiting for a human decision."""

    id: str
    workflow_id: str
    tool: str
    args_digest: str
    arguments: dict[str, Any]
    requester: str
    approvers: list[str]
    requested_at: datetime
    deadline: datetime
    required: int = 1
    approved_by: list[str] = Field(default_factory=list)
    escalated: bool = False
    signed: bool = False
    run_id: str = Field(
        default="", description="the run's first execution run id; signatures bind it"
    )
    locked: list[str] = Field(
        default_factory=list, description="arguments an approver may not edit (e.g. `to`)"
    )
    edits: list[ArgumentEdit] = Field(
        default_factory=list, description="approvers' edits, oldest first"
    )
    flags: list[str] = Field(
        default_factory=list, description="what the guardrails found, for the approver to weigh"
    )
    original_arguments: dict[str, Any] | None = Field(
        default=None, description="the arguments as the run asked, before any edit"
    )

    @field_validator("arguments", "original_arguments")
    @classmethod
    def _plain_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return finite_json(value)


class ArgumentEdit(Strict):
    """An approver's change to a waiting call's arguments (what changed, not the text)."""

    by: str
    at: datetime
    before_digest: str
    after_digest: str
    fields: list[str] = Field(description="the arguments whose values changed")


class ApprovalDecision(Strict):
    """A human's answer to one approval request, as sent by signal or update `decide`.

    Types are strict, as JSON has them: `"approve": "yes"` or `1` is refused, not read as
    true. Every field is bounded, so no decision can make the run's records grow by more
    than a few kilobytes.
    """

    model_config = ConfigDict(strict=True)

    request_id: str = Field(min_length=1, max_length=300)
    args_digest: str = Field(min_length=1, max_length=64)
    approver: str = Field(min_length=1, max_length=200)
    approve: bool
    reason: str = Field(default="", max_length=2_000)
    signature: str = Field(
        default="",
        max_length=128,
        description="Ed25519 by the approver's own key (`steward sign`), for signed rules",
    )
    arguments: dict[str, Any] | None = Field(
        default=None,
        description="approve these arguments instead (an edit of the waiting call's, as the "
        "tool's schema writes them); only with approve: true",
    )

    @field_validator("arguments")
    @classmethod
    def _edit_fits(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        finite_json(value)
        size = len(json.dumps(value))
        if size > MAX_EDIT_CHARS:
            raise ValueError(f"{size:,} characters of JSON; at most {MAX_EDIT_CHARS:,}")
        return value

    @model_validator(mode="after")
    def _edits_approve(self) -> ApprovalDecision:
        if self.arguments is not None and not self.approve:
            raise ValueError("arguments: an edit approves the edited call; reject without one")
        return self

    def digest_approved(self, tool: str) -> str:
        """The digest of the arguments this decision approves: its edit's, else those it saw."""
        if self.arguments is None:
            return self.args_digest
        return args_digest(tool, self.arguments)


class ApprovalEvidence(Strict):
    """What cleared a tool call: its request and the decisions that approved it.

    Travels with the call to the worker that acts, which checks it against its own config
    before the side effect (the arguments are the call's own, so they are not repeated).
    """

    request_id: str
    workflow_id: str
    run_id: str
    tool: str
    args_digest: str
    requester: str
    decisions: list[ApprovalDecision] = Field(min_length=1)


class DecisionRecord(Strict):
    """A decision as the run received it, accepted or refused (the `decisions` query)."""

    request_id: str
    approver: str
    approve: bool | None = Field(description="None when the decision could not be read")
    via: Literal["signal", "update"]
    accepted: bool
    reason: str = Field(description="why it was refused, or the approver's note")
    signed: bool = False
    at: datetime


class ApprovalOutcome(Strict):
    """How an approval request ended."""

    request_id: str
    tool: str
    status: Literal["approved", "rejected", "timed_out"]
    approver: str | None = None
    reason: str = ""
    requested_at: datetime
    decided_at: datetime
    arguments: dict[str, Any] | None = Field(
        default=None, description="the arguments approved, when an approver edited them"
    )
    edits: list[ArgumentEdit] = Field(default_factory=list)

    @field_validator("arguments")
    @classmethod
    def _plain_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return finite_json(value)


class DecisionReceipt(Strict):
    """The answer to a `decide` update: the decision counted, and where the request stands."""

    request_id: str
    status: Literal["approved", "rejected", "awaiting_more"]
    approved_by: list[str]
    required: int
    args_digest: str = Field(
        default="", description="the digest the request now waits on (new after an edit)"
    )


class ApprovalNotice(Strict):
    """What approvers are told when a request opens or escalates to them."""

    request: ApprovalRequest
    idempotency_key: str
    approve_command: str


class RefusedDecision(Strict):
    """A decision the workflow did not accept, and why (kept for the trace and the query)."""

    request_id: str
    approver: str
    reason: str
    at: datetime
