"""Long agent runs: continue-as-new at turn boundaries, large text kept out of history.

The agent reads a 100 KB page every turn for 300 turns. Each page is stored once in the
blob store and travels as a reference, the window keeps what the model sees bounded, and
the run continues as new before its history nears Temporal's warning; every run of the
chain replays. An approval still waiting when the run continues as new stays approvable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.llm import LLMActivities
from activities.tools.http_get import HttpActivities
from steward.codec import codec_from_environment
from steward.config import StewardConfig
from steward.models import ApprovalRequest
from steward.plugin import StewardPlugin
from steward.runs import RunError, decide, pending, reply, start_run
from tests.support.fake_model import FakeModel
from tests.support.histories import history_id, record_history
from tests.support.stack import activities_for_tests, outbox_messages, running_workers
from tests.support.temporal_cli import temporal_cli
from tests.support.web_server import BIG_PAGE_BYTES, Site, big_page, web_server
from tests.workflows.test_questions import wait_for_question
from workers.build import WORKFLOWS
from workflows.agent import AgentWorkflow
from workflows.base import RunInput

HISTORY_WARNING_BYTES = 10 * 1024 * 1024
TURNS = 300


def turn(action: str, **fields: object) -> str:
    return json.dumps({"action": action, **fields})


@pytest.fixture
def site() -> Iterator[Site]:
    with web_server() as running:
        yield running


def long_config(config: StewardConfig, **agent: Any) -> StewardConfig:
    """The helpdesk reads pages from loopback; its runs may be long."""
    data = config.model_dump()
    data["agents"]["helpdesk"] |= {"tools": ["http_get", "send_email"], **agent}
    data["http"] = {"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5, "max_bytes": 1_000_000}
    return StewardConfig.model_validate(data)


def with_http(config: StewardConfig, *, blobs: bool = True) -> Any:
    activities = activities_for_tests(config)
    http = HttpActivities(
        config.http.allow_hosts, max_bytes=config.http.max_bytes, timeout_seconds=5
    )
    if blobs:
        return dataclasses.replace(activities, http=http)
    return dataclasses.replace(
        activities,
        http=http,
        blobs=None,
        llm=LLMActivities(config.tiers, allow_paid=False),
    )


async def chain(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow id, oldest first, as histories."""
    runs = [execution async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    runs.sort(key=lambda execution: execution.start_time)
    return [
        await client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history()
        for run in runs
    ]


async def test_300_turns_of_100kb_pages_stay_small_in_every_run_and_replay(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    site: Site,
) -> None:
    config = long_config(config, max_turns=TURNS + 5, continue_after={"events": 1_000})
    for page in range(TURNS):
        fake_model.queue(turn("http_get", arguments={"url": site.url(f"/big/{page}")}))
    fake_model.queue(turn("answer", answer="read them all"))
    async with running_workers(client, config, task_queue, with_http(config)):
        handle = await start_run(
            client, config, "helpdesk", "Read every page", "dana", task_queue=task_queue
        )
        result = await handle.result()

    assert result.status == "completed", result.answer
    assert result.answer == "read them all"
    assert len(result.actions) == TURNS
    assert all(action.outcome == "done" for action in result.actions)
    assert result.ledger.model_calls == TURNS + 1
    assert len(result.ledger.context_tokens) <= TURNS + 1  # carried bounded, never duplicated
    # Each page is one blob, named by its content; the model got its full text back.
    last = result.actions[-1]
    assert last.output_blob is not None and last.output_blob.size > BIG_PAGE_BYTES
    seen = "".join(message["content"] for message in fake_model.calls[-1].messages)
    assert big_page(str(TURNS - 1)).decode() in seen
    blobs = [path for path in Path(config.blobs.path).rglob("*") if path.is_file()]
    assert TURNS <= len(blobs) <= TURNS + 10
    # The model's window stayed bounded, not the whole conversation.
    sent = max(sum(len(m["content"]) for m in call.messages) for call in fake_model.calls)
    assert sent <= config.agents["helpdesk"].context_chars + 2 * BIG_PAGE_BYTES

    histories = await chain(client, handle.id)
    assert len(histories) >= 3, "the run should have continued as new"
    for history in histories:
        size = sum(event.ByteSize() for event in history.events)
        assert size < HISTORY_WARNING_BYTES / 4, f"a run's history grew to {size:,} bytes"
        assert len(history.events) < 1_200
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        plugins=[StewardPlugin(codec_from_environment(), strict_sandbox=True)],
    )
    for history in histories:
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, replayed.replay_failure


