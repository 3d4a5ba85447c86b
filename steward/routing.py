"""Pure routing: pick the model tier for one model call from what the workflow knows.

The tier and the rule that chose it are returned together so the workflow can record both
with the call. The worker maps a tier to concrete litellm deployments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from steward.models import AgentProfile

FAST = "fast"
STRONG = "strong"


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


def choose_tier(step: Step, profile: AgentProfile) -> TierChoice:
    """Per-agent override first, then difficulty and consequence."""
    override = profile.tiers.get(step.role)
    if override:
        return TierChoice(override, f"agent {profile.name} routes {step.role} to {override}")
    if step.consequence == "high":
        return TierChoice(STRONG, f"{step.role} feeds an action: consequence high")
    if step.difficulty == "high":
        return TierChoice(STRONG, f"{step.role} is hard: difficulty high")
    return TierChoice(FAST, f"{step.role} is low difficulty and low consequence")
