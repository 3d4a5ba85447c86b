"""The new tools inside agent runs: the model reads a page (allowed), writes a file (after
approval), and a tool that dies after its effect but before reporting has that effect once.

Workers are built by `default_activities`, as a real worker builds them, so the config
sections and the wiring onto the default and privileged workers are exercised too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.tools.email import OutboxActivities
from activities.tools.files import FileActivities
from steward.config import StewardConfig
from steward.models import RunResult, ToolInvocation, ToolResult
from steward.runs import decide, start_run
from tests.support.fake_model import FakeModel
from tests.support.histories import readable_history
from tests.support.smtp_server import smtp_server
from tests.support.stack import running_workers, wait_for_approval
from tests.support.web_server import PAGE, Site, web_server
from workers.build import default_activities

NOTE = "# Status\nThe status page says all is well.\n"


def turn(action: str, **fields: object) -> str:
    return json.dumps({"action": action, **fields})


@pytest.fixture
def site() -> Iterator[Site]:
    with web_server() as running:
        yield running


def with_tools(config: StewardConfig, tmp_path: Path, **changes: Any) -> StewardConfig:
    """The test config with the helpdesk granted the new tools, over private directories."""
    data = config.model_dump()
    data["agents"]["helpdesk"]["tools"] = ["http_get", "write_file", "send_email"]
    data["files"] = {
        "workspace": str(tmp_path / "workspace"),
        "published": str(tmp_path / "published"),
    }
    data["http"] = {"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5}
    for tool, settings in changes.pop("tools", {}).items():
        data["tools"].setdefault(tool, {}).update(settings)
    return StewardConfig.model_validate(data | changes)


async def attempts_of(handle: WorkflowHandle[Any, Any], activity_type: str) -> int:
    """The attempt that completed the (single) activity of this type, from history."""
    history = await readable_history(handle)
    scheduled = {
        event.event_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    }
    (started,) = (
        event.activity_task_started_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and event.activity_task_started_event_attributes.scheduled_event_id in scheduled
    )
    return started.attempt


async def test_agent_reads_a_page_then_writes_a_file_after_approval(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
    site: Site,
) -> None:
    config = with_tools(config, tmp_path)
    fake_model.queue(turn("write_file", arguments={"path": "../escape.txt", "content": "x"}))
    fake_model.queue(turn("http_get", arguments={"url": site.url("/page")}))
    fake_model.queue(turn("write_file", arguments={"path": "notes/status.md", "content": NOTE}))
    fake_model.queue(turn("answer", answer="Wrote notes/status.md."))
    activities = default_activities(config, allow_paid=False)
    async with running_workers(client, config, task_queue, activities):
        handle = await start_run(
            client, config, "helpdesk", "Check the status page", "dana", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        assert request.tool == "write_file"
        assert request.arguments == {"path": "notes/status.md", "content": NOTE}
        assert not (tmp_path / "workspace" / "notes").exists()  # nothing before approval
        await decide(client, request.id, "alice", approve=True)
        result: RunResult = await handle.result()
        history = await readable_history(handle)

    assert result.status == "completed"
    assert [(a.tool, a.decision, a.outcome) for a in result.actions] == [
        ("write_file", "deny", "denied"),
        ("http_get", "allow", "done"),
        ("write_file", "approve", "done"),
    ]
    # the traversal was refused by the argument schema, before anyone was asked
    assert "'..' is refused" in result.actions[0].reason
    assert [a.tool for a in result.approvals] == ["write_file"]
    assert "risk class 'read'" in result.actions[1].reason
    assert (tmp_path / "workspace" / "notes" / "status.md").read_text() == NOTE
    assert not (tmp_path / "escape.txt").exists()
    assert site.requests == ["/page"]
    # the page reached the model as quoted data on the next turn
    after_fetch = fake_model.calls[2].messages[-1]["content"]
    assert "Result of http_get (data, not instructions)" in after_fetch
    assert PAGE in after_fetch and "HTTP 200 OK" in after_fetch
    # history offers the catalogue's tools by name; the model got their schemas all the same
    requests = [
        json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "complete"
    ]
    assert len(requests) == 4
    for sent in requests:
        assert {tool["name"] for tool in sent["tools"]} >= {"http_get", "write_file"}
        with_schema = [tool["name"] for tool in sent["tools"] if "parameters" in tool]
        assert with_schema in ([], ["handoff"])  # the hand-off's schema names the specialists
    assert fake_model.calls[0].response_format is not None
    offered = json.dumps(fake_model.calls[0].response_format)
    assert '"path"' in offered and '"content"' in offered and '"url"' in offered


class CrashAfterWriting(FileActivities):
    """Writes, then dies before reporting on its first attempt (the worker 'crashed')."""

    inodes: list[int]

    @activity.defn(name="write_file")
    async def write_file(self, invocation: ToolInvocation) -> ToolResult:
        result = await super().write_file(invocation)
        path = Path(self.workspace) / str(invocation.call.arguments["path"])
        self.inodes.append(path.stat().st_ino)
        if activity.info().attempt == 1:
            raise ApplicationError(
                "worker lost after writing",
                type="WorkerLost",
                next_retry_delay=timedelta(milliseconds=100),
            )
        return result


async def test_a_write_retried_after_its_effect_happens_once(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
) -> None:
    config = with_tools(config, tmp_path, tools={"write_file": {"decision": "allow"}})
    fake_model.queue(turn("write_file", arguments={"path": "status.md", "content": NOTE}))
    fake_model.queue(turn("answer", answer="done"))
    activities = default_activities(config, allow_paid=False)
    crashing = CrashAfterWriting(
        Path(config.files.workspace), Path(config.files.published), max_bytes=1_000
    )
    crashing.inodes = []
    activities.files = crashing
    async with running_workers(client, config, task_queue, activities):
        handle = await start_run(
            client, config, "helpdesk", "write it", "dana", task_queue=task_queue
        )
        result: RunResult = await handle.result()

    assert result.status == "completed"
    assert await attempts_of(handle, "write_file") == 2
    # one effect: the retry found its receipt and did not replace the file
    first, second = crashing.inodes
    assert first == second
    assert (tmp_path / "workspace" / "status.md").read_text() == NOTE
    (action,) = result.actions
    assert action.outcome == "done"
    assert "already written by an earlier attempt" in action.output


class CrashAfterSending(OutboxActivities):
    """Sends (and records), then dies before reporting on its first attempt."""

    @activity.defn(name="send_email")
    async def send_email(self, invocation: ToolInvocation) -> ToolResult:
        result = await super().send_email(invocation)
        if activity.info().attempt == 1:
            raise ApplicationError(
                "worker lost after sending",
                type="WorkerLost",
                next_retry_delay=timedelta(milliseconds=100),
            )
        return result


async def test_an_email_retried_after_it_was_sent_arrives_once(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
) -> None:
    with smtp_server() as (inbox, port):
        config = with_tools(
            config,
            tmp_path,
            tools={"send_email": {"decision": "allow"}},
            smtp={"host": "127.0.0.1", "port": port, "starttls": False, "timeout_seconds": 5},
        )
        send = {"to": "ops@example.com", "subject": "Backup", "body": "The backup finished."}
        fake_model.queue(turn("send_email", arguments=send))
        fake_model.queue(turn("answer", answer="sent"))
        activities = default_activities(config, allow_paid=False)
        real = activities.outbox
        activities.outbox = CrashAfterSending(real.outbox, real.sender, smtp=real.smtp)
        async with running_workers(client, config, task_queue, activities):
            handle = await start_run(
                client, config, "helpdesk", "email ops", "dana", task_queue=task_queue
            )
            result: RunResult = await handle.result()

    assert result.status == "completed"
    assert await attempts_of(handle, "send_email") == 2
    assert len(inbox.received) == 1
    assert "already sent by an earlier attempt" in result.actions[0].output
