"""The tool catalogue is the one place a tool is declared.

A tool added here, in this file only (its arguments, its entry, its activity), is offered
to the model, checked, routed to the privileged queue, run once, and recorded by the eval
sandbox, with no other file changed. A config granting a tool that the workers being
built do not serve stops them from starting, instead of leaving its runs waiting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import Field
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.evals import SandboxTools
from steward import queues, tools
from steward.config import ConfigError, StewardConfig
from steward.models import (
    RiskClass,
    RunResult,
    Strict,
    ToolCall,
    ToolInvocation,
    ToolResult,
    ToolSpec,
)
from steward.runs import start_run
from steward.tools import Tool
from tests.support.fake_model import FakeModel
from tests.support.histories import readable_history
from tests.support.stack import activities_for_tests, running_workers
from workers.build import build_workers, default_activities


class CountWordsArgs(Strict):
    """The example tool's arguments."""

    text: str = Field(min_length=1)


COUNT_WORDS = Tool(
    spec=ToolSpec(
        name="count_words",
        description="Count the words of a text (text).",
        risk=RiskClass.READ,
        privileged=True,
        side_effects=False,
    ),
    arguments=CountWordsArgs,
    provider="counter",
    would=lambda args: f"counted the words of {len(args.text)} characters",
)


class Counter:
    """The example tool's provider: one activity, named after the tool."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @activity.defn(name="count_words")
    async def count_words(self, invocation: ToolInvocation) -> ToolResult:
        args = CountWordsArgs.model_validate(invocation.call.arguments)
        self.seen.append(args.text)
        return ToolResult(tool="count_words", ok=True, output=str(len(args.text.split())))


@pytest.fixture
def counting() -> Iterator[None]:
    """The example tool in the catalogue for one test."""
    tools.register([COUNT_WORDS])
    try:
        yield
    finally:
        del tools.CATALOGUE[COUNT_WORDS.name]


def granted(config: StewardConfig, *names: str) -> StewardConfig:
    data = config.model_dump()
    data["agents"]["helpdesk"]["tools"] = list(names)
    return StewardConfig.model_validate(data)


@pytest.mark.usefixtures("counting")
async def test_a_tool_declared_in_one_place_runs_in_a_run(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = granted(config, "count_words")
    fake_model.queue(json.dumps({"action": "count_words", "arguments": {"text": "a b c"}}))
    fake_model.queue(json.dumps({"action": "answer", "answer": "3 words."}))
    counter = Counter()
    activities = activities_for_tests(config)
    activities.providers = {"counter": counter}
    async with running_workers(client, config, task_queue, activities):
        handle = await start_run(
            client, config, "helpdesk", "How many words?", "dana", task_queue=task_queue
        )
        result: RunResult = await handle.result()

    assert result.status == "completed"
    assert [(a.tool, a.outcome) for a in result.actions] == [("count_words", "done")]
    assert counter.seen == ["a b c"]
    assert "Result of count_words" in fake_model.calls[1].messages[-1]["content"]
    # offered to the model with its description, and run on the privileged queue
    assert "count_words: Count the words" in fake_model.calls[0].messages[0]["content"]
    history = await readable_history(handle)
    queues_used = {
        e.activity_task_scheduled_event_attributes.task_queue.name
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == "count_words"
    }
    assert queues_used == {queues.privileged(task_queue)}


@pytest.mark.usefixtures("counting")
async def test_the_eval_sandbox_records_a_new_tool_without_running_it() -> None:
    sandbox = SandboxTools()
    invocation = ToolInvocation(
        call=ToolCall(id="c1", tool="count_words", arguments={"text": "two words"}),
        idempotency_key="key-of-c1",
        agent="helpdesk",
        principal="dana",
        run_id="r",
    )
    result = await ActivityEnvironment().run(sandbox.activity_for(COUNT_WORDS), invocation)
    assert result.ok and "counted the words of 9 characters" in result.output
    assert sandbox.recorded == [invocation]


def test_a_config_granting_a_tool_no_worker_serves_stops_the_workers(
    client: Client, config: StewardConfig
) -> None:
    config = granted(config, "write_file", "publish_file")
    activities = activities_for_tests(config)
    activities.files = None
    with pytest.raises(ConfigError, match=r"agents\.helpdesk is granted 'write_file'"):
        build_workers(client, activities, role="default")
    with pytest.raises(ConfigError, match=r"agents\.helpdesk is granted 'publish_file'"):
        build_workers(client, activities, role="privileged")
    # a registered tool whose provider this worker lacks is refused the same way
    with pytest.raises(ConfigError, match="provider 'files'"):
        build_workers(client, activities, role="all")


@pytest.mark.usefixtures("counting")
def test_a_granted_tool_without_its_provider_stops_the_workers(
    client: Client, config: StewardConfig
) -> None:
    config = granted(config, "count_words")
    with pytest.raises(ConfigError, match=r"'count_words'.*provider 'counter'"):
        build_workers(client, default_activities(config, allow_paid=False), role="privileged")


def test_a_built_in_tool_cannot_be_replaced() -> None:
    with pytest.raises(ValueError, match="already in the catalogue"):
        tools.register([COUNT_WORDS, COUNT_WORDS])
    del tools.CATALOGUE[COUNT_WORDS.name]
    clash = Tool(
        spec=ToolSpec(name="send_email", description="x", risk=RiskClass.READ),
        arguments=CountWordsArgs,
        provider="counter",
        would=lambda args: "",
    )
    with pytest.raises(ValueError, match="'send_email' is already"):
        tools.register([clash])


def test_every_entry_names_its_activity_after_itself() -> None:
    """A workflow schedules a built-in tool's activity by the tool's name."""
    from activities.retrieval import RetrievalActivities
    from activities.tools.email import OutboxActivities
    from activities.tools.files import FileActivities
    from activities.tools.http_get import HttpActivities

    providers: dict[str, Any] = {
        "outbox": OutboxActivities,
        "files": FileActivities,
        "http": HttpActivities,
        "retrieval": RetrievalActivities,
    }
    for entry in tools.activity_tools():
        method = getattr(providers[entry.provider or ""], entry.name)
        assert activity._Definition.must_from_callable(method).name == entry.name
