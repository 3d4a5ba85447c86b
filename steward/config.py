"""Load steward.yaml into typed settings: model tiers, approvers, tools and agents.

The file holds no secrets: a deployment names the environment variable its key lives in
(`api_key_env`), and only the worker that calls the model reads it. The CLI resolves an
agent's profile from this file when a run starts, so the profile in force travels in the
workflow input and is part of history.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from steward.models import (
    AgentProfile,
    ApprovalRule,
    Budget,
    Escalation,
    RiskClass,
    ToolSpec,
)

DEFAULT_CONFIG_PATHS = (Path("steward.yaml"), Path("examples/steward.yaml"))


class ConfigError(ValueError):
    """steward.yaml is missing or wrong; the message names the file and the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Deployment(_Section):
    """One litellm deployment: a model name, and for self-hosted endpoints its api_base."""

    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the key"
    )
    timeout_seconds: float = Field(default=120.0, gt=0)


class EscalationConfig(_Section):
    """The group asked when the first one lets the deadline pass."""

    group: str
    timeout_seconds: float = Field(default=3600.0, gt=0)


class ApprovalConfig(_Section):
    """Which approver group must approve, how many of them, within how long, then what."""

    group: str
    timeout_seconds: float = Field(default=3600.0, gt=0)
    required: int = Field(default=1, ge=1)
    escalate: EscalationConfig | None = None


class ToolConfig(_Section):
    """Per-tool policy settings that override the registry's defaults."""

    risk: RiskClass | None = None
    privileged: bool | None = None
    decision: Literal["allow", "approve", "deny"] | None = None
    approval: ApprovalConfig | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600)
    max_calls_per_run: int | None = Field(default=None, ge=1)


class BudgetConfig(_Section):
    """Per-run limits on model use; `approve` asks the group to extend instead of stopping."""

    max_cost_usd: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    max_model_calls: int | None = Field(default=None, gt=0)
    on_exceed: Literal["stop", "approve"] = "stop"
    approval: ApprovalConfig | None = None

    @model_validator(mode="after")
    def _approval_when_approving(self) -> BudgetConfig:
        if self.on_exceed == "approve" and self.approval is None:
            raise ValueError("on_exceed: approve needs approval: {group: ...}")
        return self


class AgentConfig(_Section):
    """A playbook (steps in code) or an agent (the model picks tools)."""

    kind: Literal["playbook", "agent"]
    description: str = ""
    instructions: str = ""
    tools: list[str] = Field(default_factory=list)
    tiers: dict[str, str] = Field(default_factory=dict)
    max_turns: int = Field(default=8, ge=1, le=100)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)


class NotifyConfig(_Section):
    """How approvers hear of requests: email (the outbox by default), optionally a webhook."""

    contacts: dict[str, str] = Field(
        default_factory=dict, description="approver name -> email address"
    )
    webhook_url_env: str | None = Field(
        default=None, description="environment variable holding the webhook URL (may carry a token)"
    )


