"""`make bench`, replay: events per second replaying the committed histories, and the floor.

`steward replay` exists to be run over many histories before every deploy, so its rate
matters. Measured in one process, interleaved, the median of BENCH_REPLAY_REPEATS:

- `steward.replay.replay` over every history in `tests/histories` BENCH_REPLAY_ROUNDS times
  in one call, as committed (plaintext payloads);
- the same histories encrypted as a server with the codec on stores them (the bench's
  key ring), which is what `steward replay` meets in production;
- one `replay` call per history, as a person replaying one run pays it;
- the floor: a bare `temporalio.worker.Replayer` (no plugin, no sandbox, no codec, the
  default converter) replaying a trivial workflow's histories in one call: one that
  returns at once (the SDK's fixed cost per history) and one that runs activities in a
  row, as many events as the committed histories hold on average.

Wall time is what a person waits; CPU time (every thread of the process, core's included)
is what the work costs, and moves less when other work shares the machine. No server:
the Replayer needs none. `python -m bench.replay` runs this section alone.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from google.protobuf.message import Message
from temporalio import activity, workflow
from temporalio.api.common.v1 import Header, Payload, SearchAttributes
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from bench import share_key_ring

HISTORIES = Path(__file__).resolve().parent.parent / "tests" / "histories"
ROUNDS = int(os.environ.get("BENCH_REPLAY_ROUNDS", "10"))
REPEATS = int(os.environ.get("BENCH_REPLAY_REPEATS", "3"))
TARGET = 20_000
"""Issue 18's target, in events replayed per second."""


@activity.defn(name="bench_step")
async def step(value: int) -> int:
    """Never run: the floor's workflow schedules it and replay reads its result."""
    return value


@workflow.defn(name="BenchSteps", sandboxed=False)
class Steps:
    """The floor's workflow: `steps` activities in a row, then their sum."""

    @workflow.run
    async def run(self, steps: int) -> int:
        """See class."""
        total = 0
        for value in range(steps):
            total += await workflow.execute_activity(
                step, value, start_to_close_timeout=timedelta(seconds=5)
            )
        return total


