"""Replay histories against today's workflow code, and say where and why they diverge.

A workflow change that runs in flight cannot replay breaks them where it hurts: their next
workflow task fails with a non-determinism error and they stop. Replaying their histories
before deploying, with the same workflows, sandbox and data converter the workers use,
catches it. A report names the event where the code diverged, what history holds there,
and what today's code did instead. Histories come from exported JSON files (the workflow
id is the file name unless given), from the server by workflow id, or from a visibility
query, bounded by a limit.

Histories are kept as the server stores them (payloads encrypted, see `steward.codec`):
`replay` decrypts each one once, in a batch, before it replays, and an export stays
ciphertext. Readers of events (the trace, the eval recorder) ask
`histories_for(..., decode=True)`. Either way a history holding a key the ring lacks is
refused up front, naming the key id.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import ParseError
from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from steward.codec import CodecError, codec_from_environment
from steward.decoding import decode_history
from steward.models import LLMRequest, ToolInvocation
from steward.plugin import StewardPlugin
from steward.runs import RunError
from steward.trace.events import first, kind, seconds, typed

DEFAULT_LIMIT = 20
"""Most runs a visibility query replays unless told otherwise."""

LOCATE_TIMEOUT_SECONDS = 30.0
"""How long locating a divergence by replaying shorter histories may take, per replay."""

_CORE_MESSAGE = re.compile(r'message: "(.*?)", source:', re.S)
_EVENT = re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)")
_MACHINE = re.compile(r"(\w[\w ]*?) machine does not handle this event")
_ACTIVITY_TYPES = re.compile(r"scheduled event '([^']*)' does not match .* command '([^']*)'")
_COMMANDS = {
    "Timer": "started a timer",
    "Activity": "scheduled an activity",
    "Local activity": "ran a local activity",
    "Complete workflow": "completed the workflow",
    "Fail workflow": "failed the workflow",
    "Continue as new workflow": "continued as new",
    "Child workflow": "started a child workflow",
    "Upsert search attributes": "upserted search attributes",
    "Signal external workflow": "signalled another workflow",
}


class HistoryError(RunError):
    """A history could not be read or found; the message says why, for a person."""


class ReplayReport(BaseModel):
    """How one history replayed against today's code."""

    workflow_id: str
    run_id: str = ""
    workflow_type: str = ""
    events: int = 0
    ok: bool
    nondeterministic: bool = False
    error_type: str = ""
    error: str = ""
    event_id: int | None = Field(default=None, description="where the code diverged")
    expected: str = Field(default="", description="what history holds there")
    actual: str = Field(default="", description="what today's code did instead")

    def lines(self) -> list[str]:
        """The report for a terminal: one line when it replayed, the details when not."""
        what = f"{self.workflow_type}, {self.events} events"
        if self.ok:
            return [f"ok    {self.workflow_id}  ({what})"]
        problem = "non-determinism" if self.nondeterministic else self.error_type
        where = f" at event {self.event_id}" if self.event_id is not None else ""
        lines = [f"FAIL  {self.workflow_id}  ({what}): {problem}{where}"]
        if self.expected:
            lines.append(f"      expected (as in history): {self.expected}")
        if self.actual:
            lines.append(f"      today's code: {self.actual}")
        lines.append(f"      error: {self.error}")
        return lines


def load_history(path: Path, workflow_id: str | None = None) -> WorkflowHistory:
    """A history exported as JSON (`steward history export`, the Temporal UI or CLI).

    The workflow id is the file name without `.json` unless `workflow_id` is given; replay
    needs the real one, since workflows may derive ids (approval requests) from it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise HistoryError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise HistoryError(
            f"{path} is not a Temporal history in JSON: not UTF-8 text (at byte {err.start})"
        ) from None
    try:
        history = WorkflowHistory.from_json(workflow_id or path.stem, text)
    except (ValueError, ParseError, KeyError, TypeError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise HistoryError(f"{path} is not a Temporal history in JSON: {first_line}") from None
    if not history.events:
        raise HistoryError(f"{path} holds no events")
    return history


async def fetch_history(
    client: Client, workflow_id: str, run_id: str | None = None
) -> WorkflowHistory:
    """A run's history from the server (the latest run unless `run_id` is given)."""
    return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()


