"""MCP tools through real MCP server processes, over stdio and streamable HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tools.mcp import MCPActivities, MCPConnection
from steward.models import MCPToolsRequest, ToolCall, ToolInvocation

REPO = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "tests.support.mcp_server"]


def invocation(tool: str, key: str = "wf.call-1", **arguments: object) -> ToolInvocation:
    return ToolInvocation(
        call=ToolCall(id="call-1", tool=tool, arguments=arguments),
        idempotency_key=key,
        agent="helpdesk",
        principal="dana",
    )


@pytest.fixture
def notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "notes.jsonl"
    monkeypatch.setenv("STEWARD_TEST_NOTES", str(path))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return path


@pytest.fixture
def stdio(notes: Path) -> MCPActivities:
    return MCPActivities(
        {"notes": MCPConnection(command=SERVER, env={"NOTES_FILE": "STEWARD_TEST_NOTES"})}
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http(notes: Path) -> Iterator[MCPActivities]:
    port = free_port()
    process = subprocess.Popen(
        [*SERVER, "--http", str(port)],
        cwd=REPO,
        env={"NOTES_FILE": str(notes), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield MCPActivities({"notes": MCPConnection(url=f"http://127.0.0.1:{port}/mcp")})
    process.terminate()
    process.wait(timeout=10)


async def test_describe_returns_only_the_exposed_tools(stdio: MCPActivities) -> None:
    listed = await ActivityEnvironment().run(
        stdio.describe_mcp_tools, MCPToolsRequest(server="notes", tools=["add_note"])
    )
    (tool,) = listed.tools
    assert tool.name == "add_note" and "Append a note" in tool.description
    assert tool.input_schema["required"] == ["text"]


async def test_describe_refuses_a_tool_the_server_lacks(stdio: MCPActivities) -> None:
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            stdio.describe_mcp_tools, MCPToolsRequest(server="notes", tools=["format_disk"])
        )
    assert caught.value.type == "MCPToolMissing" and caught.value.non_retryable
    assert "format_disk" in str(caught.value) and "add_note" in str(caught.value)


async def test_a_retried_call_writes_once(stdio: MCPActivities, notes: Path) -> None:
    for _ in range(2):
        result = await ActivityEnvironment().run(
            stdio.call_mcp_tool, invocation("notes.add_note", text="restock shoes")
        )
        assert result.ok
    assert [json.loads(line)["text"] for line in notes.read_text().splitlines()] == [
        "restock shoes"
    ]
    listed = await ActivityEnvironment().run(stdio.call_mcp_tool, invocation("notes.list_notes"))
    assert listed.output == "restock shoes"


async def test_a_tool_error_fails_the_call_with_the_servers_message(
    stdio: MCPActivities,
) -> None:
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(stdio.call_mcp_tool, invocation("notes.add_note", text=" "))
    assert caught.value.type == "MCPToolError" and caught.value.non_retryable
    assert "a note needs text" in str(caught.value)


async def test_unknown_server_is_refused(stdio: MCPActivities) -> None:
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(stdio.call_mcp_tool, invocation("other.add_note"))
    assert caught.value.type == "MCPServerUnknown"


async def test_streamable_http_server(http: MCPActivities, notes: Path) -> None:
    listed = await ActivityEnvironment().run(
        http.describe_mcp_tools, MCPToolsRequest(server="notes", tools=["add_note", "list_notes"])
    )
    assert [tool.name for tool in listed.tools] == ["add_note", "list_notes"]
    result = await ActivityEnvironment().run(
        http.call_mcp_tool, invocation("notes.add_note", text="over http")
    )
    assert result.output == "added note 1"
    assert "over http" in notes.read_text()
