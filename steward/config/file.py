"""The whole of steward.yaml, and the checks across its sections.

Each section validates itself in its own module; what one section says about another
(an agent's tier, a tool's approver group, a chain of handoffs) is checked here.
`StewardConfig.profile` resolves an agent into the payload a run records; the work is in
`steward.config.profiles`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from steward.config import profiles
from steward.config.agents import GUARDED_STEPS, AgentConfig
from steward.config.approvals import IdentityConfig, NotifyConfig
from steward.config.blobs import BlobConfig
from steward.config.environments import DEFAULT_NAMESPACE, EnvironmentConfig
from steward.config.mcp import MCPServerConfig
from steward.config.models import Deployment
from steward.config.retrieval import RetrievalConfig
from steward.config.tools import FilesConfig, HttpConfig, SmtpConfig, ToolConfig
from steward.guardrails import Guardrail, JudgeCheck
from steward.models import AgentProfile, ToolSpec
from steward.strict import Strict

_ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class StewardConfig(Strict):
    """The whole of steward.yaml. Tiers are listed from cheapest to strongest."""

    tiers: dict[str, list[Deployment]] = Field(min_length=1)
    approvers: dict[str, list[str]] = Field(default_factory=dict)
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    outbox: str = Field(default=".steward/outbox", description="directory of delivered .eml files")
    sender: str = Field(default="support@steward.local", description="From: of sent email")
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    smtp: SmtpConfig | None = Field(
        default=None, description="send_email goes through this server; else to the outbox"
    )
    files: FilesConfig = Field(default_factory=FilesConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    mcp_servers: dict[str, MCPServerConfig] = Field(default_factory=dict)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    blobs: BlobConfig = Field(default_factory=BlobConfig)
    environments: dict[str, EnvironmentConfig] = Field(
        default_factory=dict, description="environment name -> namespace and overrides"
    )
    _environment: str | None = PrivateAttr(default=None)

    @property
    def environment(self) -> str | None:
        """The environment whose overrides are merged in, or None for the file as written."""
        return self._environment

    @property
    def namespace(self) -> str:
        """The Temporal namespace this config runs in: its environment's, else "default"."""
        if self._environment is None:
            return DEFAULT_NAMESPACE
        return self.environments[self._environment].namespace

    @property
    def namespaces(self) -> list[str]:
        """Every namespace the file names: "default" first, then each environment's."""
        names = [DEFAULT_NAMESPACE]
        for environment in self.environments.values():
            if environment.namespace not in names:
                names.append(environment.namespace)
        return names

    @model_validator(mode="before")
    @classmethod
    def _no_shared_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "approver_keys" in data:
            raise ValueError(
                "approver_keys: shared approval keys are gone (whoever verified could sign); "
                "list each person's public key under identity.public_keys instead "
                "(`steward keys new NAME` makes a key pair and prints the public key)"
            )
        return data

    @field_validator("environments")
    @classmethod
    def _environment_names(
        cls, value: dict[str, EnvironmentConfig]
    ) -> dict[str, EnvironmentConfig]:
        for name in value:
            if not _ENVIRONMENT_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: use letters, digits, - and _")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> StewardConfig:
        for tier, deployments in self.tiers.items():
            if not deployments:
                raise ValueError(f"tiers.{tier}: list at least one deployment")
        for group, members in self.approvers.items():
            if not members:
                raise ValueError(f"approvers.{group}: list at least one approver")
        if self.smtp is not None:
            # A send still talking to the server when Temporal times the attempt out can
            # overlap with the retry; one network operation must end well before that.
            send = self.tools.get("send_email", ToolConfig()).timeout_seconds
            limit = send or ToolSpec.model_fields["timeout_seconds"].default
            if self.smtp.timeout_seconds >= limit:
                raise ValueError(
                    f"smtp.timeout_seconds ({self.smtp.timeout_seconds:g}) must be below "
                    f"send_email's timeout ({limit:g}s; tools.send_email.timeout_seconds)"
                )
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
            for collection in agent.collections:
                if collection not in self.retrieval.collections:
                    raise ValueError(
                        f"agents.{name}.collections: unknown collection {collection!r} "
                        f"(known: {sorted(self.retrieval.collections)})"
                    )
            for tier in agent.model_tiers:
                if tier not in self.tiers:
                    raise ValueError(
                        f"agents.{name}.model_tiers: unknown tier {tier!r} "
                        f"(known: {sorted(self.tiers)})"
                    )
            for role, tier in agent.tiers.items():
                if tier not in self.tiers:
                    raise ValueError(
                        f"agents.{name}.tiers.{role}: unknown tier {tier!r} "
                        f"(known: {sorted(self.tiers)})"
                    )
                if agent.model_tiers and tier not in agent.model_tiers:
                    raise ValueError(
                        f"agents.{name}.tiers.{role}: tier {tier!r} is not among the "
                        f"agent's model_tiers {agent.model_tiers}"
                    )
        self._specialists_resolve()
        self._guardrails_resolve()
        return self

    def _guardrails_resolve(self) -> None:
        """Guardrails guard steps that exist, and their judges use configured tiers."""
        placed: list[tuple[str, Guardrail]] = []
        for name, tool in self.tools.items():
            placed += [(f"tools.{name}.guardrails.{arg}", g) for arg, g in tool.guardrails.items()]
        for server, listed in self.mcp_servers.items():
            for name, mcp_tool in listed.tools.items():
                where = f"mcp_servers.{server}.tools.{name}.guardrails"
                placed += [(f"{where}.{arg}", g) for arg, g in mcp_tool.guardrails.items()]
        for name, agent in self.agents.items():
            steps = GUARDED_STEPS[agent.kind]
            if agent.draft != "write" and agent.kind != "playbook":
                raise ValueError(
                    f"agents.{name}.draft: only a playbook drafts a reply; an agent answers "
                    "in its own words"
                )
            for step, guardrail in agent.guardrails.items():
                if step not in steps:
                    raise ValueError(
                        f"agents.{name}.guardrails.{step}: a {agent.kind} has no step {step!r} "
                        f"to guard (steps: {', '.join(sorted(steps))})"
                    )
                placed.append((f"agents.{name}.guardrails.{step}", guardrail))
            if agent.input_guardrails is not None:
                placed.append((f"agents.{name}.input_guardrails", agent.input_guardrails))
        for where, guardrail in placed:
            for check in guardrail.checks:
                if isinstance(check, JudgeCheck) and check.tier not in self.tiers:
                    raise ValueError(
                        f"{where}: llm_judge tier {check.tier!r} is not a tier "
                        f"(tiers: {sorted(self.tiers)})"
                    )

    def _specialists_resolve(self) -> None:
        """Every specialist is another agent, and no chain of handoffs leads back."""
        for name, agent in self.agents.items():
            if agent.specialists and agent.kind != "agent":
                raise ValueError(
                    f"agents.{name}.specialists: only agents hand off; {name!r} is a playbook"
                )
            for specialist in agent.specialists:
                where = f"agents.{name}.specialists"
                if specialist == name:
                    raise ValueError(f"{where}: {name!r} cannot be its own specialist")
                other = self.agents.get(specialist)
                if other is None:
                    agents = sorted(a for a, c in self.agents.items() if c.kind == "agent")
                    raise ValueError(f"{where}: unknown agent {specialist!r} (agents: {agents})")
                if other.kind != "agent":
                    raise ValueError(
                        f"{where}: {specialist!r} is a playbook; a specialist must be an agent"
                    )
        for name in self.agents:
            cycle = self._handoff_cycle(name, [name])
            if cycle is not None:
                raise ValueError(
                    f"agents.{name}.specialists: handoffs go round in a cycle "
                    f"({' -> '.join(cycle)})"
                )

    def _handoff_cycle(self, name: str, path: list[str]) -> list[str] | None:
        for specialist in self.agents[name].specialists:
            if specialist in path:
                return [*path, specialist]
            found = self._handoff_cycle(specialist, [*path, specialist])
            if found is not None:
                return found
        return None

    def profile(self, name: str, registry: Mapping[str, ToolSpec]) -> AgentProfile:
        """Resolve an agent's profile: its tools as full specs, approver groups expanded."""
        return profiles.resolve_profile(self, name, registry)

    def digest(self) -> str:
        """SHA-256 (first 16 hex) of this config as resolved, environment merged in.

        Recorded with every run's profile, so a run shows which config decided it.
        """
        canonical = json.dumps(
            {"environment": self._environment, "config": self.model_dump(mode="json")},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def public_keys_for(self, profile: AgentProfile) -> dict[str, str]:
        """The public keys of everyone who may decide one of this profile's approvals."""
        return profiles.public_keys_for(self, profile)

    def check_agents(self, registry: Mapping[str, ToolSpec]) -> None:
        """Resolve every agent once, so a worker refuses to start with a config that
        grants an unknown tool or names a key that is missing (ConfigError naming it).
        """
        profiles.check_agents(self, registry)
