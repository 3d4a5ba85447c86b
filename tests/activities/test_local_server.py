"""The real local model behind a real OpenAI-compatible server, called by the `complete` activity.

This is the path a team takes when it runs its own model server (llama.cpp, Ollama, vLLM)
instead of a provider: a deployment `openai/<model>` with an api_base on this machine. The
server here is llama-cpp-python's, serving the SmolLM2 GGUF the project ships, started in
a subprocess through `tests.support.llama_server` (which works around the server's crash
on this CPU and its refusal of OpenAI's json_schema form; see that module).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from temporalio.testing import ActivityEnvironment

from activities.llm import LLMActivities
from activities.local_model import default_model_path
from steward.config import Deployment
from steward.models import LLMRequest, LLMResult, Message, ModelTool

pytestmark = pytest.mark.local_model

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0
CATEGORIES = ["billing", "bug", "other"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"category": {"type": "string", "enum": CATEGORIES}},
    "required": ["category"],
    "additionalProperties": False,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running llama_cpp.server on loopback; yields its api_base."""
    yield from serving(tmp_path_factory)


@pytest.fixture(scope="module")
def llama_tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server with the chat format llama-cpp-python calls tools in; yields its api_base."""
    yield from serving(tmp_path_factory, "--chat_format", "chatml-function-calling")


def serving(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "tests.support.llama_server",
        "--model",
        str(default_model_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--n_threads_batch",
        "2",
        "--verbose",
        "false",
        *extra,
    ]
    env = os.environ | {"OMP_WAIT_POLICY": "passive"}
    # A file, not a pipe: llama.cpp logs thousands of lines while loading, and a pipe
    # nobody reads would fill and block the server.
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(server, port, log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_serving(server: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            pytest.fail(f"llama server exited with {server.returncode} while starting:\n{tail}")
        with contextlib.suppress(httpx.TransportError):  # not listening yet
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"llama server not serving on port {port} after {STARTUP_SECONDS:.0f} s")


async def test_structured_answer_from_a_local_openai_compatible_server(llama_server: str) -> None:
    # No api_key_env and allow_paid=False: a server on this machine needs neither a key
    # nor permission to spend.
    deployment = Deployment(model="openai/smollm2", api_base=llama_server, timeout_seconds=60)
    activities = LLMActivities({"fast": [deployment]}, allow_paid=False)
    request = LLMRequest(
        step="classify",
        tier="fast",
        messages=[
            Message(
                role="system",
                content=f"Classify the support ticket as one of: {', '.join(CATEGORIES)}.",
            ),
            Message(role="user", content="I was charged twice for my subscription this month."),
        ],
        response_schema=SCHEMA,
        max_tokens=24,
    )

    result: LLMResult = await ActivityEnvironment().run(activities.complete, request)

    # The grammar guarantees the shape, not the judgement: any listed category will do.
    jsonschema.validate(json.loads(result.text), SCHEMA)
    assert (result.model, result.deployment) == ("openai/smollm2", 0)
    assert result.usage.input_tokens > 0
    assert 0 < result.usage.output_tokens <= 24
    assert result.usage.cost_usd is None  # litellm has no price for it: unknown, not free


async def test_native_tool_calls_from_a_local_openai_compatible_server(
    llama_tool_server: str,
) -> None:
    # llama-cpp-python calls tools only in its chatml-function-calling format, and cannot
    # stream an automatic tool choice: hence stream: false (see tests.support.llama_server).
    deployment = Deployment(
        model="openai/smollm2",
        api_base=llama_tool_server,
        tool_calling="native",
        stream=False,
        timeout_seconds=120,
    )
    activities = LLMActivities({"fast": [deployment]}, allow_paid=False)
    tools = [
        ModelTool(
            name="notes.add_note",  # an MCP tool's name: not a name providers take as it is
            description="Add a note to the team's notes.",
            parameters={
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        )
    ]
    messages = [
        Message(role="system", content="You are a helpdesk agent. Use the tools."),
        Message(role="user", content="Add a note that the nightly backup finished."),
    ]
    request = LLMRequest(step="turn-1", tier="fast", messages=messages, tools=tools, max_tokens=60)

    first: LLMResult = await ActivityEnvironment().run(activities.complete, request)

    assert first.path == "native"
    (call,) = first.tool_calls
    assert call.name == "notes.add_note"  # sent as notes_add_note, read back as the tool
    assert isinstance(json.loads(call.arguments)["text"], str)
    # The next turn carries the call and its result natively, and the server takes them.
    answered = [
        *messages,
        Message(role="assistant", content="", tool_calls=first.tool_calls),
        Message(role="tool", tool_call_id=call.id, content="noted"),
    ]
    second: LLMResult = await ActivityEnvironment().run(
        activities.complete, request.model_copy(update={"step": "turn-2", "messages": answered})
    )
    assert second.path == "native"
    assert second.tool_calls or second.text.strip()
