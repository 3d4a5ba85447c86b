"""`steward history export` and `steward replay`: keep a run's history, and check that
today's workflow code can still replay it (run it before deploying a workflow change).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from steward.cli.common import run
from steward.replay import DEFAULT_LIMIT, HistoryError, ReplayReport, histories_for, replay

app = typer.Typer(
    help="Export run histories: for replay tests, for `steward trace FILE`, to share a run.",
    no_args_is_help=True,
)


@app.command("export")
def export_command(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow id")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the JSON file to write")],
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="a run other than the latest")
    ] = None,
) -> None:
    """Save a run's event history as JSON, as the Temporal UI and CLI export it."""

    async def go() -> int:
        (history,) = await histories_for(workflow_id, run_id=run_id)
        try:
            output.write_text(history.to_json(), encoding="utf-8")
        except OSError as err:
            raise HistoryError(f"cannot write {output}: {err.strerror or err}") from None
        return len(history.events)

    count = run(go())
    typer.echo(f"wrote {count} events of {workflow_id} to {output}")


def replay_command(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[WORKFLOW_ID|FILE]",
            help="a workflow id, an exported history, or a folder of them",
        ),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option("--query", help="replay the runs this visibility query finds instead"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="most runs --query replays")] = DEFAULT_LIMIT,
    workflow_id: Annotated[
        str | None,
        typer.Option("--workflow-id", help="the workflow id of FILE, when its name is not it"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the reports as JSON")] = False,
) -> None:
    """Replay runs against today's workflow code; exit 1 if any would break (non-determinism)."""
    if (target is None) == (query is None):
        raise typer.BadParameter("give a WORKFLOW_ID or FILE, or --query (not both)")

    async def go() -> list[ReplayReport]:
        histories = await histories_for(target, workflow_id=workflow_id, query=query, limit=limit)
        return await replay(histories)

    reports = run(go())
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
    else:
        for report in reports:
            for line in report.lines():
                typer.echo(line)
        broken = sum(1 for r in reports if not r.ok)
        typer.echo(f"replayed {len(reports)}: {len(reports) - broken} ok, {broken} would break")
    if any(not r.ok for r in reports):
        raise typer.Exit(1)
