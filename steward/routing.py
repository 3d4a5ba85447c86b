"""Pure routing: pick the model tier for one model call from what the workflow knows.

Tiers are ordered from cheapest to strongest (their order in steward.yaml). The rules, in
order: a per-agent override for the step's role; a high-consequence step (its output is
sent, published or acted on) gets the strongest tier; a nearly spent budget gets the
cheapest; a hard step gets the tier above the cheapest; everything else the cheapest.
Consequence outranks budget on purpose: a cheap draft that goes to a customer is the
wrong saving, and the budget check still stops or asks before the call. The tier and the
rule that chose it are recorded with the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from steward.budget import remaining_fraction
from steward.models import AgentProfile, Ledger

FAST = "fast"
STRONG = "strong"
LOW_BUDGET = 0.2
"""Below this share of any budget limit left, routing saves: the cheapest tier."""


@dataclass(frozen=True)
class Step:
    """What a model call is for: its role, how hard it is, and what its output feeds."""

    role: str
    difficulty: Literal["low", "high"] = "low"
    consequence: Literal["low", "high"] = "low"


@dataclass(frozen=True)
class TierChoice:
    """The tier for a call and the rule that picked it."""

    tier: str
    rule: str


def choose_tier(step: Step, profile: AgentProfile, ledger: Ledger | None = None) -> TierChoice:
    """Apply the routing rules to one step."""
    order = profile.tier_order or [FAST, STRONG]
    cheapest, strongest = order[0], order[-1]
    override = profile.tiers.get(step.role)
    if override:
        return TierChoice(override, f"agent {profile.name} routes {step.role} to {override}")
    if step.consequence == "high":
        return TierChoice(strongest, f"{step.role} feeds an action: consequence high")
    left = remaining_fraction(profile.budget, ledger) if ledger is not None else None
    if left is not None and left < LOW_BUDGET:
        return TierChoice(cheapest, f"budget nearly spent ({left:.0%} left): cheapest tier")
    if step.difficulty == "high":
        return TierChoice(order[min(1, len(order) - 1)], f"{step.role} is hard: difficulty high")
    return TierChoice(cheapest, f"{step.role} is low difficulty and low consequence")
