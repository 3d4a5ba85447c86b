"""Payloads that cross Temporal: workflow inputs and results, activity requests, approvals.

Everything here is stored in workflow history and shown in the Temporal UI, so nothing
here may ever hold a credential. Models are strict about what they accept: a malformed
signal or input is refused with a message naming the field, before anything happens.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from steward.blobs import BlobRef

# Limits payloads share with steward.yaml, re-exported: they were defined here first.
from steward.bounds import DEFAULT_CONTEXT_CHARS as DEFAULT_CONTEXT_CHARS
from steward.bounds import MAX_RETRY_SECONDS as MAX_RETRY_SECONDS
from steward.bounds import MAX_TURNS as MAX_TURNS
from steward.bounds import MAX_WAIT_SECONDS as MAX_WAIT_SECONDS
from steward.bounds import (
    AgentKind,
    ApprovalsNeeded,
    ApprovalWait,
    CallLimit,
    ContextChars,
    CostLimit,
    MaxParallel,
    MaxTurns,
    OnExceed,
    TokenLimit,
)
from steward.guardrails import Guardrail, Verdict
from steward.questions import Question

# Re-exported: every payload module builds on these, through here or steward.strict.
from steward.strict import Strict as Strict
from steward.strict import finite_json as finite_json
from steward.strict import problems as problems

MAX_EDIT_CHARS = 1_100_000
"""Largest edit of a call's arguments, as JSON (a file's whole content fits)."""

MAX_INPUT_CHARS = 1_000_000
"""Largest run input accepted. Temporal rejects payloads over 2 MB; stay well under it."""


# --- model calls -------------------------------------------------------------------


class ModelTool(Strict):
    """A tool as a model is offered it: its name, what it does, its arguments' JSON schema.

    The schema is the tool's own (pydantic's, or an MCP server's); the model activity
    makes it strict for the provider (`steward.turns.strict_schema`), and the workflow
    validates what comes back against the tool's full schema.
    """

    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any]

    @field_validator("parameters")
    @classmethod
    def _plain_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return finite_json(value)


class ModelToolCall(Strict):
    """A tool call a model made natively: the provider's id for it, the tool, the arguments
    as the model wrote them (JSON text, read by the workflow).
    """

    id: str
    name: str
    arguments: str = ""
    arguments_blob: BlobRef | None = Field(
        default=None,
        description="the arguments, stored by content address once large and sent again "
        "(`arguments` is then empty)",
    )


class Message(Strict):
    """One chat message sent to a model.

    An assistant message may carry the tool calls the model made natively; a `tool`
    message answers one of them by `tool_call_id`. The model activity sends them natively
    or as text, whichever way the deployment it calls takes tools.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    blob: BlobRef | None = Field(
        default=None,
        description="the rest of the message, stored by content address: the model sees "
        "`content` followed by the blob's text",
    )
    tool_calls: list[ModelToolCall] = Field(default_factory=list)
    tool_call_id: str | None = Field(default=None, description="the call a tool message answers")

    def chars(self) -> int:
        """Size of the message as the model will see it (a stored blob counts in full)."""
        calls = sum(
            len(call.name)
            + len(call.arguments)
            + (call.arguments_blob.size if call.arguments_blob is not None else 0)
            for call in self.tool_calls
        )
        return len(self.content) + (self.blob.size if self.blob is not None else 0) + calls


class LLMRequest(Strict):
    """One model call: which tier, what to say, and optionally the JSON shape to answer in."""

    step: str = Field(description="the workflow step this call serves, for the trace")
    tier: str
    messages: list[Message] = Field(min_length=1)
    response_schema: dict[str, Any] | None = Field(
        default=None, description="JSON schema the answer must follow (grammar-constrained locally)"
    )
    tools: list[ModelTool] = Field(
        default_factory=list,
        description="tools the model may call: natively where the deployment takes tools, "
        "else through the decision schema",
    )
    max_tokens: int = Field(default=512, ge=1, le=32_768)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    deployment: int = Field(default=0, ge=0, description="index in the tier's deployments")
    rule: str = Field(default="", description="the routing rule that chose the tier")
    reused: list[int] = Field(
        default_factory=list,
        description="messages (by index) the caller will send again: stored when over 1 KB, "
        "so later requests carry their reference",
    )


