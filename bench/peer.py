"""The benchmark's peer: the same small agent task on pydantic-ai's Temporal integration.

`make bench` compares Steward's agent run with this one, so it is built the way
pydantic-ai's documentation builds a durable agent: an `Agent` with the
`TemporalDurability` capability and one tool, defined at module level next to the workflow
that runs it, and a worker whose client carries `PydanticAIPlugin`. The model is a
`FunctionModel` that answers like Steward's bench fake, with the same latency: first it
asks for `http_get` on the URL in the task, then, once it has the tool's result, it
answers. The tool fetches that URL as Steward's `http_get` does (a fresh httpx client,
no redirects). `bench/overhead.py` runs the worker in its own process, so its memory and
its GIL are its own.

pydantic-ai is a benchmark extra: only `bench/` imports this module.
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import timedelta

import httpx

# `make test` type-checks bench/ without the bench extra installed; these ignores are for
# that case and unused (so allowed to be) when pydantic-ai is there.
from pydantic_ai import (  # type: ignore[import-not-found, unused-ignore]
    Agent,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.durable_exec.temporal import (  # type: ignore[import-not-found, unused-ignore]
    PydanticAIPlugin,
    PydanticAIWorkflow,
    TemporalDurability,
)
from pydantic_ai.models.function import (  # type: ignore[import-not-found, unused-ignore]
    AgentInfo,
    FunctionModel,
)
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.workflow import ActivityConfig

WORKFLOW = "PeerAgentWorkflow"
ANSWER = "ok"
# Read where the model activity runs (the worker process); the bench sets it there.
LATENCY_ENV = "STEWARD_BENCH_MODEL_LATENCY"
_URL = re.compile(r"https?://\S+")

# One TLS context for every call, as Steward's http_get tool keeps one.
TLS = httpx.create_ssl_context()


async def fake_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Ask for the URL in the task, then answer once the tool has returned."""
    await asyncio.sleep(float(os.environ.get(LATENCY_ENV, "0")))
    parts = [
        part for message in messages if isinstance(message, ModelRequest) for part in message.parts
    ]
    if any(isinstance(part, ToolReturnPart) for part in parts):
        return ModelResponse(parts=[TextPart(ANSWER)])
    prompt = " ".join(str(getattr(part, "content", "")) for part in parts)
    match = _URL.search(prompt)
    assert match is not None, f"no URL in the task: {prompt!r}"
    return ModelResponse(parts=[ToolCallPart("http_get", {"url": match.group()})])


agent = Agent(
    FunctionModel(fake_model, model_name="bench-fake"),
    name="bench_peer",
    instructions="You are a helpful helpdesk agent. Be brief.",
    capabilities=[
        TemporalDurability(
            activity_config=ActivityConfig(start_to_close_timeout=timedelta(minutes=3))
        )
    ],
)


@agent.tool_plain  # type: ignore[untyped-decorator, unused-ignore]
async def http_get(url: str) -> str:
    """Fetch a web page (url); returns status and text."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=15, verify=TLS) as client:
        response = await client.get(url)
    response.raise_for_status()
    return f"HTTP {response.status_code} {response.reason_phrase}\n\n{response.text}"


@workflow.defn(name=WORKFLOW)
class PeerAgentWorkflow(PydanticAIWorkflow):  # type: ignore[misc, unused-ignore]
    """One agent run: the task in, the agent's answer out."""

    __pydantic_ai_agents__ = [agent]

    @workflow.run
    async def run(self, task: str) -> str:
        result = await agent.run(task)
        return str(result.output)


async def connect(address: str) -> Client:
    """A client configured as pydantic-ai's documentation says."""
    return await Client.connect(address, plugins=[PydanticAIPlugin()])


async def run_worker(address: str, queue: str) -> None:
    client = await connect(address)
    async with Worker(client, task_queue=queue, workflows=[PeerAgentWorkflow]):
        print("ready", flush=True)  # the bench waits for this line
        await asyncio.Event().wait()
