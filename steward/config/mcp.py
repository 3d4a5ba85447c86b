"""MCP servers as tool sources: how each server is reached, and the tools of it an agent
may be granted.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from steward.bounds import CallsPerRun, RetryWindow, ToolDecision, ToolTimeout
from steward.config.approvals import ApprovalConfig
from steward.guardrails import Guardrail
from steward.models import RiskClass
from steward.strict import Strict


class MCPToolConfig(Strict):
    """One MCP tool an agent may be granted, with the policy settings it runs under.

    MCP servers do not say how risky their tools are, so steward.yaml must: a tool not
    listed here is never shown to a model.
    """

    risk: RiskClass
    description: str = Field(default="", description="overrides the server's description")
    privileged: bool = False
    decision: ToolDecision | None = None
    approval: ApprovalConfig | None = None
    timeout_seconds: ToolTimeout = 60.0
    retry_seconds: RetryWindow = 60.0
    max_calls_per_run: CallsPerRun | None = None
    guardrails: dict[str, Guardrail] = Field(
        default_factory=dict, description="argument -> checks its text must pass"
    )


class MCPServerConfig(Strict):
    """An MCP server: a command speaking stdio, or a streamable HTTP URL."""

    command: list[str] = Field(default_factory=list)
    url: str | None = None
    env: dict[str, str] = Field(
        default_factory=dict,
        description="variable for the server -> name of the worker variable holding its value",
    )
    tools: dict[str, MCPToolConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either command (stdio) or url (streamable HTTP), not both")
        return self
