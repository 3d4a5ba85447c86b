"""Tools: a tool as the policy sees it (`ToolSpec`), the call a workflow makes, the tool
activity's input and what it returns.

A tool's side effect happens once: the activity's input carries an idempotency key derived
from the run and the call, and, for a call that needed approval, the evidence the acting
worker checks again before it acts.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator

from steward.blobs import BlobRef
from steward.bounds import MAX_RETRY_SECONDS
from steward.guardrails import Guardrail
from steward.payloads.approvals import ApprovalEvidence, ApprovalRule, args_digest
from steward.strict import Strict, finite_json


class RiskClass(StrEnum):
    """How much harm a tool can do; the policy keys its defaults on this."""

    READ = "read"
    WRITE = "write"
    SEND = "send"
    PUBLISH = "publish"
    DELETE = "delete"
    PURCHASE = "purchase"


class ToolSpec(Strict):
    """A tool as the policy sees it: what it risks, what it needs, where it runs."""

    name: str
    description: str
    risk: RiskClass
    scopes: list[str] = Field(default_factory=list)
    privileged: bool = Field(default=False, description="runs on the privileged task queue")
    side_effects: bool = True
    decision: Literal["allow", "approve", "deny"] | None = Field(
        default=None, description="overrides the risk class default"
    )
    approval: ApprovalRule | None = None
    max_calls_per_run: int | None = Field(
        default=None, ge=1, description="more calls than this in one run are denied"
    )
    mcp_server: str | None = Field(
        default=None, description="the MCP server this tool comes from (None: built in)"
    )
    input_schema: dict[str, Any] | None = Field(
        default=None, description="an MCP tool's JSON schema, as its server described it"
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="how long one attempt of the tool may take"
    )
    locked: list[str] = Field(
        default_factory=list,
        description="arguments an approver may not edit before approving (send_email: to)",
    )
    guardrails: dict[str, Guardrail] = Field(
        default_factory=dict, description="argument -> the checks its text must pass"
    )
    retry_seconds: float = Field(
        default=60.0,
        gt=0,
        le=MAX_RETRY_SECONDS,
        description="how long a call that keeps failing is retried (with backoff) before it "
        "fails for good; an approved send outlives an outage of the server",
    )

    @field_validator("input_schema")
    @classmethod
    def _plain_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return finite_json(value)


class ToolCall(Strict):
    """A tool call a workflow is about to make, with its exact arguments."""

    id: str
    tool: str
    arguments: dict[str, Any]

    @field_validator("arguments")
    @classmethod
    def _plain_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return finite_json(value)

    def digest(self) -> str:
        """A digest of the tool and its exact arguments; an approval is bound to it."""
        return args_digest(self.tool, self.arguments)


def idempotency_key(workflow_id: str, call_id: str, run_id: str = "") -> str:
    """The key that makes a tool call's side effect happen once.

    It binds the run (its first execution's run id, kept across continue-as-new), so a
    later run started with the same workflow id never finds an earlier run's effect and
    takes it for its own. Runs recorded before runs were scoped pass no run id.
    """
    readable = "".join(c if c.isalnum() or c in "._-" else "-" for c in workflow_id)[:80]
    scope = f"{workflow_id}\0{run_id}" if run_id else workflow_id
    unique = hashlib.sha256(f"{scope}\0{call_id}".encode()).hexdigest()[:16]
    return f"{readable}.{unique}"


class ToolInvocation(Strict):
    """A tool activity's input: the validated call, who it acts for, and its idempotency key.

    The key is derived from the workflow and the call, so a retried or re-run activity
    finds the effect it already had instead of having it twice.
    """

    call: ToolCall
    idempotency_key: str = Field(min_length=8, max_length=300, pattern=r"^[A-Za-z0-9._:@-]+$")
    agent: str
    principal: str
    run_id: str = Field(
        default="", description="the run's first execution run id (empty in older histories)"
    )
    principal_verified: bool = Field(
        default=False, description="the principal signed the run's start (or its parent's)"
    )
    approval: ApprovalEvidence | None = Field(
        default=None, description="the request and the decisions that cleared this call"
    )


class Citation(Strict):
    """Where a piece of an answer came from: a chunk of an ingested document."""

    collection: str
    source: str = Field(description="the document's path, relative to the ingested folder")
    heading: str = Field(default="", description="the heading trail, e.g. 'Refunds > Timing'")
    chunk: int = Field(ge=0, description="the chunk's position in its document")
    score: float


class ToolResult(Strict):
    """What a tool returned, as text the model can read (and its sources, for retrieval)."""

    tool: str
    ok: bool
    output: str
    citations: list[Citation] = Field(default_factory=list)
    output_blob: BlobRef | None = Field(
        default=None, description="the whole output when it was too large for history"
    )
