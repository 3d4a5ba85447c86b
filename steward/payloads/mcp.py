"""MCP tools: which tools of one MCP server a run exposes, and how the server describes
them (the `describe_mcp_tools` activity). Calls to them are ordinary tool invocations.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from steward.strict import Strict, finite_json


class MCPToolsRequest(Strict):
    """Which tools of one MCP server a run exposes (the ones steward.yaml lists)."""

    server: str
    tools: list[str]


class MCPToolInfo(Strict):
    """An MCP tool as its server describes it."""

    name: str
    description: str
    input_schema: dict[str, Any]

    @field_validator("input_schema")
    @classmethod
    def _plain_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return finite_json(value)


class MCPToolList(Strict):
    """The exposed tools of one MCP server."""

    tools: list[MCPToolInfo]
