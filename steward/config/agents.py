"""Agents and playbooks as steward.yaml declares them: what each may use, and its limits.

`StewardConfig.profile` resolves one into the `steward.payloads.AgentProfile` a run
records; the fields the two share take their types and bounds from `steward.bounds`.
"""

from __future__ import annotations

from pydantic import Field

from steward.bounds import DEFAULT_CONTEXT_CHARS, AgentKind, ContextChars, MaxParallel, MaxTurns
from steward.config.models import BudgetConfig
from steward.guardrails import Guardrail
from steward.models import ContinueAfter, DraftStyle
from steward.strict import Strict

GUARDED_STEPS = {"playbook": {"draft"}, "agent": {"answer"}}
"""The steps whose output a guardrail may check: a playbook's draft, an agent's answer."""


class AgentConfig(Strict):
    """A playbook (steps in code) or an agent (the model picks tools)."""

    kind: AgentKind
    description: str = ""
    instructions: str = ""
    tools: list[str] = Field(default_factory=list)
    collections: list[str] = Field(
        default_factory=list, description="retrieval collections this agent may search"
    )
    tiers: dict[str, str] = Field(default_factory=dict)
    model_tiers: list[str] = Field(
        default_factory=list,
        description="the model tiers this agent may use (none listed: every tier)",
    )
    max_turns: MaxTurns = 8
    context_chars: ContextChars = DEFAULT_CONTEXT_CHARS
    continue_after: ContinueAfter = Field(
        default_factory=lambda: ContinueAfter(),
        description="events/bytes of history after which a long agent run continues as new",
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    specialists: list[str] = Field(
        default_factory=list,
        description="other agents this one may hand work to, each as a child workflow",
    )
    max_parallel: MaxParallel = Field(
        default=2, description="how many specialists one handoff runs at once"
    )
    guardrails: dict[str, Guardrail] = Field(
        default_factory=dict, description="playbook step (e.g. draft) -> checks of its output"
    )
    input_guardrails: Guardrail | None = Field(
        default=None, description="checks on each run's input"
    )
    draft: DraftStyle = Field(
        default="write",
        description="a playbook's reply: written by the model (write), or composed from "
        "an opening, handbook sentences and a next step the model chooses (compose)",
    )
