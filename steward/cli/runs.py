"""`steward run` and `steward status`: start a playbook or agent, see where a run is."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from steward import queues
from steward.cli.common import ConfigOption, KeyOption, read_input, run, ui_link, whoami
from steward.client import connect, load_settings

if TYPE_CHECKING:
    from steward.runs import StatusReport


def run_command(
    target: Annotated[str, typer.Argument(help="playbook or agent name from steward.yaml")],
    input_text: Annotated[
        str,
        typer.Argument(metavar="INPUT", help="the task text, @FILE to read a file, - for stdin"),
    ],
    principal: Annotated[
        str | None, typer.Option("--as", help="who is asking (default: $STEWARD_USER or login)")
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="wait for the run to finish and print its result")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="print the run's events live (as `steward watch` does)"
        ),
    ] = False,
    workflow_id: Annotated[str | None, typer.Option("--id", help="workflow id to use")] = None,
    queue: Annotated[str, typer.Option(help="task queue of the workers")] = queues.DEFAULT,
    config: ConfigOption = None,
    key: KeyOption = None,
) -> None:
    """Start a run of a playbook or agent. Risky actions in it will wait for approval.

    The start is signed with your key when you have one (`steward keys new NAME`), which
    proves to the workers who asked; where starts must be signed, a key is required.
    """
    from steward.cli.watch import print_events
    from steward.runs import build_request, private_key, required_key, start_run

    text = read_input(input_text)
    who = principal or whoami()

    async def go() -> None:
        settings = load_settings(config)
        build_request(settings, target, text, who)  # refuse bad input before connecting
        private = (
            required_key(who, key, "runs here start only when signed")
            if settings.identity.signed_start
            else private_key(who, key)
        )
        client = await connect(settings)
        handle = await start_run(
            client,
            settings,
            target,
            text,
            who,
            task_queue=queue,
            workflow_id=workflow_id,
            key=private,
        )
        typer.echo(f"started {handle.id}")
        link = ui_link(handle.id, client.namespace)
        if link:
            typer.echo(f"  UI:      {link}")
        typer.echo(f"  status:  steward status {handle.id}")
        if follow:
            await print_events(client, handle.id, sys.stdout)
        if wait:
            result = await handle.result()
            typer.echo(result.model_dump_json(indent=2))

    run(go())


def status_command(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow id")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a run: its state, what waits, refused decisions, retries, and its result."""
    from steward.runs import status

    async def go() -> None:
        report = await status(await connect(), workflow_id)
        if as_json:
            typer.echo(report.model_dump_json(indent=2))
            return
        _print_report(report)

    run(go())


REFUSALS_SHOWN = 5


def _print_report(report: StatusReport) -> None:
    typer.echo(f"{report.workflow_id}: {report.execution}")
    progress, result = report.progress, report.result
    if progress is not None:
        typer.echo(f"  step: {progress.step}")
        for request in progress.pending:
            needs = f"{request.required} of " if request.required > 1 else "one of "
            typer.echo(
                f"  waiting: {request.id} ({request.tool}) for {needs}"
                f"{', '.join(request.approvers)}"
            )
        for question in progress.questions:
            typer.echo(f"  asking: {question.id} until {question.deadline}: {question.question}")
        for activity in report.activities:
            if activity.attempt > 1 or activity.last_failure:
                typer.echo(
                    f"  retrying: {activity.activity}, attempt {activity.attempt}: "
                    f"{activity.last_failure or 'no error yet'}"
                )
        refused = progress.refused[-REFUSALS_SHOWN:]
        if refused:
            typer.echo(f"  refused decisions ({len(progress.refused)}, newest last):")
        for refusal in refused:
            typer.echo(f"    {refusal.approver} on {refusal.request_id}: {refusal.reason}")
    if result is not None:
        typer.echo(f"  status: {result.status}")
        typer.echo(f"  answer: {result.answer}")
        for action in result.actions:
            typer.echo(f"  action: {action.tool} -> {action.outcome} ({action.reason})")
    calls = progress.model_calls if progress else result.model_calls if result else []
    for call in calls:
        typer.echo(
            f"  model: {call.step} {call.model} "
            f"{call.input_tokens}+{call.output_tokens} tokens {call.latency_ms:.0f} ms"
        )
    ledger = progress.ledger if progress else result.ledger if result else None
    if ledger is not None:
        typer.echo(
            f"  ledger: {ledger.model_calls} calls, {ledger.tokens} tokens, "
            f"${ledger.cost_usd:.6f}, retries {ledger.retries}, "
            f"fallbacks {ledger.fallbacks}, review wait {ledger.review_seconds:.1f}s"
        )
    digest = progress.config_digest if progress else result.config_digest if result else ""
    if digest:
        typer.echo(f"  config: {digest} (the workers' steward.yaml that decided this run)")
    if report.failure is not None:
        typer.echo(f"  failure: {report.failure}")
