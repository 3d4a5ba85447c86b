"""Tools from MCP servers (stdio or streamable HTTP), through the official `mcp` package.

Two activities: `describe_mcp_tools` lists a server's tools and returns the description
and input schema of the ones steward.yaml exposes (a run calls it once at its start, so
the schemas are in history and replay never talks to a server); `call_mcp_tool` calls one.
Each call opens its own session: simple, and a crashed server costs one attempt, not the
worker. The call carries Steward's idempotency key in `_meta` so a server that honours it
can make a retried call a no-op. A tool that reports an error fails the activity with the
server's own message; credentials for a server come from the worker's environment by name.

The `mcp` package is imported when a server is first described or called: workflows refer
to these activities, and most workers never talk to an MCP server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from temporalio import activity
from temporalio.exceptions import ApplicationError

from steward.errors import (
    MCP_ERROR,
    MCP_SERVER_UNKNOWN,
    MCP_TOOL_ERROR,
    MCP_TOOL_MISSING,
    application_error,
)
from steward.models import MCPToolInfo, MCPToolList, MCPToolsRequest, ToolInvocation, ToolResult

if TYPE_CHECKING:
    from mcp import Client
    from mcp.shared.exceptions import MCPError
    from mcp_types import RequestParamsMeta

IDEMPOTENCY_META = "io.steward/idempotency-key"
MAX_OUTPUT_CHARS = 20_000
READ_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class MCPConnection:
    """How to reach one MCP server: a command (stdio) or a URL (streamable HTTP)."""

    command: Sequence[str] = ()
    url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables for a stdio server, by name -> the worker variable holding the value."""


class MCPActivities:
    """Lists and calls tools on the configured MCP servers."""

    def __init__(self, servers: Mapping[str, MCPConnection]) -> None:
        self.servers = dict(servers)

    @activity.defn(name="describe_mcp_tools")
    async def describe_mcp_tools(self, request: MCPToolsRequest) -> MCPToolList:
        """Descriptions and input schemas of the exposed tools of one server."""
        from mcp.shared.exceptions import MCPError

        async with self._client(request.server) as client:
            try:
                listed = await client.list_tools()
            except MCPError as err:
                raise _failure(request.server, "list_tools", err) from None
        found = {tool.name: tool for tool in listed.tools}
        missing = sorted(set(request.tools) - set(found))
        if missing:
            raise application_error(
                MCP_TOOL_MISSING,
                f"MCP server {request.server!r} has no tool {', '.join(missing)} "
                f"(it offers {', '.join(sorted(found))})",
            )
        return MCPToolList(
            tools=[
                MCPToolInfo(
                    name=name,
                    description=found[name].description or "",
                    input_schema=dict(found[name].input_schema),
                )
                for name in request.tools
            ]
        )

    @activity.defn(name="call_mcp_tool")
    async def call_mcp_tool(self, invocation: ToolInvocation) -> ToolResult:
        """Call `server.tool` with the validated arguments."""
        from mcp.shared.exceptions import MCPError
        from mcp_types import TextContent

        server, _, tool = invocation.call.tool.partition(".")
        async with self._client(server) as client:
            try:
                result = await client.call_tool(
                    tool,
                    invocation.call.arguments,
                    meta=cast("RequestParamsMeta", {IDEMPOTENCY_META: invocation.idempotency_key}),
                )
            except MCPError as err:
                raise _failure(server, tool, err) from None
        text = "\n".join(part.text for part in result.content if isinstance(part, TextContent))
        if result.is_error:
            raise application_error(MCP_TOOL_ERROR, f"{invocation.call.tool} failed: {text[:500]}")
        truncated = len(text) > MAX_OUTPUT_CHARS
        output = text[:MAX_OUTPUT_CHARS] + ("\n[truncated]" if truncated else "")
        return ToolResult(tool=invocation.call.tool, ok=True, output=output)

    def _client(self, server: str) -> Client:
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters

        connection = self.servers.get(server)
        if connection is None:
            raise application_error(
                MCP_SERVER_UNKNOWN,
                f"no MCP server {server!r} on this worker (configured: {sorted(self.servers)})",
            )
        target: Any
        if connection.url:
            target = connection.url
        else:
            command, *args = connection.command
            target = StdioServerParameters(
                command=command,
                args=args,
                env={
                    **_base_env(),
                    **{k: os.environ.get(v, "") for k, v in connection.env.items()},
                },
            )
        return Client(target, read_timeout_seconds=READ_TIMEOUT_SECONDS)


def _base_env() -> dict[str, str]:
    # A stdio server gets PATH and Python's own settings, not the worker's credentials.
    return {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG")}


def _failure(server: str, what: str, err: MCPError) -> ApplicationError:
    return application_error(MCP_ERROR, f"MCP {server}.{what}: {err}")
