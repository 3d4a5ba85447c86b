"""The agent profile: what one agent or playbook may do, as the workers' config says.

The workers resolve it from their own steward.yaml when a run starts (the `resolve_run`
activity, through `steward.config`), and history records it, so replay needs no files: its
tools, tiers, collections, budget, guardrails and the specialists it may hand work to,
each resolved too. It never comes from a run input.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from steward.bounds import (
    DEFAULT_CONTEXT_CHARS,
    AgentKind,
    ContextChars,
    MaxParallel,
    MaxTurns,
)
from steward.guardrails import Guardrail
from steward.payloads.budgets import Budget
from steward.payloads.tools import ToolSpec
from steward.strict import Strict

DraftStyle = Literal["write", "compose"]
"""How a playbook drafts: the model writes the reply, or chooses pieces it is composed of."""


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
