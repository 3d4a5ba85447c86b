"""Resolving an agent of steward.yaml into the profile a run records.

The workers call this when a run starts: tool names become full specs with their
overrides, approver groups become the people in them, a budget's extension its rule, and
each specialist its own profile, resolved now so its grants are fixed when the parent
starts. The result (`steward.payloads.AgentProfile`) goes into history; a run never needs
the file again. Every problem is a ConfigError naming the field in steward.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError

from steward.config.approvals import ApprovalConfig
from steward.config.errors import ConfigError
from steward.config.models import BudgetConfig
from steward.config.tools import ToolConfig
from steward.models import AgentProfile, ApprovalRule, Budget, Escalation, RiskClass, ToolSpec
from steward.retrieval import SEARCH_DOCS
from steward.targets import PLAYBOOKS

if TYPE_CHECKING:
    from steward.config.file import StewardConfig


def resolve_profile(
    config: StewardConfig, name: str, registry: Mapping[str, ToolSpec]
) -> AgentProfile:
    """Resolve an agent's profile: its tools as full specs, approver groups expanded."""
    agent = config.agents.get(name)
    if agent is None:
        known = ", ".join(sorted(config.agents)) or "none"
        raise ConfigError(f"unknown playbook or agent {name!r} (configured: {known})")
    return AgentProfile(
        name=name,
        kind=agent.kind,
        description=agent.description,
        instructions=agent.instructions,
        tools=[
            _mcp_spec(config, name, tool)
            if "." in tool
            else _tool_spec(config, name, tool, registry)
            for tool in agent.tools
        ],
        tiers=agent.tiers,
        collections=agent.collections,
        max_turns=agent.max_turns,
        context_chars=agent.context_chars,
        continue_after=agent.continue_after,
        # Routing picks only among the tiers granted, cheapest to strongest as listed.
        tier_order=[t for t in config.tiers if not agent.model_tiers or t in agent.model_tiers],
        deployments={
            tier: [d.model for d in ds]
            for tier, ds in config.tiers.items()
            if not agent.model_tiers or tier in agent.model_tiers
        },
        budget=_budget(config, agent.budget),
        # Resolved now, so each specialist's grants are fixed when the parent starts.
        specialists=[
            resolve_profile(config, specialist, registry) for specialist in agent.specialists
        ],
        max_parallel=agent.max_parallel,
        guardrails=agent.guardrails,
        input_guardrail=agent.input_guardrails,
        draft=agent.draft,
    )


def _mcp_spec(config: StewardConfig, agent: str, tool: str) -> ToolSpec:
    server, _, name = tool.partition(".")
    listed = config.mcp_servers.get(server)
    settings = listed.tools.get(name) if listed is not None else None
    if settings is None:
        known = [f"{s}.{t}" for s, c in config.mcp_servers.items() for t in c.tools]
        raise ConfigError(
            f"agents.{agent}.tools: {tool!r} is not an MCP tool listed under mcp_servers "
            f"(listed: {', '.join(sorted(known)) or 'none'})"
        )
    where = f"mcp_servers.{server}.tools.{name}.approval"
    return ToolSpec(
        name=tool,
        description=settings.description,
        risk=settings.risk,
        scopes=[f"mcp:{server}"],
        privileged=settings.privileged,
        decision=settings.decision,
        approval=_rule(config, settings.approval, where, settings.risk)
        if settings.approval
        else None,
        timeout_seconds=settings.timeout_seconds,
        retry_seconds=settings.retry_seconds,
        max_calls_per_run=settings.max_calls_per_run,
        mcp_server=server,
        guardrails=settings.guardrails,
    )


