"""Scripts: fixed model answers, searches and tool results for one run.

A scripted case runs without any model: `ScriptedModel` and the scripted sandbox answer
each step from the run's `Script`, which travels in the child workflow's memo. A
deterministic suite is written this way, and a run recorded in history becomes one
(`steward eval --from-history`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from steward.models import CallPath, MCPToolList, ModelToolCall, Strict

SCRIPT_MEMO = "steward-eval-script"
"""Memo key under which a scripted case's child workflow carries its `Script`."""


class ScriptedError(Strict):
    """A failure to raise instead of answering, as the recorded activity failed."""

    type: str = "ScriptedFailure"
    message: str = "scripted failure"


class ScriptedAnswer(Strict):
    """The model's answer to one step (and deployment) of a run."""

    step: str = Field(min_length=1)
    deployment: int = Field(default=0, ge=0)
    text: str = ""
    error: ScriptedError | None = None
    model: str = "scripted"
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float | None = 0.0
    latency_ms: float = Field(default=0.0, ge=0)
    attempt: int = Field(default=1, ge=1)
    tool_calls: list[ModelToolCall] = Field(
        default_factory=list, description="tool calls the model made natively"
    )
    path: CallPath = Field(default="text", description="how the recorded answer was constrained")


class ScriptedTool(Strict):
    """What a tool returned (or how it failed) for one call id."""

    call_id: str = Field(min_length=1)
    tool: str = ""
    output: str = ""
    ok: bool = True
    citations: list[dict[str, Any]] = Field(default_factory=list)
    error: ScriptedError | None = None


class ScriptedSearch(Strict):
    """What a retrieval search found. Chunks are `{text, citation}` as a run records them,
    or `{text, source, heading}` in a suite (the citation is built from those).
    """

    collection: str = Field(min_length=1)
    query: str = Field(default="", description="empty: answers any search of the collection")
    chunks: list[dict[str, Any]] = Field(default_factory=list)
    embedder: str = "scripted"
    error: ScriptedError | None = None


class Script(Strict):
    """Fixed model answers and tool results for one run: no model is called.

    Answers are found by (step, deployment): each step of Steward's workflows is named
    once per run (`classify`, `draft`, `turn-3`), so a lookup needs no call counter and a
    retried activity gets the same answer.
    """

    source: str = Field(default="", description="where it came from, e.g. history:ID")
    model: list[ScriptedAnswer] = Field(default_factory=list)
    tools: list[ScriptedTool] = Field(default_factory=list)
    searches: list[ScriptedSearch] = Field(default_factory=list)
    mcp: dict[str, MCPToolList] = Field(
        default_factory=dict, description="server -> the tools it described"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        """`model: {step: text}` and `tools: {call_id: output}` as suites write them."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("model"), dict):
            data["model"] = [
                {"step": step, "text": text} if isinstance(text, str) else {"step": step, **text}
                for step, text in data["model"].items()
            ]
        if isinstance(data.get("tools"), dict):
            data["tools"] = [
                {"call_id": call, "output": out}
                if isinstance(out, str)
                else {"call_id": call, **out}
                for call, out in data["tools"].items()
            ]
        return data

    def answer(self, step: str, deployment: int) -> ScriptedAnswer | None:
        """The answer for this step and deployment, if scripted."""
        return next((a for a in self.model if a.step == step and a.deployment == deployment), None)

    def tool(self, call_id: str) -> ScriptedTool | None:
        """The scripted result of this tool call, if any."""
        return next((t for t in self.tools if t.call_id == call_id), None)

    def search(self, collection: str, query: str) -> ScriptedSearch | None:
        """What a search of `collection` for `query` found (an entry without a query
        answers any search of its collection).
        """
        exact = [s for s in self.searches if s.collection == collection and s.query == query]
        wild = [s for s in self.searches if s.collection == collection and not s.query]
        found = exact or wild
        return found[0] if found else None
