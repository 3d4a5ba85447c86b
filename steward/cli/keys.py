"""`steward keys new NAME` and `steward sign ID`: a person's own key, and signed decisions.

A private key is written to this machine only (mode 0600 under $STEWARD_KEYS_DIR, by
default ~/.config/steward/keys) and never leaves it; the public key is printed for
steward.yaml's `identity.public_keys`. `steward approve`, `reject` and `run` sign with it
when it is there. `steward sign` prints a signed decision as JSON, for a person approving
from the Temporal UI (paste it as the `decide` update's or signal's input).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from steward import signing
from steward.cli.common import run
from steward.client import connect
from steward.runs import check_decision, find_request, make_decision, required_key

app = typer.Typer(
    help="Your own signing key: make one; its public half goes in steward.yaml.",
    no_args_is_help=True,
)

KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key", help="private key file (default: $STEWARD_KEY_FILE, else NAME's in the keys dir)"
    ),
]


@app.command("new")
def new_command(
    name: Annotated[str, typer.Argument(help="your name, as steward.yaml knows you")],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="where to keep it (default: $STEWARD_KEYS_DIR or ~/.config)"),
    ] = None,
) -> None:
    """Make a key pair: the private key stays here, the public key is printed."""
    if not name or any(not (c.isalnum() or c in "._-") for c in name) or len(name) > 200:
        raise typer.BadParameter("use letters, digits, '.', '_' and '-' (at most 200)")
    key = signing.new_private_key()
    path = signing.key_path(name, directory)
    try:
        signing.write_private_key(key, path)
    except signing.SigningKeyError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    except OSError as err:
        typer.secho(f"error: cannot write {path}: {err.strerror}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"private key: {path} (only you can read it; keep it on this machine)")
    typer.echo("add the public key to steward.yaml:")
    typer.echo("identity:\n  public_keys:")
    typer.echo(f"    {name}: {signing.public_text(key)}")


def sign_command(
    approval_id: Annotated[str, typer.Argument(metavar="ID", help="approval id from `pending`")],
    approver: Annotated[str, typer.Option("--as", help="your approver name")],
    reject: Annotated[bool, typer.Option("--reject", help="sign a rejection")] = False,
    reason: Annotated[str, typer.Option(help="note kept with the decision")] = "",
    key: KeyOption = None,
) -> None:
    """Print a decision signed with your key, as JSON to send from the Temporal UI."""
    check_decision(approval_id, approver, approve=not reject, reason=reason)

    async def go() -> None:
        request = await find_request(await connect(), approval_id)
        private = required_key(approver, key, "signing needs your private key")
        decision = make_decision(request, approver, approve=not reject, reason=reason, key=private)
        typer.echo(json.dumps(decision.model_dump(mode="json")))

    run(go())
