"""`steward schedule ...`: put a playbook or agent run on a Temporal Schedule (a daily
digest, a nightly check), list schedules, pause, unpause and delete them.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from steward import queues
from steward.cli.common import read_input, run, whoami
from steward.client import connect, load_settings
from steward.schedules import (
    OVERLAPS,
    ScheduleInfo,
    build_schedule,
    create_schedule,
    delete_schedule,
    list_schedules,
    pause_schedule,
    unpause_schedule,
)

app = typer.Typer(
    help="Run a playbook or agent on a timetable (Temporal Schedules): create, list, pause.",
    no_args_is_help=True,
)

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="the schedule id")]


@app.command("create")
def create_command(
    schedule_id: Annotated[str, typer.Argument(metavar="ID", help="a name, like daily-digest")],
    target: Annotated[str, typer.Argument(help="playbook or agent name from steward.yaml")],
    input_text: Annotated[
        str,
        typer.Argument(metavar="INPUT", help="the task text, @FILE to read a file, - for stdin"),
    ],
    principal: Annotated[
        str | None, typer.Option("--as", help="who is asking (default: $STEWARD_USER or login)")
    ] = None,
    cron: Annotated[
        list[str] | None,
        typer.Option(help="cron expression, like '0 9 * * *' (repeatable)"),
    ] = None,
    every: Annotated[str | None, typer.Option(help="interval, like 30m, 1h or 1d")] = None,
    overlap: Annotated[
        str, typer.Option(help=f"when the last run is still going: {', '.join(OVERLAPS)}")
    ] = "skip",
    paused: Annotated[bool, typer.Option("--paused", help="create it paused")] = False,
    note: Annotated[str, typer.Option(help="a note shown with the schedule")] = "",
    time_zone: Annotated[
        str | None, typer.Option("--tz", help="IANA time zone of --cron (default: UTC)")
    ] = None,
    queue: Annotated[str, typer.Option(help="task queue of the workers")] = queues.DEFAULT,
    config: Annotated[
        str | None, typer.Option("--config", help="steward.yaml to use (default: ./steward.yaml)")
    ] = None,
) -> None:
    """Create a schedule that starts a run of a playbook or agent on a timetable."""
    text = read_input(input_text)
    who = principal or whoami()

    async def go() -> None:
        settings = load_settings(config)
        # Built (and bad input refused) before connecting, as `steward run` does.
        schedule = build_schedule(
            settings,
            schedule_id,
            target,
            text,
            who,
            cron=tuple(cron or ()),
            every=every,
            overlap=overlap,
            paused=paused,
            note=note,
            time_zone=time_zone,
            task_queue=queue,
        )
        await create_schedule(await connect(settings), schedule_id, schedule)
        state = "paused" if paused else "active"
        typer.echo(f"created schedule {schedule_id} ({state}): {target} as {who}")
        typer.echo("  list:    steward schedule list")

    run(go())


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List Steward's schedules: when each runs, whether paused, its next and last runs."""

    async def go() -> list[ScheduleInfo]:
        return await list_schedules(await connect())

    schedules = run(go())
    if as_json:
        typer.echo(json.dumps([s.model_dump(mode="json") for s in schedules], indent=2))
        return
    if not schedules:
        typer.echo("no schedules")
    for schedule in schedules:
        _describe(schedule)


@app.command("delete")
def delete_command(schedule_id: IdArgument) -> None:
    """Delete a schedule. Runs it already started go on."""

    async def go() -> None:
        await delete_schedule(await connect(), schedule_id)

    run(go())
    typer.echo(f"deleted schedule {schedule_id}")


@app.command("pause")
def pause_command(
    schedule_id: IdArgument,
    note: Annotated[str, typer.Option(help="why it is paused")] = "",
) -> None:
    """Pause a schedule: it starts no runs until unpaused."""

    async def go() -> None:
        await pause_schedule(await connect(), schedule_id, note)

    run(go())
    typer.echo(f"paused schedule {schedule_id}")


@app.command("unpause")
def unpause_command(
    schedule_id: IdArgument,
    note: Annotated[str, typer.Option(help="a note shown with the schedule")] = "",
) -> None:
    """Unpause a schedule: it starts runs again at its next time."""

    async def go() -> None:
        await unpause_schedule(await connect(), schedule_id, note)

    run(go())
    typer.echo(f"unpaused schedule {schedule_id}")


def _describe(schedule: ScheduleInfo) -> None:
    state = "paused" if schedule.paused else "active"
    typer.echo(f"{schedule.id}  ({state}{': ' + schedule.note if schedule.note else ''})")
    typer.echo(f"  run:      {schedule.target} as {schedule.principal} ({schedule.workflow})")
    typer.echo(f"  when:     {', '.join(schedule.spec)}  overlap {schedule.overlap}")
    if schedule.next_run is not None and not schedule.paused:
        typer.echo(f"  next:     {schedule.next_run:%Y-%m-%d %H:%M:%S}Z")
    for past in schedule.recent_runs[-3:]:
        typer.echo(f"  ran:      {past.started_at:%Y-%m-%d %H:%M:%S}Z  {past.workflow_id}")
    for workflow_id in schedule.running:
        typer.echo(f"  running:  {workflow_id}")