class StewardConfig(_Section):
    """The whole of steward.yaml. Tiers are listed from cheapest to strongest."""

    tiers: dict[str, list[Deployment]] = Field(min_length=1)
    approvers: dict[str, list[str]] = Field(default_factory=dict)
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    outbox: str = Field(default=".steward/outbox", description="directory of delivered .eml files")
    sender: str = Field(default="support@steward.local", description="From: of sent email")
    notify: NotifyConfig = Field(default_factory=NotifyConfig)

    @model_validator(mode="after")
    def _references_resolve(self) -> StewardConfig:
        for tier, deployments in self.tiers.items():
            if not deployments:
                raise ValueError(f"tiers.{tier}: list at least one deployment")
        for name, tool in self.tools.items():
            groups = []
            if tool.approval:
                groups.append(("approval.group", tool.approval.group))
                if tool.approval.escalate:
                    groups.append(("approval.escalate.group", tool.approval.escalate.group))
            for field, group in groups:
                if group not in self.approvers:
                    raise ValueError(
                        f"tools.{name}.{field}: no approver group {group!r} "
                        f"(known: {sorted(self.approvers)})"
                    )
        for name, agent in self.agents.items():
            extender = agent.budget.approval.group if agent.budget.approval else None
            if extender is not None and extender not in self.approvers:
                raise ValueError(
                    f"agents.{name}.budget.approval.group: no approver group {extender!r} "
                    f"(known: {sorted(self.approvers)})"
                )
            for role, tier in agent.tiers.items():
                if tier not in self.tiers:
                    raise ValueError(
                        f"agents.{name}.tiers.{role}: unknown tier {tier!r} "
                        f"(known: {sorted(self.tiers)})"
                    )
        return self

    def profile(self, name: str, registry: Mapping[str, ToolSpec]) -> AgentProfile:
        """Resolve an agent's profile: its tools as full specs, approver groups expanded."""
        agent = self.agents.get(name)
        if agent is None:
            known = ", ".join(sorted(self.agents)) or "none"
            raise ConfigError(f"unknown playbook or agent {name!r} (configured: {known})")
        return AgentProfile(
            name=name,
            kind=agent.kind,
            description=agent.description,
            instructions=agent.instructions,
            tools=[self._tool_spec(name, tool, registry) for tool in agent.tools],
            tiers=agent.tiers,
            max_turns=agent.max_turns,
            tier_order=list(self.tiers),
            deployments={tier: [d.model for d in ds] for tier, ds in self.tiers.items()},
            budget=self._budget(agent.budget),
        )

    def _rule(self, approval: ApprovalConfig, where: str) -> ApprovalRule:
        escalation = None
        if approval.escalate is not None:
            escalation = Escalation(
                approvers=self.approvers[approval.escalate.group],
                timeout_seconds=approval.escalate.timeout_seconds,
            )
        try:
            return ApprovalRule(
                approvers=self.approvers[approval.group],
                timeout_seconds=approval.timeout_seconds,
                required=approval.required,
                escalation=escalation,
            )
        except ValidationError as err:
            raise ConfigError(f"{where}: {err.errors()[0]['msg']}") from None

    def _budget(self, budget: BudgetConfig) -> Budget:
        approval = None
        if budget.approval is not None:
            approval = self._rule(budget.approval, "budget.approval")
        return Budget(
            max_cost_usd=budget.max_cost_usd,
            max_tokens=budget.max_tokens,
            max_model_calls=budget.max_model_calls,
            on_exceed=budget.on_exceed,
            approval=approval,
        )

    def _tool_spec(self, agent: str, tool: str, registry: Mapping[str, ToolSpec]) -> ToolSpec:
        base = registry.get(tool)
        if base is None:
            raise ConfigError(
                f"agents.{agent}.tools: unknown tool {tool!r} (available: {sorted(registry)})"
            )
        override = self.tools.get(tool, ToolConfig())
        approval = base.approval
        if override.approval is not None:
            approval = self._rule(override.approval, f"tools.{tool}.approval")
        return base.model_copy(
            update={
                "risk": override.risk or base.risk,
                "privileged": base.privileged
                if override.privileged is None
                else override.privileged,
                "decision": override.decision or base.decision,
                "approval": approval,
                "timeout_seconds": override.timeout_seconds or base.timeout_seconds,
                "max_calls_per_run": override.max_calls_per_run or base.max_calls_per_run,
            }
        )


def find_config(explicit: str | Path | None = None) -> Path:
    """The config file to use: the one given, else ./steward.yaml, else the example."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    raise ConfigError("no steward.yaml here (nor examples/steward.yaml); pass --config FILE")


def load_config(path: str | Path | None = None) -> StewardConfig:
    """Read and validate steward.yaml; errors name the file and the offending field."""
    source = find_config(path)
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return StewardConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None