def steps_history(workflow_id: str, steps: int) -> WorkflowHistory:
    """The history a worker would record running `Steps` with `steps`: 5 + 6 * steps events."""
    events: list[HistoryEvent] = []

    def add(kind: EventType.ValueType) -> HistoryEvent:
        event = HistoryEvent(event_id=len(events) + 1, event_type=kind)
        event.event_time.FromSeconds(1_700_000_000 + len(events))
        events.append(event)
        return event

    def number(value: int) -> Payload:
        return Payload(metadata={"encoding": b"json/plain"}, data=str(value).encode())

    def workflow_task() -> int:
        scheduled = add(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
        scheduled.workflow_task_scheduled_event_attributes.task_queue.name = "bench"
        started = add(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
        started.workflow_task_started_event_attributes.scheduled_event_id = scheduled.event_id
        completed = add(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        done = completed.workflow_task_completed_event_attributes
        done.scheduled_event_id, done.started_event_id = scheduled.event_id, started.event_id
        return completed.event_id

    start = add(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    begun = start.workflow_execution_started_event_attributes
    begun.workflow_type.name = "BenchSteps"
    begun.task_queue.name = "bench"
    begun.original_execution_run_id = begun.first_execution_run_id = f"run-{workflow_id}"
    begun.workflow_task_timeout.FromSeconds(10)
    begun.input.payloads.append(number(steps))
    task = workflow_task()
    for value in range(steps):
        scheduled = add(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        attrs = scheduled.activity_task_scheduled_event_attributes
        attrs.activity_id, attrs.activity_type.name = str(value + 1), "bench_step"
        attrs.task_queue.name, attrs.workflow_task_completed_event_id = "bench", task
        attrs.start_to_close_timeout.FromSeconds(5)
        attrs.input.payloads.append(number(value))
        started = add(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
        started.activity_task_started_event_attributes.scheduled_event_id = scheduled.event_id
        completed = add(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        result = completed.activity_task_completed_event_attributes
        result.scheduled_event_id, result.started_event_id = scheduled.event_id, started.event_id
        result.result.payloads.append(number(value))
        task = workflow_task()
    end = add(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
    end.workflow_execution_completed_event_attributes.workflow_task_completed_event_id = task
    end.workflow_execution_completed_event_attributes.result.payloads.append(
        number(sum(range(steps)))
    )
    return WorkflowHistory(workflow_id, events)


def committed() -> list[WorkflowHistory]:
    """The committed histories, as `steward replay tests/histories` reads them."""
    from steward.replay import load_history

    return [load_history(path) for path in sorted(HISTORIES.glob("*.json"))]


def encrypted(history: WorkflowHistory) -> WorkflowHistory:
    """`history` as a server stores it with the codec on: each payload the codec encodes
    encrypted with the environment's ring (not search attributes or headers, nor the
    markers core writes itself, such as `workflow.patched`'s).
    """
    from steward.codec import codec_from_environment

    codec = codec_from_environment()
    assert codec is not None, "the bench measures the codec: it cannot be off"
    copy = WorkflowHistory(history.workflow_id, [HistoryEvent() for _ in history.events])
    for mine, theirs in zip(copy.events, history.events, strict=True):
        mine.CopyFrom(theirs)
        if mine.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        for payload in _encoded_payloads(mine):
            payload.CopyFrom(codec.encrypt(payload))
    return copy


_PLAIN = {SearchAttributes.DESCRIPTOR.full_name, Header.DESCRIPTOR.full_name}


def _encoded_payloads(message: Message) -> list[Payload]:
    found: list[Payload] = []
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None or kind.full_name in _PLAIN:
            continue
        if kind.GetOptions().map_entry:
            if kind.fields_by_name["value"].message_type is None:
                continue
            items = list(value.values())
        else:
            items = list(value) if field.is_repeated else [value]
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            else:
                found.extend(_encoded_payloads(item))
    return found


async def steward_replay(histories: list[WorkflowHistory]) -> None:
    """`steward replay` over `histories` in one call; every one must replay."""
    from steward.replay import replay

    reports = await replay(histories)
    broken = [line for report in reports if not report.ok for line in report.lines()]
    assert not broken, "\n".join(broken)


async def one_call_each(histories: list[WorkflowHistory]) -> None:
    """`steward replay` once per history."""
    for history in histories:
        await steward_replay([history])


async def bare(histories: list[WorkflowHistory]) -> None:
    """A bare Replayer (no plugin, no sandbox, no codec) over `histories` in one call."""
    from steward.replay import _quiet_runtime

    replayer = Replayer(
        workflows=[Steps], workflow_runner=UnsandboxedWorkflowRunner(), runtime=_quiet_runtime()
    )

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    assert not results.replay_failures, results.replay_failures


async def seconds(action: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Wall and CPU seconds `action` took (CPU: every thread of this process, core's too)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await action()
    return time.perf_counter() - wall, time.process_time() - cpu


async def measure() -> list[str]:
    """Each row's events per second, as printable lines."""
    share_key_ring()
    plain = committed()
    stored = [encrypted(history) for history in plain]
    events = sum(len(history.events) for history in plain)
    shape = max(0, round((events / len(plain) - 5) / 6))
    trivial = [steps_history(f"floor-trivial-{n}", 0) for n in range(len(plain) * ROUNDS)]
    shaped = [steps_history(f"floor-steps-{n}", shape) for n in range(len(plain) * ROUNDS)]
    rows: list[tuple[str, list[WorkflowHistory], Callable[[], Awaitable[None]]]] = [
        ("steward replay, committed", plain * ROUNDS, lambda: steward_replay(plain * ROUNDS)),
        ("steward replay, encrypted", stored * ROUNDS, lambda: steward_replay(stored * ROUNDS)),
        ("one call per history", plain, lambda: one_call_each(plain)),
        ("floor: bare, 1 task", trivial, lambda: bare(trivial)),
        (f"floor: bare, {shape} activities", shaped, lambda: bare(shaped)),
    ]
    for _, _, action in rows:  # warm up: imports, the runtime, pydantic's caches
        await action()
    timings: list[list[tuple[float, float]]] = [[] for _ in rows]
    for _ in range(REPEATS):  # interleaved, so drift in the machine hits every row alike
        for timing, (_, _, action) in zip(timings, rows, strict=True):
            timing.append(await seconds(action))
    lines = [
        f"\nreplay: {len(plain)} committed histories, {events} events "
        f"({events / len(plain):.1f} per history), x{ROUNDS} in one call; median of "
        f"{REPEATS}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        f"{'':<30} {'events/s':>10} {'ms/history':>11} {'events/CPU s':>13} {'CPU ms/hist':>12}",
    ]
    rates: dict[str, float] = {}
    for (label, histories, _), timing in zip(rows, timings, strict=True):
        wall = statistics.median(took for took, _ in timing)
        cpu = statistics.median(used for _, used in timing)
        count = sum(len(history.events) for history in histories)
        rates[label] = count / wall
        lines.append(
            f"{label:<30} {count / wall:>10,.0f} {wall * 1000 / len(histories):>11.2f} "
            f"{count / cpu:>13,.0f} {cpu * 1000 / len(histories):>12.2f}"
        )
    best = rates["steward replay, committed"]
    floor = rates[f"floor: bare, {shape} activities"]
    lines.append(
        f"steward replay: {best / TARGET:.0%} of the {TARGET:,} events/s target, "
        f"{best / floor:.0%} of the bare Replayer's rate on histories of the same size"
    )
    return lines


if __name__ == "__main__":
    for line in asyncio.run(measure()):
        print(line)
    # Temporal's native runtime can abort the interpreter while it finalizes (see bench).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
