"""`steward run` and `steward status`: start a playbook or agent, see where a run is."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from steward import queues
from steward.cli.common import read_input, run, ui_link, whoami
from steward.client import connect, load_settings
from steward.models import RunProgress, RunResult
from steward.runs import build_request, start_run

ConfigOption = Annotated[
    str | None, typer.Option("--config", help="steward.yaml to use (default: ./steward.yaml)")
]


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
    workflow_id: Annotated[str | None, typer.Option("--id", help="workflow id to use")] = None,
    queue: Annotated[str, typer.Option(help="task queue of the workers")] = queues.DEFAULT,
    config: ConfigOption = None,
) -> None:
    """Start a run of a playbook or agent. Risky actions in it will wait for approval."""
    text = read_input(input_text)

    async def go() -> None:
        settings = load_settings(config)
        build_request(settings, target, text, principal or whoami())  # refuse bad input first
        client = await connect(settings)
        handle = await start_run(
            client,
            settings,
            target,
            text,
            principal or whoami(),
            task_queue=queue,
            workflow_id=workflow_id,
        )
        typer.echo(f"started {handle.id}")
        link = ui_link(handle.id, client.namespace)
        if link:
            typer.echo(f"  UI:      {link}")
        typer.echo(f"  status:  steward status {handle.id}")
        if wait:
            result = await handle.result()
            typer.echo(result.model_dump_json(indent=2))

    run(go())


def status_command(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow id")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a run: its state, approvals waiting, model calls, and its result when done."""

    async def go() -> None:
        client = await connect()
        handle = client.get_workflow_handle(workflow_id, result_type=RunResult)
        described = await handle.describe()
        state = described.status.name.lower() if described.status else "unknown"
        report: dict[str, object] = {"workflow_id": workflow_id, "execution": state}
        if described.status == WorkflowExecutionStatus.RUNNING:
            progress = await handle.query("progress", result_type=RunProgress)
            report["progress"] = progress.model_dump(mode="json")
        elif described.status == WorkflowExecutionStatus.COMPLETED:
            result = await handle.result()
            report["result"] = result.model_dump(mode="json")
        else:
            try:
                await handle.result()
            except WorkflowFailureError as err:
                report["failure"] = str(err.cause)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
            return
        _print_report(report)

    run(go())


def _print_report(report: dict[str, object]) -> None:
    typer.echo(f"{report['workflow_id']}: {report['execution']}")
    body = report.get("progress") or report.get("result")
    if isinstance(body, dict):
        for key in ("status", "step", "answer"):
            if body.get(key):
                typer.echo(f"  {key}: {body[key]}")
        for request in body.get("pending", []):
            typer.echo(
                f"  waiting: {request['id']} ({request['tool']}) for one of "
                f"{', '.join(request['approvers'])}"
            )
        for question in body.get("questions", []):
            typer.echo(
                f"  asking: {question['id']} until {question['deadline']}: {question['question']}"
            )
        for action in body.get("actions", []):
            typer.echo(f"  action: {action['tool']} -> {action['outcome']} ({action['reason']})")
        for call in body.get("model_calls", []):
            typer.echo(
                f"  model: {call['step']} {call['model']} "
                f"{call['input_tokens']}+{call['output_tokens']} tokens {call['latency_ms']:.0f} ms"
            )
        ledger = body.get("ledger")
        if isinstance(ledger, dict):
            typer.echo(
                f"  ledger: {ledger['model_calls']} calls, "
                f"{ledger['input_tokens'] + ledger['output_tokens']} tokens, "
                f"${ledger['cost_usd']:.6f}, retries {ledger['retries']}, "
                f"fallbacks {ledger['fallbacks']}, review wait {ledger['review_seconds']:.1f}s"
            )
    if "failure" in report:
        typer.echo(f"  failure: {report['failure']}")
