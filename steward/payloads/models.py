"""Model calls: what the `complete` activity is asked (`LLMRequest`) and answers
(`LLMResult`), and how a run's record sums one call up (`ModelCallRecord`).

A request carries chat messages and the tools the model may call, in one shape for every
provider; the model activity sends them natively or as text, whichever way the deployment
takes tools. A message, or a tool call's arguments, too large for history travels as a
blob reference, so a conversation that resends its context each turn stays small.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from steward.blobs import BlobRef
from steward.strict import Strict, finite_json


class ModelTool(Strict):
    """A tool as a model is offered it: its name, what it does, its arguments' JSON schema.

    The schema is the tool's own (pydantic's, or an MCP server's); the model activity
    makes it strict for the provider (`steward.turns.strict_schema`), and the workflow
    validates what comes back against the tool's full schema. A tool of the catalogue
    travels without it (`parameters` None): the model activity takes the schema from its
    own catalogue (`steward.tools.with_schemas`), so a model request does not carry the
    same schemas on every turn.
    """

    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] | None = Field(
        default=None, description="the arguments' JSON schema; None: the catalogue's tool's"
    )

    @field_validator("parameters")
    @classmethod
    def _plain_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
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
    latency_ms: float = Field(description="the call's wall time, to a tenth of a millisecond")
    attempt: int = 1
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
    cost_usd: float | None = None
    latency_ms: float
    attempt: int = 1
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