async def query_histories(
    client: Client, query: str, limit: int = DEFAULT_LIMIT
) -> list[WorkflowHistory]:
    """Histories of the runs a visibility query finds, at most `limit` of them."""
    return [h async for h in client.list_workflows(query, limit=limit).map_histories()]


async def histories_for(
    target: str | None,
    *,
    workflow_id: str | None = None,
    run_id: str | None = None,
    query: str | None = None,
    limit: int = DEFAULT_LIMIT,
    decode: bool = False,
) -> list[WorkflowHistory]:
    """What a command names: a JSON file, a folder of them, a workflow id, or a query.

    A name that exists on disk, or ends in `.json`, is a file; anything else is a
    workflow id. The server is only contacted when needed. With `decode`, payloads come
    back decrypted with the environment's key ring (MissingKey when it lacks one).
    """
    histories = await _histories(target, workflow_id, run_id, query, limit)
    if not decode:
        return histories
    codec = codec_from_environment()
    return [await decode_history(history, codec) for history in histories]


async def _histories(
    target: str | None,
    workflow_id: str | None,
    run_id: str | None,
    query: str | None,
    limit: int,
) -> list[WorkflowHistory]:
    local = _local_histories(target, workflow_id) if target is not None else None
    if local is not None:
        return local
    from steward.client import connect  # only commands that need the server connect

    client = await connect()
    if query is not None:
        found = await query_histories(client, query, limit)
        if not found:
            raise HistoryError(f"no workflows match the query {query!r}")
        return found
    assert target is not None  # the caller gives a target or a query
    return [await fetch_history(client, target, run_id)]


def _local_histories(target: str, workflow_id: str | None) -> list[WorkflowHistory] | None:
    """Histories on disk that `target` names, or None when it names no file or folder."""
    path = Path(target)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise HistoryError(f"no .json histories in {path}")
        return [load_history(file) for file in files]
    if path.is_file() or target.endswith(".json"):
        return [load_history(path, workflow_id)]
    return None


async def replay(
    histories: Iterable[WorkflowHistory], *, workflows: Sequence[type] | None = None
) -> list[ReplayReport]:
    """Replay each history against today's workflow code (or `workflows`); one report each.

    Payloads are decrypted with the environment's key ring, once per history before it
    replays; a history encrypted with a key the ring lacks (or whose ciphertext does not
    authenticate) is not replayed, and its report says why. Every readable history
    replays through one Replayer, in one pass.
    """
    codec = codec_from_environment()
    replayer = _replayer(workflows)
    given = list(histories)
    unreadable: dict[int, CodecError] = {}
    pending: list[WorkflowHistory] = []
    for index, history in enumerate(given):
        try:
            pending.append(await decode_history(history, codec))
        except CodecError as err:
            unreadable[index] = err
    failures: dict[int, BaseException | None] = {}
    async with replayer.workflow_replay_iterator(_iterate(pending)) as results:
        index = 0
        async for result in results:
            failures[index] = result.replay_failure
            index += 1
    reports = iter([await _report(replayer, h, failures.get(i)) for i, h in enumerate(pending)])
    return [
        _unreadable(history, unreadable[index]) if index in unreadable else next(reports)
        for index, history in enumerate(given)
    ]


def _unreadable(history: WorkflowHistory, err: CodecError) -> ReplayReport:
    started = history.events[0].workflow_execution_started_event_attributes
    return ReplayReport(
        workflow_id=history.workflow_id,
        run_id=history.run_id,
        workflow_type=started.workflow_type.name,
        events=len(history.events),
        ok=False,
        error_type=type(err).__name__,
        error=str(err),
    )


def describe_event(event: HistoryEvent) -> str:
    """One event the way a person would name it: its type and what it was about."""
    name = kind(event)
    if name == "ACTIVITY_TASK_SCHEDULED":
        attrs = event.activity_task_scheduled_event_attributes
        value = first(attrs.input)
        detail = ""
        if (request := typed(LLMRequest, value)) is not None:
            detail = f" (model call {request.step}, tier {request.tier})"
        elif (invocation := typed(ToolInvocation, value)) is not None:
            detail = f" (tool call {invocation.call.id})"
        return f"{name} of activity {attrs.activity_type.name}{detail}"
    if name == "TIMER_STARTED":
        timeout = seconds(event.timer_started_event_attributes.start_to_fire_timeout)
        return f"{name} for {timeout:g}s"
    if name == "MARKER_RECORDED":
        return f"{name} {event.marker_recorded_event_attributes.marker_name}"
    if name == "START_CHILD_WORKFLOW_EXECUTION_INITIATED":
        child = event.start_child_workflow_execution_initiated_event_attributes
        return f"{name} of {child.workflow_type.name}"
    return name


