"""Schedules: a scheduled run is the same run `steward run` starts, on a timetable; overlap
and pause round-trip; bad input is refused before anything is created.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.converter import decode_typed_search_attributes
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from steward import search_attributes as sa
from steward.cli import app
from steward.config import StewardConfig
from steward.models import RunRequest, RunResult
from steward.runs import build_request
from steward.schedules import (
    ScheduleError,
    ScheduleInfo,
    build_schedule,
    create_schedule,
    delete_schedule,
    describe_schedule,
    list_schedules,
    parse_interval,
    pause_schedule,
    unpause_schedule,
)
from tests.support.fake_model import FakeModel
from tests.support.stack import running_workers
from tests.workflows.test_support import TICKET

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = str(REPO / "examples" / "steward.yaml")


@pytest.fixture
async def schedule_id(client: Client) -> AsyncIterator[str]:
    """A fresh schedule id, deleted after the test if the test left it behind."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        await delete_schedule(client, name)
    except ScheduleError:
        pass


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    """Poll until `check` holds: schedule listing is eventually consistent."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


async def listed(client: Client, schedule_id: str) -> ScheduleInfo | None:
    return next((s for s in await list_schedules(client) if s.id == schedule_id), None)


async def test_a_triggered_schedule_starts_the_same_run_as_steward_run(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    schedule_id: str,
) -> None:
    fake_model.queue(json.dumps({"action": "answer", "answer": "digest"}))
    handle = await create_schedule(
        client,
        schedule_id,
        build_schedule(
            config,
            schedule_id,
            "helpdesk",
            "summarise yesterday's tickets",
            "dana",
            every="1h",
            task_queue=task_queue,
        ),
    )
    async with running_workers(client, config, task_queue):
        await handle.trigger()

        async def started() -> bool:
            return bool((await describe_schedule(client, schedule_id)).recent_runs)

        await eventually(started)
        info = await describe_schedule(client, schedule_id)
        (run,) = info.recent_runs
        assert run.workflow_id.startswith(f"helpdesk-scheduled-{schedule_id}-")
        workflow = client.get_workflow_handle(run.workflow_id, result_type=RunResult)
        result = await workflow.result()

    assert result.status == "completed" and result.answer == "digest"
    described = await workflow.describe()
    assert described.workflow_type == "AgentWorkflow"
    assert described.task_queue == task_queue
    history = await workflow.fetch_history()
    started_event = history.events[0].workflow_execution_started_event_attributes
    (request,) = await client.data_converter.decode(started_event.input.payloads, [RunRequest])
    assert isinstance(request, RunRequest)
    assert request.input == "summarise yesterday's tickets" and request.principal == "dana"
    assert request == build_request(config, "helpdesk", "summarise yesterday's tickets", "dana")
    at_start = decode_typed_search_attributes(started_event.search_attributes)
    assert at_start.get(sa.TARGET) == "helpdesk"
    assert at_start.get(sa.PRINCIPAL) == "dana"
    assert at_start.get(sa.STATUS) == "running"
    assert info.spec == ["every 1h"] and info.overlap == "skip" and not info.paused
    assert info.note == "helpdesk as dana"
    assert info.next_run is not None
    assert datetime.now(UTC) < info.next_run <= datetime.now(UTC) + timedelta(hours=1)


async def test_overlap_and_pause_round_trip_and_delete_removes_it(
    client: Client, config: StewardConfig, schedule_id: str
) -> None:
    await create_schedule(
        client,
        schedule_id,
        build_schedule(
            config,
            schedule_id,
            "support-reply",
            TICKET,
            "dana",
            cron=("0 9 * * *", "30 17 * * 1-5"),
            overlap="buffer-all",
            paused=True,
            note="until the holidays end",
        ),
    )

    async def shown() -> bool:
        return await listed(client, schedule_id) is not None

    await eventually(shown)
    info = await listed(client, schedule_id)
    assert info is not None
    assert (info.target, info.principal, info.workflow) == (
        "support-reply",
        "dana",
        "SupportReplyWorkflow",
    )
    assert info.spec == ["cron 0 9 * * *", "cron 30 17 * * 1-5"]
    assert info.overlap == "buffer-all"
    assert info.paused and info.note == "until the holidays end"
    assert info.recent_runs == []

    await unpause_schedule(client, schedule_id, "back")
    info = await describe_schedule(client, schedule_id)
    assert not info.paused and info.note == "back"
    assert info.next_run is not None and info.next_run.minute in (0, 30)
    await pause_schedule(client, schedule_id, "incident 42")
    info = await describe_schedule(client, schedule_id)
    assert info.paused and info.note == "incident 42"

    await delete_schedule(client, schedule_id)
    assert await listed(client, schedule_id) is None
    with pytest.raises(ScheduleError, match=f"no schedule '{schedule_id}'"):
        await describe_schedule(client, schedule_id)


@pytest.mark.parametrize(
    ("target", "text", "when", "message"),
    [
        ("nope", "hello", {"every": "1h"}, "unknown playbook or agent 'nope'"),
        ("helpdesk", "   ", {"every": "1h"}, "input is empty"),
        ("support-reply", "no headers here", {"every": "1h"}, "bad ticket"),
        ("helpdesk", "hello", {"every": "soon"}, "'soon' is not an interval"),
        ("helpdesk", "hello", {"every": "0m"}, "is zero"),
        ("helpdesk", "hello", {}, "either --cron or --every"),
        ("helpdesk", "hello", {"every": "1h", "cron": ("0 9 * * *",)}, "either --cron or --every"),
        ("helpdesk", "hello", {"every": "1h", "overlap": "maybe"}, "--overlap 'maybe' is not"),
        ("helpdesk", "hello", {"cron": ("not a cron",)}, "refused"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_created(
    client: Client,
    config: StewardConfig,
    schedule_id: str,
    target: str,
    text: str,
    when: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ScheduleError, match=message):
        schedule = build_schedule(config, schedule_id, target, text, "dana", **when)
        await create_schedule(client, schedule_id, schedule)
    with pytest.raises(ScheduleError, match="no schedule"):
        await describe_schedule(client, schedule_id)


async def test_an_existing_id_is_refused_and_left_as_it_was(
    client: Client, config: StewardConfig, schedule_id: str
) -> None:
    first = build_schedule(config, schedule_id, "helpdesk", "a", "dana", every="1d")
    await create_schedule(client, schedule_id, first)
    second = build_schedule(config, schedule_id, "helpdesk", "b", "erin", every="1h", note="second")
    with pytest.raises(ScheduleError, match="already exists; delete it first"):
        await create_schedule(client, schedule_id, second)
    info = await describe_schedule(client, schedule_id)
    assert (info.principal, info.spec, info.note) == ("dana", ["every 1d"], "helpdesk as dana")


@pytest.mark.parametrize("operation", [delete_schedule, pause_schedule, unpause_schedule])
async def test_an_unknown_id_is_named_in_the_error(
    client: Client, operation: Callable[[Client, str], Awaitable[None]]
) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ScheduleError, match=f"no schedule '{name}'"):
        await operation(client, name)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h", 3600), ("1d", 86400), ("1h30m", 5400)]
)
def test_intervals_parse(text: str, seconds: int) -> None:
    assert parse_interval(text) == timedelta(seconds=seconds)


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "hello", "--every", "1h"], "unknown playbook or agent 'nope'"),
        (["helpdesk", "hello", "--every", "1 hour"], "is not an interval"),
        (["helpdesk", "hello"], "either --cron or --every"),
    ],
)
def test_cli_refuses_bad_input_before_connecting(args: list[str], message: str) -> None:
    # TEMPORAL_ADDRESS points nowhere: a refusal must come before any connection
    result = runner.invoke(
        app,
        ["schedule", "create", "some-id", *args, "--as", "dana", "--config", EXAMPLE],
        env={"TEMPORAL_ADDRESS": "127.0.0.1:9"},
    )
    assert result.exit_code == 2
    assert message in result.output


async def steward(env: WorkflowEnvironment, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "steward.cli",
        *args,
        env=os.environ | {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_create_list_pause_and_delete_from_the_cli(
    env: WorkflowEnvironment, client: Client, schedule_id: str
) -> None:
    create = ["schedule", "create", schedule_id, "helpdesk", "daily digest", "--as", "dana"]
    code, out = await steward(
        env, *create, "--cron", "0 9 * * *", "--overlap", "allow-all", "--config", EXAMPLE
    )
    assert code == 0 and f"created schedule {schedule_id} (active)" in out, out
    code, out = await steward(env, *create, "--every", "1h", "--config", EXAMPLE)
    assert code == 2 and "already exists; delete it first" in out, out

    async def shown() -> bool:
        return await listed(client, schedule_id) is not None

    await eventually(shown)
    code, out = await steward(env, "schedule", "list")
    assert code == 0, out
    lines = out[out.index(f"{schedule_id}  (") :].splitlines()
    block = "\n".join(
        [lines[0], *itertools.takewhile(lambda line: line.startswith(" "), lines[1:])]
    )
    assert f"{schedule_id}  (active: helpdesk as dana)" in block
    assert "helpdesk as dana (AgentWorkflow)" in block
    assert "cron 0 9 * * *  overlap allow-all" in block
    assert "next:" in block and "09:00:00Z" in block

    code, out = await steward(env, "schedule", "pause", schedule_id, "--note", "on leave")
    assert code == 0 and f"paused schedule {schedule_id}" in out, out
    code, out = await steward(env, "schedule", "list", "--json")
    assert code == 0, out
    (mine,) = [s for s in json.loads(out) if s["id"] == schedule_id]
    assert mine["paused"] is True and mine["note"] == "on leave"
    assert mine["overlap"] == "allow-all" and mine["principal"] == "dana"

    code, out = await steward(env, "schedule", "delete", schedule_id)
    assert code == 0 and f"deleted schedule {schedule_id}" in out, out
    code, out = await steward(env, "schedule", "unpause", schedule_id)
    assert code == 2 and f"no schedule '{schedule_id}'" in out, out
