"""Runs started with arbitrary input: each ends (or waits for a human), never loops on a
failing workflow task.

A client other than the CLI can start a run with any payload, and a RunRequest that
validates can still carry values nobody tried: targets nobody configured, budget caps of
any size; MCP servers can describe their tools with schemas of any shape. The property is
the same for all of them: no WorkflowTaskFailed in the run's history.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from steward.config import StewardConfig
from steward.models import (
    MAX_WAIT_SECONDS,
    MCPToolList,
    MCPToolsRequest,
    RunProgress,
    RunRequest,
    ToolInvocation,
    ToolResult,
)
from tests.fuzz.running import closed, fuzz_on_loop, run_settings, stop, task_failures, until
from tests.fuzz.strategies import json_values, long_texts, mutated, run_requests
from tests.support.fake_model import FakeModel
from tests.support.stack import activities_for_tests, running_workers

RUN_WORKFLOWS = ("AgentWorkflow", "SupportReplyWorkflow")
SEND = {"to": "ops@example.com", "subject": "Backup", "body": "The backup finished."}


def answer(text: str = "done") -> str:
    """A model turn that ends an agent run; a playbook takes it as any other text."""
    return json.dumps({"action": "answer", "answer": text})


async def settle(handle: WorkflowHandle[Any, Any], timeout: float = 10) -> str:
    """Wait until the run ended, waits for a human, or failed a workflow task; say which."""
    state = "still running"

    async def settled() -> bool:
        nonlocal state
        if await closed(handle):
            state = "closed"
        elif await task_failures(handle):
            state = "task failed"
        elif await _waiting(handle):
            state = "waiting for approval"
        else:
            return False
        return True

    await until(settled, timeout)
    return state


async def _waiting(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        progress: RunProgress = await handle.query(
            "progress", result_type=RunProgress, rpc_timeout=timedelta(seconds=0.5)
        )
    except (RPCError, WorkflowQueryFailedError):
        return False  # no workflow task has completed (yet)
    return bool(progress.pending)


async def start(
    client: Client, workflow: str, task_queue: str, arguments: list[Any]
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        workflow, args=arguments, id=f"fuzz-{uuid.uuid4().hex[:10]}", task_queue=task_queue
    )


async def assert_no_task_failure(handle: WorkflowHandle[Any, Any]) -> None:
    try:
        state = await settle(handle)
        failures = await task_failures(handle)
        assert failures == [], f"{state}; workflow task failed: {failures[0][:300]}"
        assert state != "still running", "the run neither ended nor waited for anyone"
    finally:
        await stop(handle)


async def test_valid_requests_end_or_wait_without_task_failures(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    async with running_workers(client, config, task_queue):

        async def run(workflow: str, request: dict[str, Any]) -> None:
            fake_model.queue(answer()).queue(answer())
            sent = RunRequest.model_validate(request)
            await assert_no_task_failure(await start(client, workflow, task_queue, [sent]))

        def fuzz(on_loop: Callable[[Coroutine[Any, Any, None]], None]) -> Callable[[], None]:
            @run_settings(12)
            @given(workflow=st.sampled_from(RUN_WORKFLOWS), request=run_requests(bounded=True))
            def runs(workflow: str, request: dict[str, Any]) -> None:
                on_loop(run(workflow, request))

            return runs

        await fuzz_on_loop(fuzz)


async def fuzz_malformed_inputs(
    client: Client,
    config: StewardConfig,
    task_queue: str,
    inputs: st.SearchStrategy[list[Any]],
) -> None:
    async with running_workers(client, config, task_queue):

        async def run(workflow: str, arguments: list[Any]) -> None:
            handle = await start(client, workflow, task_queue, arguments)
            await assert_no_task_failure(handle)

        def fuzz(on_loop: Callable[[Coroutine[Any, Any, None]], None]) -> Callable[[], None]:
            @run_settings(10)
            @given(workflow=st.sampled_from(RUN_WORKFLOWS), arguments=inputs)
            @example(workflow="AgentWorkflow", arguments=[{"input": "hello"}])
            def runs(workflow: str, arguments: list[Any]) -> None:
                on_loop(run(workflow, arguments))

            return runs

        await fuzz_on_loop(fuzz)


async def test_malformed_run_inputs_fail_the_run_not_its_task(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    valid = run_requests(bounded=True)
    inputs = st.one_of(
        json_values.map(lambda value: [value]),
        mutated(valid, values=json_values | long_texts).map(lambda changed: [changed[0]]),
    ).filter(lambda args: not _is_request(args))
    await fuzz_malformed_inputs(client, config, task_queue, inputs)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "LIMITATION (the Temporal SDK): a run started with no argument or with two calls "
        "run() with the wrong number of arguments; the TypeError fails the workflow task, "
        "which retries until someone terminates the run. Only a non-Steward client can "
        "send that; steward run and start_run always send one RunRequest"
    ),
)
async def test_run_inputs_of_the_wrong_arity_fail_the_run_not_its_task(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    inputs = st.lists(json_values, max_size=2).filter(lambda args: len(args) != 1)
    await fuzz_malformed_inputs(client, config, task_queue, inputs)


def _is_request(arguments: list[Any]) -> bool:
    if len(arguments) != 1:
        return False
    try:
        RunRequest.model_validate(arguments[0])
    except ValidationError:
        return False
    return True


def agent_request(**fields: Any) -> dict[str, Any]:
    """An agent run of the example helpdesk, whose model calls a tool first."""
    return {"target": "helpdesk", "input": "Tell ops the backup finished", "principal": "dana"} | (
        fields
    )


async def run_extreme(
    client: Client, fake_model: FakeModel, task_queue: str, request: dict[str, Any], call: str
) -> None:
    """Start `request` as sent, unchecked by any client; the model calls `call` if it runs."""
    fake_model.queue(call).queue(answer())
    await assert_no_task_failure(await start(client, "AgentWorkflow", task_queue, [request]))


async def test_approval_timeouts_as_long_as_the_config_allows_never_fail_the_task(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    # Deadlines come from the workers' config, bounded there; the longest one still works.
    data = config.model_dump()
    data["tools"]["send_email"]["approval"]["timeout_seconds"] = MAX_WAIT_SECONDS
    longest = StewardConfig.model_validate(data)
    call = json.dumps({"action": "send_email", "arguments": SEND})
    async with running_workers(client, longest, task_queue):
        await run_extreme(client, fake_model, task_queue, agent_request(), call)


async def test_budget_caps_of_any_size_never_fail_the_task(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    async with running_workers(client, config, task_queue):

        async def run(limit: int) -> None:
            request = agent_request(budget_cap={"max_tokens": limit})
            await run_extreme(client, fake_model, task_queue, request, answer())

        def fuzz(on_loop: Callable[[Coroutine[Any, Any, None]], None]) -> Callable[[], None]:
            @run_settings(5)
            @given(limit=st.one_of(st.integers(min_value=10**300), st.integers(max_value=0)))
            @example(limit=10**400)
            def runs(limit: int) -> None:
                on_loop(run(limit))

            return runs

        await fuzz_on_loop(fuzz)


class ShapeShiftingServer:
    """An MCP server (as its activities) that describes its one tool with any schema."""

    def __init__(self) -> None:
        self.schema: dict[str, Any] = {}

    @activity.defn(name="describe_mcp_tools")
    async def describe_mcp_tools(self, request: MCPToolsRequest) -> MCPToolList:
        info = {"name": "add", "description": "adds a note", "input_schema": self.schema}
        return MCPToolList.model_validate({"tools": [info]})

    @activity.defn(name="call_mcp_tool")
    async def call_mcp_tool(self, invocation: ToolInvocation) -> ToolResult:
        return ToolResult(tool=invocation.call.tool, ok=True, output="added")


async def test_mcp_schemas_of_any_shape_never_fail_the_task(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    data = config.model_dump()
    data["mcp_servers"] = {"notes": {"command": ["notes"], "tools": {"add": {"risk": "read"}}}}
    data["agents"]["helpdesk"]["tools"].append("notes.add")
    with_notes = StewardConfig.model_validate(data)
    server = ShapeShiftingServer()
    activities = activities_for_tests(with_notes)
    activities.mcp = server
    call = json.dumps({"action": "notes.add", "arguments": {"text": "hi"}})
    async with running_workers(client, with_notes, task_queue, activities):

        async def run(schema: dict[str, Any]) -> None:
            server.schema = schema
            await run_extreme(client, fake_model, task_queue, agent_request(), call)

        def fuzz(on_loop: Callable[[Coroutine[Any, Any, None]], None]) -> Callable[[], None]:
            @run_settings(5)
            @given(schema=st.dictionaries(st.sampled_from(["type", "$ref"]), json_values))
            @example(schema={"$ref": "#"})
            def runs(schema: dict[str, Any]) -> None:
                on_loop(run(schema))

            return runs

        await fuzz_on_loop(fuzz)
