"""`steward inbox`: serve the approval inbox; `steward inbox link NAME`: a sign-in link.

Thin: it reads steward.yaml for who may sign in (everyone in an approvers group), the
inbox's secret from its file (shared by both commands, so a link printed here works with
the server started there), and serves. The web stack is imported only when serving, so
every other command starts as fast as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steward.cli.common import ConfigOption, ui_base
from steward.client import connect, load_settings
from steward.inbox import auth

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8234

app = typer.Typer(no_args_is_help=False, add_completion=False)

SecretOption = Annotated[
    Path | None,
    typer.Option(
        "--secret-file",
        help=f"the inbox's secret (default: ${auth.SECRET_FILE_VARIABLE}, else "
        f"{auth.DEFAULT_SECRET_FILE}; made on first use)",
    ),
]


@app.callback(invoke_without_command=True)
def inbox_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="port to listen on")] = DEFAULT_PORT,
    config: ConfigOption = None,
    secret_file: SecretOption = None,
    trust_header: Annotated[
        str | None,
        typer.Option(
            "--trust-header",
            metavar="HEADER",
            help="take the approver from this header a reverse proxy sets (X-Forwarded-User); "
            "only behind a proxy that always sets it",
        ),
    ] = None,
) -> None:
    """Serve the approval inbox: what waits for approval, to approve or reject in a browser.

    Approvers sign in with a one-time link (`steward inbox link NAME`); decisions go to the
    runs as theirs, checked by the gate like any other. Keep it on loopback or behind a
    proxy with TLS.
    """
    if ctx.invoked_subcommand is not None:
        return
    from steward.inbox.app import build_app, serve

    settings = load_settings(config)
    allowed = auth.approvers_of(settings.approvers)
    signer = _signer(secret_file)

    inbox = build_app(
        lambda: connect(settings), signer, allowed, ui=ui_base(), trust_header=trust_header
    )
    typer.echo(
        f"inbox on http://{host}:{port} for {len(allowed)} approver(s); sign in with a link "
        "from `steward inbox link NAME`",
        err=True,
    )
    serve(inbox, host=host, port=port)


@app.command("link")
def link_command(
    name: Annotated[str, typer.Argument(help="the approver, as in an approvers group")],
    url: Annotated[
        str, typer.Option(help="the inbox's address, as the approver's browser reaches it")
    ] = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
    minutes: Annotated[int, typer.Option(min=1, max=24 * 60, help="valid for")] = 15,
    config: ConfigOption = None,
    secret_file: SecretOption = None,
) -> None:
    """Print a sign-in link for NAME: good once, for a few minutes. Send it to them only."""
    settings = load_settings(config)
    if name not in auth.approvers_of(settings.approvers):
        typer.secho(f"error: {name!r} is in no approvers group of steward.yaml", fg="red", err=True)
        raise typer.Exit(2)
    signer = _signer(secret_file)
    token = signer.link_token(name, minutes * 60)
    typer.echo(f"{url.rstrip('/')}/signin?token={token}")


def _signer(secret_file: Path | None) -> auth.Signer:
    chosen = secret_file or auth.secret_path()
    try:
        return auth.Signer(auth.load_secret(chosen), used_file=auth.used_links_path(chosen))
    except (OSError, auth.SignInError) as err:
        typer.secho(f"error: the inbox's secret: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
