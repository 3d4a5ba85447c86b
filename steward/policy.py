"""Pure policy: decide, for one tool call, whether to allow it, ask a human, or deny it.

A function of the tool's spec, the agent's profile and the run's state only, so it is
deterministic inside workflows and testable without Temporal. Risky classes default to an
approval; a tool the agent was not granted is always denied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from steward.models import AgentProfile, ApprovalRule, RiskClass, ToolCall, ToolSpec
from steward.retrieval import SEARCH_DOCS, not_granted

RISK_DEFAULTS: Mapping[RiskClass, Literal["allow", "approve", "deny"]] = {
    RiskClass.READ: "allow",
    RiskClass.WRITE: "approve",
    RiskClass.SEND: "approve",
    RiskClass.PUBLISH: "approve",
    RiskClass.DELETE: "approve",
    RiskClass.PURCHASE: "approve",
}


@dataclass(frozen=True)
class Allow:
    """Run the tool now."""

    reason: str
    kind: Literal["allow"] = "allow"


@dataclass(frozen=True)
class NeedsApproval:
    """Run the tool only after the approvers in `rule` say yes."""

    reason: str
    rule: ApprovalRule
    kind: Literal["approve"] = "approve"


@dataclass(frozen=True)
class Deny:
    """Do not run the tool; tell the model why."""

    reason: str
    kind: Literal["deny"] = "deny"


Decision = Allow | NeedsApproval | Deny


@dataclass(frozen=True)
class RunState:
    """What the run has done so far, as far as the policy cares."""

    calls_by_tool: Mapping[str, int] = field(default_factory=dict)


def granted_tool(profile: AgentProfile, name: str) -> ToolSpec | None:
    """The spec of a tool this agent was granted, or None."""
    return next((tool for tool in profile.tools if tool.name == name), None)


def decide(call: ToolCall, profile: AgentProfile, state: RunState) -> Decision:
    """Decide one tool call. Unknown or ungranted tools are denied, never guessed at."""
    spec = granted_tool(profile, call.tool)
    if spec is None:
        return Deny(f"tool {call.tool!r} is not granted to {profile.name!r}")
    if spec.name == SEARCH_DOCS:
        collection = str(call.arguments.get("collection"))
        refused = not_granted(collection, profile.collections, profile.name)
        if refused is not None:
            return Deny(refused)
    made = state.calls_by_tool.get(spec.name, 0)
    if spec.max_calls_per_run is not None and made >= spec.max_calls_per_run:
        return Deny(
            f"{spec.name} already ran {made} times in this run (cap {spec.max_calls_per_run})"
        )
    verdict = spec.decision or RISK_DEFAULTS[spec.risk]
    source = "tool setting" if spec.decision else f"default for risk class {spec.risk.value!r}"
    if verdict == "deny":
        return Deny(f"{spec.name} is denied ({source})")
    if verdict == "allow":
        return Allow(f"{spec.name} is allowed ({source})")
    if spec.approval is None:
        return Deny(f"{spec.name} needs approval ({source}) but has no approvers configured")
    rule = spec.approval
    who = f"{rule.required} of " if rule.required > 1 else "one of "
    return NeedsApproval(
        f"{spec.name} needs approval by {who}{', '.join(rule.approvers)} ({source})", rule
    )