class Usage(Strict):
    """Tokens and cost of one model call. cost_usd is None when the price is unknown."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


DraftStyle = Literal["write", "compose"]
"""How a playbook drafts: the model writes the reply, or chooses pieces it is composed of."""

CallPath = Literal["text", "schema", "native"]
"""How a model call was constrained: free text, a JSON schema, or native tool calls."""


class Routing(Strict):
    """What a turn was asked to do by `tool_routing`: call `tool`, chosen by similarity to
    the request, or answer ("answer", the turn after a tool call).
    """

    tool: str
    similarity: float | None = None


class LLMResult(Strict):
    """What the model answered, and what it cost."""

    text: str
    model: str
    tier: str
    usage: Usage
    latency_ms: float
    attempt: int
    finish_reason: str | None = None
    deployment: int = 0
    stored: dict[int, BlobRef] = Field(
        default_factory=dict,
        description="request messages (by index) the activity stored as blobs; resend the refs",
    )
    text_blob: BlobRef | None = Field(
        default=None, description="`text`, stored as a blob because it is large"
    )
    tool_calls: list[ModelToolCall] = Field(
        default_factory=list, description="the tool calls the model made natively"
    )
    stored_calls: dict[int, list[ModelToolCall]] = Field(
        default_factory=dict,
        description="request messages (by index) whose tool calls' large arguments the "
        "activity stored; resend these calls",
    )
    path: CallPath = Field(
        default="text",
        description="how the answer was constrained: free text, a JSON schema (the grammar "
        "path), or native tool calls",
    )
    routed: Routing | None = Field(
        default=None,
        description="the tool this turn was asked to call, chosen by similarity to the request",
    )


class ModelCallRecord(Strict):
    """A model call as the run result reports it."""

    step: str
    tier: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    latency_ms: float
    attempt: int
    deployment: int = 0
    rule: str = ""
    path: CallPath = Field(default="text", description="how the answer was constrained")

    @classmethod
    def of(cls, step: str, result: LLMResult) -> ModelCallRecord:
        """Summarise an LLMResult for the run's record."""
        return cls(
            step=step,
            tier=result.tier,
            model=result.model,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cost_usd=result.usage.cost_usd,
            latency_ms=result.latency_ms,
            attempt=result.attempt,
            deployment=result.deployment,
            path=result.path,
        )


# --- tools ---------------------------------------------------------------------------


class RiskClass(StrEnum):
    """How much harm a tool can do; the policy keys its defaults on this."""

    READ = "read"
    WRITE = "write"
    SEND = "send"
    PUBLISH = "publish"
    DELETE = "delete"
    PURCHASE = "purchase"


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


# --- approvals -----------------------------------------------------------------------


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


# --- runs ----------------------------------------------------------------------------


class BudgetCap(Strict):
    """Limits a run input may set: they only ever lower the configured budget."""

    max_cost_usd: CostLimit | None = None
    max_tokens: TokenLimit | None = None
    max_model_calls: CallLimit | None = None


class Budget(BudgetCap):
    """Limits on one run's model use, and what happens when a call would pass them."""

    on_exceed: OnExceed = "stop"
    approval: ApprovalRule | None = Field(
        default=None, description="who may extend the budget, when on_exceed is approve"
    )

    def capped(self, cap: BudgetCap | None) -> Budget:
        """The budget with each limit lowered to the cap's, where the cap sets one."""
        if cap is None:
            return self
        lowered = self.model_copy()
        for name in BudgetCap.model_fields:
            limit, ceiling = getattr(self, name), getattr(cap, name)
            if ceiling is not None:
                setattr(lowered, name, ceiling if limit is None else min(limit, ceiling))
        return lowered


