"""Client-side operations on schedules: put a playbook or agent run on a Temporal Schedule.

A daily digest or a nightly check is the same run `steward run` starts, only started by the
server on a timetable. So a schedule is built from the very request `build_request` checks
and carries the same workflow type and search attributes as `start_run`: scheduled runs show
up in `steward pending` and the UI exactly like hand-started ones. The schedule's action
stores only what a run input may carry (target, task, principal): each scheduled run
resolves its profile from the workers' steward.yaml when it starts, like any run. Where
starts must be signed (`identity.signed_start`), nobody is there to sign a scheduled start,
so such an environment refuses to create schedules.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Final, TypeVar

from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from steward import queues
from steward import search_attributes as sa
from steward.config import StewardConfig
from steward.runs import RunError, build_request
from steward.targets import workflow_type

T = TypeVar("T")


class ScheduleError(RunError):
    """A schedule could not be created, found or changed; the message says why, for a person."""


OVERLAPS: Final = (
    "skip",
    "buffer-one",
    "buffer-all",
    "cancel-other",
    "terminate-other",
    "allow-all",
)
"""What to do when a run is due and the last one is still going, as Temporal names them."""

_OVERLAP_POLICY: Final = {
    name: ScheduleOverlapPolicy[name.upper().replace("-", "_")] for name in OVERLAPS
}

MEMO_KEY: Final = "steward"
"""The schedule memo key that marks a schedule as Steward's and records what was asked."""

_UNITS: Final = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_INTERVAL = re.compile(r"(?:\d+[dhms])+")


class ScheduledRun(BaseModel):
    """One run a schedule started."""

    workflow_id: str
    scheduled_at: datetime
    started_at: datetime


class ScheduleInfo(BaseModel):
    """A Steward schedule as `steward schedule list` shows it."""

    id: str
    target: str
    principal: str
    workflow: str = Field(description="the workflow type each action starts")
    task_queue: str
    spec: list[str] = Field(description="when it runs: `cron ...` and `every ...` entries")
    overlap: str
    paused: bool
    note: str = ""
    next_run: datetime | None = None
    recent_runs: list[ScheduledRun] = Field(default_factory=list)
    running: list[str] = Field(default_factory=list, description="workflow ids still running")


def parse_interval(value: str) -> timedelta:
    """`30m`, `1h`, `1d`, `1h30m` (units d, h, m, s) as a timedelta, or ScheduleError."""
    text = value.strip().lower()
    if not _INTERVAL.fullmatch(text):
        raise ScheduleError(
            f"--every {value!r} is not an interval: give a number and a unit "
            "(d, h, m or s), like 30m, 1h, 1d or 1h30m"
        )
    seconds = sum(int(number) * _UNITS[unit] for number, unit in re.findall(r"(\d+)([dhms])", text))
    if seconds <= 0:
        raise ScheduleError(f"--every {value!r} is zero: give an interval of at least 1s")
    return timedelta(seconds=seconds)


def format_interval(every: timedelta) -> str:
    """A timedelta as `parse_interval` reads it (`1d`, `1h30m`)."""
    rest = int(every.total_seconds())
    parts = []
    for unit, size in _UNITS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def build_schedule(
    config: StewardConfig,
    schedule_id: str,
    target: str,
    text: str,
    principal: str,
    *,
    cron: tuple[str, ...] | list[str] = (),
    every: str | None = None,
    overlap: str = "skip",
    paused: bool = False,
    note: str = "",
    time_zone: str | None = None,
    task_queue: str = queues.DEFAULT,
) -> Schedule:
    """The schedule to create, checked like `steward run` checks a run; ScheduleError if not.

    Nothing is contacted: call it before connecting to refuse bad input early.
    """
    if not schedule_id.strip():
        raise ScheduleError("the schedule id is empty: give a name like daily-digest")
    crons = [expression.strip() for expression in cron]
    if any(not expression for expression in crons):
        raise ScheduleError("--cron is empty: give an expression like '0 9 * * *'")
    if bool(crons) == (every is not None):
        raise ScheduleError("give when to run: either --cron or --every (not both)")
    if overlap not in _OVERLAP_POLICY:
        raise ScheduleError(f"--overlap {overlap!r} is not one of: {', '.join(OVERLAPS)}")
    intervals = [ScheduleIntervalSpec(every=parse_interval(every))] if every is not None else []
    if config.identity.signed_start:
        raise ScheduleError(
            "runs here start only when their requester signs the start "
            "(identity.signed_start), and a scheduled start has nobody to sign it"
        )
    try:
        request = build_request(config, target, text, principal)
    except RunError as err:
        raise ScheduleError(str(err)) from None
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow_type(target),
            request,
            # The server appends the scheduled time, so each run gets its own id.
            id=f"{target}-scheduled-{schedule_id}",
            task_queue=task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TARGET, target),
                    SearchAttributePair(sa.PRINCIPAL, principal),
                    SearchAttributePair(sa.STATUS, "running"),
                ]
            ),
        ),
        spec=ScheduleSpec(
            cron_expressions=crons, intervals=intervals, time_zone_name=time_zone or None
        ),
        policy=SchedulePolicy(overlap=_OVERLAP_POLICY[overlap]),
        state=ScheduleState(paused=paused, note=note or f"{target} as {principal}"),
    )