def sending(config: StewardConfig, fake_model: FakeModel) -> StewardConfig:
    """The helpdesk continuing at 50 events; its model sends one email (approval needed)."""
    send = {"to": "ops@example.com", "subject": "Backup", "body": "The backup finished."}
    fake_model.queue(turn("send_email", arguments=send))
    fake_model.queue(turn("answer", answer="sent"))
    return long_config(config, continue_after={"events": 50})


async def test_a_pending_approval_crosses_continue_as_new_and_is_still_approvable(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = sending(config, fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "helpdesk",
            "Tell ops",
            "dana",
            task_queue=task_queue,
            workflow_id=history_id("agent-continued"),
        )
        first = await wait_for_pending(client, handle.id)
        first_run = (await handle.describe()).run_id
        # Refused decisions grow the waiting run's history past its limit.
        for n in range(40):
            await handle.signal("decide", {"request_id": first.id, "junk": n})
            if (await handle.describe()).run_id != first_run:
                break
        waiting = await wait_for_pending(client, handle.id)
        assert (await handle.describe()).run_id != first_run, "expected a new run of the chain"
        assert waiting.id == first.id
        assert waiting.deadline == first.deadline
        assert waiting.args_digest == first.args_digest
        await decide(client, waiting.id, "alice", approve=True)
        result = await handle.result()
        # The first run of the chain, which ended by continuing as new, replays in tests.
        await record_history(client.get_workflow_handle(handle.id, run_id=first_run))
        # Decided once, in the second run: the same decision again is refused.
        with pytest.raises(RunError, match="no pending approval"):
            await decide(client, waiting.id, "alice", approve=True)

    assert result.status == "completed"
    assert [(a.tool, a.outcome) for a in result.actions] == [("send_email", "done")]
    assert [a.status for a in result.approvals] == ["approved"]
    assert len(outbox_messages(config)) == 1
    histories = await chain(client, handle.id)
    # At 50 events a run, the chain may continue again after the send: at least twice.
    assert len(histories) >= 2
    for earlier in histories[:-1]:
        assert earlier.events[-1].event_type == (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        )


@workflow.defn(name="AgentWorkflow", sandboxed=False)
class StallsWhenContinued(AgentWorkflow):
    """The agent, on a worker that fails the first task of every continued run: the next
    worker gets that task with whatever reached the run meanwhile, in one activation.
    """

    @workflow.run
    async def run(self, sent: RunInput) -> Any:
        if workflow.info().continued_run_id is not None:
            raise RuntimeError("this worker never runs a continued run's first task")
        return await super().run(sent)


async def continue_unstarted(
    client: Client,
    config: StewardConfig,
    task_queue: str,
    handle: WorkflowHandle[Any, Any],
    junk: tuple[str, dict[str, Any]],
) -> None:
    """Grow the waiting run (no worker running) past its limit with refused `junk`, let it
    continue as new, and leave the new run's first task failed: what is sent next reaches
    the new run's handlers in the same activation as its start.
    """
    first_run = (await handle.describe()).run_id
    name, message = junk
    for n in range(40):  # refused when they run: they grow the run past its limit
        await handle.signal(name, message | {"junk": n})
    async with running_workers(client, config, task_queue, workflows=[StallsWhenContinued]):
        async with asyncio.timeout(20):
            while (await handle.describe()).run_id == first_run:
                await asyncio.sleep(0.05)
            continued = client.get_workflow_handle(handle.id)
            failed = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            while not any(e.event_type == failed for e in (await continued.fetch_history()).events):
                await asyncio.sleep(0.05)


async def signal_by_cli(env: WorkflowEnvironment, workflow_id: str, name: str, sent: Any) -> None:
    """Send `sent` as hand-written JSON with the plain `temporal` CLI, as a script would:
    no Steward client, no codec, no worker asked first.
    """
    code, out = await temporal_cli(
        env,
        "workflow",
        "signal",
        "--workflow-id",
        workflow_id,
        "--name",
        name,
        "--input",
        json.dumps(sent),
    )
    assert code == 0, out


async def test_a_decision_reaching_a_continued_run_before_it_began_is_honoured(
    env: WorkflowEnvironment,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    config = sending(config, fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Tell ops", "dana", task_queue=task_queue
        )
        first = await wait_for_pending(client, handle.id)
    await continue_unstarted(
        client, config, task_queue, handle, ("decide", {"request_id": first.id})
    )
    decision = {
        "request_id": first.id,
        "args_digest": first.args_digest,
        "approver": "alice",
        "approve": True,
    }
    await signal_by_cli(env, handle.id, "decide", decision)
    async with running_workers(client, config, task_queue):
        result = await asyncio.wait_for(handle.result(), timeout=30)

    assert result.status == "completed"
    assert [(a.tool, a.outcome) for a in result.actions] == [("send_email", "done")]
    assert [(a.status, a.approver) for a in result.approvals] == [("approved", "alice")]
    assert len(outbox_messages(config)) == 1


def asking(config: StewardConfig, fake_model: FakeModel) -> StewardConfig:
    """The helpdesk with ask_human only, continuing at 50 events; its model asks once."""
    data = long_config(config, continue_after={"events": 50}).model_dump()
    data["agents"]["helpdesk"]["tools"] = ["ask_human"]
    fake_model.queue(turn("ask_human", arguments={"question": "Which backup?"}))
    fake_model.queue(turn("answer", answer="noted"))
    return StewardConfig.model_validate(data)


async def test_a_reply_reaching_a_continued_run_before_it_began_is_honoured(
    env: WorkflowEnvironment,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    config = asking(config, fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(client, config, "helpdesk", "Check", "dana", task_queue=task_queue)
        first = await wait_for_question(handle)
    await continue_unstarted(
        client, config, task_queue, handle, ("reply", {"question_id": first.id})
    )
    reply = {"question_id": first.id, "text": "the nightly one", "sender": "dana"}
    await signal_by_cli(env, handle.id, "reply", reply)
    async with running_workers(client, config, task_queue):
        result = await asyncio.wait_for(handle.result(), timeout=30)

    assert result.status == "completed"
    assert [(a.tool, a.outcome, a.output) for a in result.actions] == [
        ("ask_human", "done", "the nightly one")
    ]


async def test_a_request_too_large_for_a_payload_fails_the_run_naming_the_step(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    site: Site,
) -> None:
    # Blobs off and a window wider than a payload: the third turn cannot be sent.
    config = long_config(config, context_chars=5_000_000)
    for page in range(2):
        fake_model.queue(turn("http_get", arguments={"url": site.url(f"/big/{page}/1000000")}))
    async with running_workers(client, config, task_queue, with_http(config, blobs=False)):
        handle = await start_run(
            client, config, "helpdesk", "Read two huge pages", "dana", task_queue=task_queue
        )
        # 1 MB pages: two of them make a request over the payload limit.
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PayloadTooLarge"
    assert "step turn-3" in cause.message
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.FAILED
    assert len(fake_model.calls) == 2


async def wait_for_pending(client: Client, workflow_id: str) -> ApprovalRequest:
    for _ in range(200):
        waiting = [r for r in await pending(client) if r.workflow_id == workflow_id]
        if waiting:
            return waiting[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no approval pending in {workflow_id}")


async def test_an_open_question_crosses_continue_as_new_and_is_still_answerable(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = asking(config, fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(client, config, "helpdesk", "Check", "dana", task_queue=task_queue)
        first = await wait_for_question(handle)
        first_run = (await handle.describe()).run_id
        for n in range(40):
            await handle.signal("reply", {"question_id": first.id, "junk": n})
            if (await handle.describe()).run_id != first_run:
                break
        assert (await handle.describe()).run_id != first_run, "expected a new run of the chain"
        carried = await wait_for_question(handle)
        assert (carried.id, carried.deadline) == (first.id, first.deadline)
        await reply(client, handle.id, "the nightly one", "dana")
        result = await handle.result()

    assert result.status == "completed"
    assert [(a.tool, a.outcome, a.output) for a in result.actions] == [
        ("ask_human", "done", "the nightly one")
    ]
    assert "the nightly one" in fake_model.calls[-1].messages[-1]["content"]