class TierSpend(Strict):
    """Model use on one tier."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0


class Ledger(Strict):
    """What a run has spent, split the way a team asks "why did this cost more?".

    Pure bookkeeping: workflows add to it from activity results and workflow time, so it
    is rebuilt identically on replay and never double counts.
    """

    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = Field(default=0, description="calls whose price litellm does not know")
    by_tier: dict[str, TierSpend] = Field(default_factory=dict)
    retries: int = Field(default=0, description="failed attempts before calls that succeeded")
    fallbacks: int = Field(default=0, description="deployments given up on within a tier")
    fallback_cost_usd: float = Field(default=0.0, description="cost of calls served by a fallback")
    context_tokens: list[int] = Field(
        default_factory=list, description="prompt tokens of each call, in order: context growth"
    )
    tool_seconds: float = 0.0
    review_seconds: float = Field(
        default=0.0, description="time spent waiting for approvals and answers to questions"
    )
    budget_extensions: int = 0

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add_call(self, result: LLMResult) -> None:
        """Count one successful model call (and the failed attempts before it)."""
        cost = result.usage.cost_usd
        tier = self.by_tier.setdefault(result.tier, TierSpend())
        for spend in (self, tier):
            spend.input_tokens += result.usage.input_tokens
            spend.output_tokens += result.usage.output_tokens
            if cost is None:
                spend.unpriced_calls += 1
            else:
                spend.cost_usd += cost
        self.model_calls += 1
        tier.calls += 1
        self.retries += result.attempt - 1
        if result.deployment > 0 and cost is not None:
            self.fallback_cost_usd += cost
        self.context_tokens.append(result.usage.input_tokens)

    def absorb(self, other: Ledger) -> None:
        """Add what another run spent (a specialist's, on a handoff) to this ledger.

        Budget extensions stay with the run that was granted them.
        """
        self.model_calls += other.model_calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.unpriced_calls += other.unpriced_calls
        for name, spend in other.by_tier.items():
            tier = self.by_tier.setdefault(name, TierSpend())
            tier.calls += spend.calls
            tier.input_tokens += spend.input_tokens
            tier.output_tokens += spend.output_tokens
            tier.cost_usd += spend.cost_usd
            tier.unpriced_calls += spend.unpriced_calls
        self.retries += other.retries
        self.fallbacks += other.fallbacks
        self.fallback_cost_usd += other.fallback_cost_usd
        self.context_tokens.extend(other.context_tokens)
        self.tool_seconds += other.tool_seconds
        self.review_seconds += other.review_seconds


class ContinueAfter(Strict):
    """How long one run's history may grow before the agent continues as new.

    Temporal warns at 10,240 events or 10 MB and stops a run at 51,200 or 50 MB; the
    defaults continue well before the warning (as does the server's own suggestion).
    """

    events: int = Field(default=4_000, ge=30, le=40_000)
    bytes: int = Field(default=4_000_000, ge=50_000, le=40_000_000)


class AgentProfile(Strict):
    """An agent or playbook as configured in the workers' steward.yaml.

    The workers resolve it when a run starts (the `resolve_run` activity), so the
    configuration in force is part of history and replay needs no files. It never comes
    from a run input.
    """

    name: str
    kind: AgentKind
    description: str = ""
    instructions: str = ""
    tools: list[ToolSpec] = Field(default_factory=list)
    tiers: dict[str, str] = Field(
        default_factory=dict, description="step role -> tier, e.g. classify: fast"
    )
    collections: list[str] = Field(
        default_factory=list, description="retrieval collections the agent may search"
    )
    max_turns: MaxTurns = 8
    context_chars: ContextChars = DEFAULT_CONTEXT_CHARS
    continue_after: ContinueAfter = Field(default_factory=lambda: ContinueAfter())
    tier_order: list[str] = Field(
        default_factory=list, description="tier names from cheapest to strongest"
    )
    deployments: dict[str, list[str]] = Field(
        default_factory=dict, description="tier -> its deployments' model names, in order"
    )
    budget: Budget = Field(default_factory=Budget)
    specialists: list[AgentProfile] = Field(
        default_factory=list, description="agents this one may hand work to, each resolved"
    )
    max_parallel: MaxParallel = Field(default=2, description="specialists one handoff runs at once")
    guardrails: dict[str, Guardrail] = Field(
        default_factory=dict, description="playbook step -> the checks its output must pass"
    )
    input_guardrail: Guardrail | None = Field(
        default=None, description="checks on the run's input (flagged to approvers, or blocked)"
    )
    draft: DraftStyle = Field(
        default="write", description="a playbook's reply: written, or composed from pieces"
    )


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
    environment: str | None
    config_digest: str = Field(description="SHA-256 (first 16 hex) of the config in force")
    principal_verified: bool
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


# --- MCP tools -----------------------------------------------------------------------


class MCPToolsRequest(Strict):
    """Which tools of one MCP server a run exposes (the ones steward.yaml lists)."""

    server: str
    tools: list[str]


class MCPToolInfo(Strict):
    """An MCP tool as its server describes it."""

    name: str
    description: str
    input_schema: dict[str, Any]

    @field_validator("input_schema")
    @classmethod
    def _plain_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return finite_json(value)


class MCPToolList(Strict):
    """The exposed tools of one MCP server."""

    tools: list[MCPToolInfo]
