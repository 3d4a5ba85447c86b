"""`steward codec-server`: serve the codec to the Temporal UI and CLI (see steward.codec_server).

Thin: it loads the key ring from the environment, as workers do, reads the token from the
variable named (never from the command line, where other users could read it), and serves.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from steward import codec_server
from steward.devserver import DEFAULT_UI_PORT

DEFAULT_ORIGINS = (f"http://127.0.0.1:{DEFAULT_UI_PORT}", f"http://localhost:{DEFAULT_UI_PORT}")
"""The embedded dev server's UI, as a browser may name it."""


def codec_server_command(
    host: Annotated[str, typer.Option(help="address to listen on")] = codec_server.DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="port to listen on")] = codec_server.DEFAULT_PORT,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            metavar="NAME",
            help="require `Authorization: Bearer TOKEN`, TOKEN being this variable's value",
        ),
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            metavar="URL",
            help="a Temporal UI allowed to call it from a browser (repeatable; default: the "
            "embedded dev server's UI)",
        ),
    ] = None,
) -> None:
    """Serve Temporal's codec server protocol (POST /encode, /decode) with the key ring.

    Point the Temporal UI at it (the embedded dev server's is, when `steward dev up`
    starts both), or the CLI: `temporal --codec-endpoint http://127.0.0.1:8081 workflow
    show ...`. Keys come from STEWARD_CODEC_KEYS, STEWARD_CODEC_KEYS_FILE or the dev key
    file, like every worker's. Whoever reaches it can decrypt: keep it on loopback, or
    set --token-env.
    """
    from steward.codec import CodecError, codec_from_environment

    token = None
    if token_env is not None:
        token = os.environ.get(token_env, "")
        if not token:
            typer.secho(f"error: --token-env: ${token_env} is not set", fg="red", err=True)
            raise typer.Exit(2)
    try:
        the_codec = codec_from_environment()
    except CodecError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    if the_codec is None:
        typer.secho(
            "error: payload encryption is off (STEWARD_CODEC=off): there is nothing to decode",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    origins = origin or list(DEFAULT_ORIGINS)
    typer.echo(
        f"codec server on http://{host}:{port} for {', '.join(origins)}"
        f"{' (bearer token required)' if token else ''}; keys from {the_codec.ring.source}",
        err=True,
    )
    codec_server.serve(the_codec, host=host, port=port, origins=origins, token=token)