async def create_schedule(client: Client, schedule_id: str, schedule: Schedule) -> ScheduleHandle:
    """Create a schedule `build_schedule` made (and checked); ScheduleError if refused."""
    action = schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow):
        raise ScheduleError("a Steward schedule starts a run: build it with build_schedule")
    attributes = action.typed_search_attributes
    target, principal = attributes.get(sa.TARGET), attributes.get(sa.PRINCIPAL)
    # The server turns cron strings into calendars; keep the text a person gave.
    spec = [f"cron {expression}" for expression in schedule.spec.cron_expressions]
    spec += [f"every {format_interval(i.every)}" for i in schedule.spec.intervals]
    memo = {MEMO_KEY: {"target": target, "principal": principal, "spec": spec}}
    try:
        return await client.create_schedule(schedule_id, schedule, memo=memo)
    except ScheduleAlreadyRunningError:
        raise ScheduleError(
            f"schedule {schedule_id!r} already exists; delete it first "
            f"(steward schedule delete {schedule_id})"
        ) from None
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            raise ScheduleError(f"schedule {schedule_id!r} refused: {err.message}") from None
        raise


async def describe_schedule(client: Client, schedule_id: str) -> ScheduleInfo:
    """One Steward schedule; ScheduleError if there is none with this id."""
    description = await _describe(client.get_schedule_handle(schedule_id))
    info = await _info(description)
    if info is None:
        raise ScheduleError(f"schedule {schedule_id!r} is not a Steward schedule")
    return info


async def list_schedules(client: Client) -> list[ScheduleInfo]:
    """Steward's schedules in the namespace, by id. Others' schedules are left out."""
    found: list[ScheduleInfo] = []
    async for entry in await client.list_schedules():
        try:
            description = await client.get_schedule_handle(entry.id).describe()
        except RPCError as err:
            # The list is eventually consistent: a schedule just deleted may still be in it.
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        info = await _info(description)
        if info is not None:
            found.append(info)
    return sorted(found, key=lambda info: info.id)


async def delete_schedule(client: Client, schedule_id: str) -> None:
    """Delete a schedule (runs it already started go on); ScheduleError if unknown."""
    handle = client.get_schedule_handle(schedule_id)
    await _call(schedule_id, handle.delete())


async def pause_schedule(client: Client, schedule_id: str, note: str = "") -> None:
    """Stop a schedule from starting runs until unpaused; ScheduleError if unknown."""
    handle = client.get_schedule_handle(schedule_id)
    await _call(schedule_id, handle.pause(note=note or "paused with steward schedule pause"))


async def unpause_schedule(client: Client, schedule_id: str, note: str = "") -> None:
    """Let a paused schedule start runs again; ScheduleError if unknown."""
    handle = client.get_schedule_handle(schedule_id)
    await _call(schedule_id, handle.unpause(note=note or "unpaused with steward schedule unpause"))


async def _describe(handle: ScheduleHandle) -> ScheduleDescription:
    return await _call(handle.id, handle.describe())


async def _call(schedule_id: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ScheduleError(
                f"no schedule {schedule_id!r} (see steward schedule list)"
            ) from None
        raise


async def _info(description: ScheduleDescription) -> ScheduleInfo | None:
    """The Steward view of a schedule, or None for a schedule Steward did not create."""
    action = description.schedule.action
    memo = await description.memo()
    recorded = memo.get(MEMO_KEY)
    if not isinstance(action, ScheduleActionStartWorkflow) or not isinstance(recorded, dict):
        return None
    attributes = action.typed_search_attributes
    spec = description.schedule.spec
    shown = [str(entry) for entry in recorded.get("spec", [])] or [
        f"every {format_interval(i.every)}" for i in spec.intervals
    ]
    if spec.time_zone_name:
        shown = [f"{entry} ({spec.time_zone_name})" for entry in shown]
    state = description.schedule.state
    info = description.info
    return ScheduleInfo(
        id=description.id,
        target=attributes.get(sa.TARGET) or str(recorded.get("target", "")),
        principal=attributes.get(sa.PRINCIPAL) or str(recorded.get("principal", "")),
        workflow=action.workflow,
        task_queue=action.task_queue,
        spec=shown,
        overlap=description.schedule.policy.overlap.name.lower().replace("_", "-"),
        paused=state.paused,
        note=state.note or "",
        next_run=info.next_action_times[0] if info.next_action_times else None,
        recent_runs=[
            ScheduledRun(
                workflow_id=getattr(result.action, "workflow_id", ""),
                scheduled_at=result.scheduled_at,
                started_at=result.started_at,
            )
            for result in info.recent_actions
        ],
        running=[getattr(run, "workflow_id", "") for run in info.running_actions],
    )
