"""`steward trace`: a run's history as a readable trace, JSON, or one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steward.cli.common import run


def trace_command(
    target: Annotated[
        str,
        typer.Argument(metavar="WORKFLOW_ID_OR_FILE", help="a workflow id, or an exported history"),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print the trace as JSON")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="also write the trace as one HTML file here")
    ] = None,
    workflow_id: Annotated[
        str | None,
        typer.Option("--workflow-id", help="the workflow id of FILE, when its name is not it"),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="a run other than the latest")
    ] = None,
) -> None:
    """Show what a run did: model and tool calls, approvals, costs, retries, why it failed."""
    from steward.replay import HistoryError, histories_for
    from steward.trace import build_trace, render_html, render_json, render_text

    async def go() -> str:
        (history,) = await histories_for(
            target, workflow_id=workflow_id, run_id=run_id, decode=True
        )
        trace = build_trace(history)
        if html is not None:
            try:
                html.write_text(render_html(trace), encoding="utf-8")
            except OSError as err:
                raise HistoryError(f"cannot write {html}: {err.strerror or err}") from None
        return render_json(trace) + "\n" if as_json else render_text(trace)

    typer.echo(run(go()), nl=False)
    if html is not None:
        typer.echo(f"wrote {html}", err=True)
