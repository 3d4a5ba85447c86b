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

from steward.models import AgentProfile, ApprovalRule, RiskClass, ToolSpec

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


class ApprovalConfig(_Section):
    """Which approver group must approve, and within how long."""

    group: str
    timeout_seconds: float = Field(default=3600.0, gt=0)


class ToolConfig(_Section):
    """Per-tool policy settings that override the registry's defaults."""

    risk: RiskClass | None = None
    privileged: bool | None = None
    decision: Literal["allow", "approve", "deny"] | None = None
    approval: ApprovalConfig | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600)


class AgentConfig(_Section):
    """A playbook (steps in code) or an agent (the model picks tools)."""

    kind: Literal["playbook", "agent"]
    description: str = ""
    instructions: str = ""
    tools: list[str] = Field(default_factory=list)
    tiers: dict[str, str] = Field(default_factory=dict)
    max_turns: int = Field(default=8, ge=1, le=100)


class StewardConfig(_Section):
    """The whole of steward.yaml."""

    tiers: dict[str, list[Deployment]] = Field(min_length=1)
    approvers: dict[str, list[str]] = Field(default_factory=dict)
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    outbox: str = Field(default=".steward/outbox", description="directory of delivered .eml files")
    sender: str = Field(default="support@steward.local", description="From: of sent email")

    @model_validator(mode="after")
    def _references_resolve(self) -> StewardConfig:
        for tier, deployments in self.tiers.items():
            if not deployments:
                raise ValueError(f"tiers.{tier}: list at least one deployment")
        for name, tool in self.tools.items():
            if tool.approval and tool.approval.group not in self.approvers:
                raise ValueError(
                    f"tools.{name}.approval.group: no approver group "
                    f"{tool.approval.group!r} (known: {sorted(self.approvers)})"
                )
        for name, agent in self.agents.items():
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
            approval = ApprovalRule(
                approvers=self.approvers[override.approval.group],
                timeout_seconds=override.approval.timeout_seconds,
            )
        return base.model_copy(
            update={
                "risk": override.risk or base.risk,
                "privileged": base.privileged
                if override.privileged is None
                else override.privileged,
                "decision": override.decision or base.decision,
                "approval": approval,
                "timeout_seconds": override.timeout_seconds or base.timeout_seconds,
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