def _rule(
    config: StewardConfig, approval: ApprovalConfig, where: str, risk: RiskClass | None = None
) -> ApprovalRule:
    for group in (approval.group, approval.escalate.group if approval.escalate else None):
        if group is not None and group not in config.approvers:
            raise ConfigError(
                f"{where}: no approver group {group!r} (known: {sorted(config.approvers)})"
            )
    signed = approval.signed or (risk is not None and risk in config.identity.signed_approvals)
    if signed:
        groups = [approval.group, *([approval.escalate.group] if approval.escalate else [])]
        unkeyed = [
            person
            for group in groups
            for person in config.approvers[group]
            if person not in config.identity.public_keys
        ]
        if unkeyed:
            raise ConfigError(
                f"{where}: decisions must be signed, but {', '.join(sorted(set(unkeyed)))} "
                "has no key in identity.public_keys (`steward keys new NAME`)"
            )
    escalation = None
    if approval.escalate is not None:
        escalation = Escalation(
            approvers=config.approvers[approval.escalate.group],
            timeout_seconds=approval.escalate.timeout_seconds,
        )
    try:
        return ApprovalRule(
            approvers=config.approvers[approval.group],
            timeout_seconds=approval.timeout_seconds,
            required=approval.required,
            escalation=escalation,
            signed=signed,
        )
    except ValidationError as err:
        raise ConfigError(f"{where}: {err.errors()[0]['msg']}") from None


def _budget(config: StewardConfig, budget: BudgetConfig) -> Budget:
    approval = None
    if budget.approval is not None:
        approval = _rule(config, budget.approval, "budget.approval")
    return Budget(
        max_cost_usd=budget.max_cost_usd,
        max_tokens=budget.max_tokens,
        max_model_calls=budget.max_model_calls,
        on_exceed=budget.on_exceed,
        approval=approval,
    )


def _tool_spec(
    config: StewardConfig, agent: str, tool: str, registry: Mapping[str, ToolSpec]
) -> ToolSpec:
    base = registry.get(tool)
    if base is None:
        raise ConfigError(
            f"agents.{agent}.tools: unknown tool {tool!r} (available: {sorted(registry)})"
        )
    override = config.tools.get(tool, ToolConfig())
    if tool == SEARCH_DOCS:
        granted = config.agents[agent].collections
        if not granted:
            raise ConfigError(
                f"agents.{agent}.tools: search_docs needs collections granted "
                f"(agents.{agent}.collections)"
            )
        # The model learns which collections it may name from the tool's description.
        base = base.model_copy(
            update={"description": f"{base.description} collection: one of {granted}."}
        )
    approval = base.approval
    if override.approval is not None:
        approval = _rule(
            config, override.approval, f"tools.{tool}.approval", override.risk or base.risk
        )
    return base.model_copy(
        update={
            "risk": override.risk or base.risk,
            "privileged": base.privileged if override.privileged is None else override.privileged,
            "decision": override.decision or base.decision,
            "approval": approval,
            "timeout_seconds": override.timeout_seconds or base.timeout_seconds,
            "retry_seconds": override.retry_seconds or base.retry_seconds,
            "guardrails": override.guardrails or base.guardrails,
            "max_calls_per_run": override.max_calls_per_run or base.max_calls_per_run,
        }
    )


def public_keys_for(config: StewardConfig, profile: AgentProfile) -> dict[str, str]:
    """The public keys of everyone who may decide one of this profile's approvals."""
    rules = [tool.approval for tool in profile.tools if tool.approval is not None]
    if profile.budget.approval is not None:
        rules.append(profile.budget.approval)
    people = {
        person
        for rule in rules
        for person in [
            *rule.approvers,
            *(rule.escalation.approvers if rule.escalation else []),
        ]
    }
    keys = config.identity.public_keys
    return {person: keys[person] for person in sorted(people) if person in keys}


def check_agents(config: StewardConfig, registry: Mapping[str, ToolSpec]) -> None:
    """Resolve every agent once, so a worker refuses to start with a config that
    grants an unknown tool or names a key that is missing (ConfigError naming it).

    Settings under `tools:` must name a tool too: a misspelt name would otherwise be
    ignored, and the real tool would run on its defaults (a laxer approval, say).
    """
    known = sorted(registry)
    for tool in config.tools:
        if tool not in known:
            raise ConfigError(
                f"tools.{tool}: no tool of that name (tools: {', '.join(known)}; "
                "MCP tools are set under mcp_servers.SERVER.tools)"
            )
    for name, agent in config.agents.items():
        if agent.kind == "playbook" and name not in PLAYBOOKS:
            raise ConfigError(
                f"agents.{name}: kind playbook, but no playbook of that name exists in "
                f"code (playbooks: {', '.join(PLAYBOOKS)}); did you mean kind: agent?"
            )
        resolve_profile(config, name, registry)
