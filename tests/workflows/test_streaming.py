"""Streaming a run live: deltas as they come, retries that never show text twice, small history.

The fake model streams a word at a time. A watcher follows the run's event stream by query
from the moment it starts, exactly as `steward watch` does, and a `Transcript` turns what
it reads into what a terminal shows.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from steward.cli.watch import ERASE_BELOW, Screen, print_events
from steward.config import StewardConfig
from steward.events import (
    ApprovalDecided,
    ApprovalRequested,
    ModelAnswered,
    RunEvent,
    RunFinished,
    Shown,
    TextDelta,
    Transcript,
)
from steward.runs import decide, start_run
from steward.watch import follow
from tests.conftest import REPO
from tests.support.fake_model import FakeModel, install_fake_model, provider_error
from tests.support.stack import running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

FIRST = "Dear Dana, the first attempt starts well and then the connection drops right here"
FINAL = (
    "Dear Dana, thank you for writing. Your parcel left our warehouse this morning and "
    "should reach you within two days. Best regards, The Support Team"
)


def native(config: StewardConfig) -> StewardConfig:
    data = config.model_dump()
    data["tiers"] = {
        name: [{"model": "fake/queued", "tool_calling": "native"}] for name in data["tiers"]
    }
    return StewardConfig.model_validate(data)


async def watched(client: Client, workflow_id: str) -> list[RunEvent]:
    return [event async for event in follow(client, workflow_id)]


def stream_signals(history: Any) -> list[Any]:
    """The signals that brought streamed text to the run."""
    return [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name
        == "__temporal_workflow_stream_publish"
    ]


async def settled_length(handle: Any, timeout: float = 15) -> int:
    """The run's history length once it stops growing (the approvers' notice, which runs
    after the request is pending, lands late on a loaded machine)."""
    async with asyncio.timeout(timeout):
        length = len((await handle.fetch_history()).events)
        while True:
            await asyncio.sleep(0.3)
            now = len((await handle.fetch_history()).events)
            if now == length:
                return now
            length = now


async def test_a_retried_answer_replaces_the_partial_one_and_shows_once(
    client: Client, config: StewardConfig, task_queue: str
) -> None:
    fake = install_fake_model(FakeModel(chunk_delay=0.04))
    fake.queue(
        FIRST,
        fail_after=len("Dear Dana, the first attempt starts well and"),
        error=provider_error("APIConnectionError", "connection reset mid-answer"),
    )
    fake.queue(FINAL)
    config = native(config)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Answer Dana", "dana", task_queue=task_queue
        )
        events = await asyncio.wait_for(watched(client, handle.id), timeout=60)
        result = await handle.result()
        history = await handle.fetch_history()

    assert result.status == "completed" and result.answer == FINAL
    deltas = [e for e in events if isinstance(e, TextDelta)]
    first = "".join(d.text for d in deltas if d.attempt == 1)
    second = "".join(d.text for d in deltas if d.attempt == 2)
    # The watcher saw the failed attempt's partial text, then the retry's whole answer.
    assert first and FIRST.startswith(first) and first != FIRST
    assert second == FINAL
    (answered,) = [e for e in events if isinstance(e, ModelAnswered)]
    assert (answered.attempt, answered.text) == (2, FINAL)
    assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"

    transcript = Transcript()
    shown: list[Shown] = [item for event in events for item in transcript.apply(event)]
    retracted = [item for item in shown if item.kind == "retract"]
    assert [item.text for item in retracted] == [first]
    after = shown[shown.index(retracted[0]) :]
    assert "".join(item.text for item in after if item.kind == "text") == FINAL
    assert transcript.text("turn-1") == FINAL
    # On a terminal the partial text is erased; in a log it is marked, never repeated.
    for tty in (True, False):
        out = io.StringIO()
        screen = Screen(out, tty=tty, width=60)
        for item in shown:
            screen.show(item)
        text = out.getvalue()
        assert text.count(FINAL) == 1
        if tty:
            assert ERASE_BELOW in text and text.index(first) < text.index(ERASE_BELOW)
        else:
            assert "the partial answer above was discarded" in text
    # Text travels in a few batches, each one delta: far fewer signals than words, and
    # little more in history than the text itself.
    words = len(first.split()) + len(FINAL.split())
    batches = stream_signals(history)
    assert 2 <= len(batches) == len(deltas) <= words // 3
    assert sum(event.ByteSize() for event in batches) < len(first + FINAL) + 600 * len(batches)


async def test_a_watcher_sees_the_whole_run_and_writes_nothing_to_its_history(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    fake_model.chunk_delay = 0.03  # calls long enough to stream (see the next test)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        watching = asyncio.create_task(watched(client, handle.id))
        out = io.StringIO()
        printing = asyncio.create_task(print_events(client, handle.id, out))
        request = await wait_for_approval(handle)
        before = await settled_length(handle)  # approvers notified, the run waiting
        await asyncio.sleep(1)  # about ten polls by each watcher, while the run waits
        assert len((await handle.fetch_history()).events) == before
        await decide(client, request.id, "demo-approver", approve=True)
        events = await asyncio.wait_for(watching, timeout=30)
        status = await asyncio.wait_for(printing, timeout=30)
        await handle.result()

    steps = [
        (type(e).__name__, getattr(e, "step", "") or getattr(e, "tool", ""))
        for e in events
        if not isinstance(e, TextDelta)
    ]
    assert steps == [
        ("TurnStarted", "classify"),
        ("ModelAnswered", "classify"),
        ("CostSoFar", ""),
        ("TurnStarted", "draft"),
        ("ModelAnswered", "draft"),
        ("CostSoFar", ""),
        ("ToolStarted", "send_email"),
        ("ApprovalRequested", "send_email"),
        ("ApprovalDecided", "send_email"),
        ("ToolFinished", "send_email"),
        ("RunFinished", ""),
    ]
    requested = next(e for e in events if isinstance(e, ApprovalRequested))
    assert requested.command == f"steward approve {request.id} --as NAME"
    decided = next(e for e in events if isinstance(e, ApprovalDecided))
    assert (decided.status, decided.approver) == ("approved", "demo-approver")
    drafted = "".join(e.text for e in events if isinstance(e, TextDelta) and e.step == "draft")
    assert drafted and drafted == next(
        e.text for e in events if isinstance(e, ModelAnswered) and e.step == "draft"
    )
    assert status == "completed"
    printed = out.getvalue()
    assert f"steward approve {request.id} --as NAME" in printed
    assert "send_email approve -> done" in printed and "■ completed" in printed
    assert printed.count(drafted) == 1


async def test_steward_watch_prints_a_finished_run(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(json.dumps({"action": "answer", "answer": "All quiet."}))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Anything new?", "dana", task_queue=task_queue
        )
        await handle.result()
        # A call shorter than the hold streams nothing: its answer came with its result.
        assert not stream_signals(await handle.fetch_history())
        # A real `steward` process, as a user runs it, after the run ended.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "steward.cli",
            "watch",
            handle.id,
            env=os.environ | {"TEMPORAL_ADDRESS": client.service_client.config.target_host},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=REPO,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)

    printed = out.decode()
    assert process.returncode == 0, printed
    assert "▸ turn-1 on " in printed and "■ completed: All quiet." in printed