def _replayer(workflows: Sequence[type] | None) -> Replayer:
    # workers.build imports every activity module (litellm among them): import it only
    # when replaying, so the rest of the CLI starts fast.
    from workers.build import ALL_WORKFLOWS

    # Histories arrive decoded (see `replay`): the replayer needs no codec, and so spends
    # nothing encrypting the commands it compares, which nobody reads.
    replayed = workflows if workflows is not None else ALL_WORKFLOWS
    return Replayer(
        workflows=[], plugins=[StewardPlugin(None, workflows=replayed)], runtime=_quiet_runtime()
    )


_RUNTIME: list[Runtime] = []


def _quiet_runtime() -> Runtime:
    """A runtime whose core logs only errors.

    The report already says what went wrong; core's warning for the failed task would
    repeat it as noise.
    """
    if not _RUNTIME:
        quiet = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        _RUNTIME.append(Runtime(telemetry=TelemetryConfig(logging=quiet)))
    return _RUNTIME[0]


async def _iterate(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


async def _report(
    replayer: Replayer, history: WorkflowHistory, failure: BaseException | None
) -> ReplayReport:
    started = history.events[0].workflow_execution_started_event_attributes
    report = ReplayReport(
        workflow_id=history.workflow_id,
        run_id=history.run_id,
        workflow_type=started.workflow_type.name,
        events=len(history.events),
        ok=failure is None,
    )
    if failure is None:
        return report
    text = str(failure)
    found = _CORE_MESSAGE.search(text)
    message = found.group(1) if found else text
    report.error, report.error_type = message, type(failure).__name__
    report.nondeterministic = isinstance(failure, NondeterminismError) or (
        "nondetermin" in text.lower()
    )
    if not report.nondeterministic:
        return report
    at = _EVENT.search(message)
    report.event_id = int(at.group(1)) if at else await _locate(replayer, history)
    event = next((e for e in history.events if e.event_id == report.event_id), None)
    if event is not None:
        report.expected = describe_event(event)
    report.actual = _actual(message)
    return report


def _actual(message: str) -> str:
    """What today's code did where history says otherwise, from core's error message."""
    if (types := _ACTIVITY_TYPES.search(message)) is not None:
        return f"scheduled activity {types.group(2)} instead of {types.group(1)}"
    if (machine := _MACHINE.search(message)) is not None:
        did = _COMMANDS.get(machine.group(1), f"issued a {machine.group(1).lower()} command")
        return f"{did} instead"
    if "No command scheduled for event" in message:
        return "issued no command there (it stopped earlier, or waits for something else)"
    return ""


async def _locate(replayer: Replayer, history: WorkflowHistory) -> int | None:
    """The first event the code disagrees with, when the error does not name it.

    Replaying histories cut after each completed workflow task finds the first task whose
    commands diverge; the divergence is the first event after the last task that replays.
    Once a cut fails, every longer one does, so the search halves.
    """
    events = list(history.events)
    cuts = [
        index + 1
        for index, event in enumerate(events)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    good, low, high = 0, 0, len(cuts) - 1
    while low <= high:
        middle = (low + high) // 2
        if await _replays(replayer, WorkflowHistory(history.workflow_id, events[: cuts[middle]])):
            good, low = cuts[middle], middle + 1
        else:
            high = middle - 1
    return events[good].event_id if 0 < good < len(events) else None


async def _replays(replayer: Replayer, history: WorkflowHistory) -> bool:
    replaying: Any = replayer.replay_workflow(history, raise_on_replay_failure=False)
    try:
        result = await asyncio.wait_for(replaying, LOCATE_TIMEOUT_SECONDS)
    except TimeoutError:
        return False
    return result.replay_failure is None
