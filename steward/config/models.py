"""The model layer's settings: deployments of each tier, how they sample and route tools,
and a run's budget.

A tier lists deployments from first choice to last fallback; `steward.routing` picks the
tier and `activities.llm` calls its deployments. Keys are named, never given
(`api_key_env`): only the worker that calls the model reads them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from steward.bounds import CallLimit, CostLimit, OnExceed, TokenLimit
from steward.config.approvals import ApprovalConfig
from steward.strict import Strict

ToolCalling = Literal["native", "schema", "auto"]


class Sampling(Strict):
    """How a deployment samples, where its defaults do not suit (unset: the provider's).

    `repeat_penalty` and `top_k` are llama.cpp's (the local model, llama.cpp and vLLM
    servers); hosted providers refuse them. The local model penalises repeats of free
    text by itself (1.15) and leaves grammar-constrained answers alone (1.0).
    """

    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1, le=1000)


class ToolRouting(Strict):
    """A first turn's tool chosen by similarity, for a model too small to choose one itself.

    SmolLM2-135M answers almost every request in words, tools granted or not (seen: 0 of 4
    tool tasks), and once it has called a tool it calls it again until the turn limit.
    With this set on its deployment, an agent's first turn (the request, no tool called
    yet) is compared with each granted tool's name and description by the embedding
    model; when the nearest tool is at least `min_similarity` alike, the model is asked
    for a call of that tool (it still writes every argument), else it decides as usual.
    Every later turn (after the call, or after an answer that was not valid or failed a
    guardrail) is asked for the answer. Each text the model writes on such a deployment
    (the answer, each string argument) is bounded to `max_text_chars` in the grammar:
    unbounded, it writes until its token limit and the JSON is cut off.
    `repeat_penalty` (llama.cpp's; the local model leaves grammar-constrained answers
    unpenalised) applies to agent turns: at 1.0 a file's content came out as "Hello, {{{{..."
    to the grammar's length bound, at 1.1 "Hello, World!".
    So on such a deployment an agent makes at most one tool call per request. Policy,
    approval and the argument schema apply to a routed call as to any other.
    """

    min_similarity: float = Field(
        default=0.25,
        gt=0.0,
        le=1.0,
        description="cosine similarity of the request and a tool's description, at least",
    )
    max_text_chars: int = Field(
        default=240,
        ge=20,
        le=100_000,
        description="longest text in a routed turn: the answer, each string argument",
    )
    repeat_penalty: float | None = Field(
        default=None,
        gt=0.0,
        le=2.0,
        description="llama.cpp's repeat penalty for agent turns here, unless `sampling` sets one",
    )


class Deployment(Strict):
    """One litellm deployment: a model name, and for self-hosted endpoints its api_base.

    `tool_calling` says how an agent's tools are offered to it: `native` (the provider's
    function calling), `schema` (a JSON answer constrained by the decision schema: the
    local model, servers without tool calling) or `auto` (native when litellm's model map
    says the model calls functions). `stream: false` is for servers that cannot stream
    what is asked of them (llama-cpp-python streams no automatic tool choice).
    """

    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the key"
    )
    timeout_seconds: float = Field(default=120.0, gt=0)
    tool_calling: ToolCalling = Field(
        default="auto", description="native tool calls, the decision schema, or as litellm says"
    )
    stream: bool = Field(
        default=True,
        description="stream answers (watchers see text as it comes); off for servers that "
        "cannot stream what is asked of them",
    )
    sampling: Sampling = Field(
        default_factory=Sampling, description="penalties and nucleus settings, when set"
    )
    tool_routing: ToolRouting | None = Field(
        default=None,
        description="choose a first turn's tool by similarity (a model too small to)",
    )


class BudgetConfig(Strict):
    """Per-run limits on model use; `approve` asks the group to extend instead of stopping."""

    max_cost_usd: CostLimit | None = None
    max_tokens: TokenLimit | None = None
    max_model_calls: CallLimit | None = None
    on_exceed: OnExceed = "stop"
    approval: ApprovalConfig | None = None

    @model_validator(mode="after")
    def _approval_when_approving(self) -> BudgetConfig:
        if self.on_exceed == "approve" and self.approval is None:
            raise ValueError("on_exceed: approve needs approval: {group: ...}")
        return self
