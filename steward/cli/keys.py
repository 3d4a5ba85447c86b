"""`steward keys new NAME` and `steward sign ID`: a person's own key, and signed decisions;
`steward keys codec-new`: a key for the payload codec's key ring.

A private key is written to this machine only (mode 0600 under $STEWARD_KEYS_DIR, by
default ~/.config/steward/keys) and never leaves it; the public key is printed for
steward.yaml's `identity.public_keys`. `steward approve`, `reject` and `run` sign with it
when it is there. `steward sign` prints a signed decision as JSON, for a person approving
from the Temporal UI (paste it as the `decide` update's or signal's input).

A codec key is shared instead: every worker, client and codec server of a deployment holds
the same ring (`steward.codec`), so `codec-new` prints the new key's line for the ring, or
appends it to a ring file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from steward.cli.common import KeyOption, run
from steward.client import connect

app = typer.Typer(
    help=(
        "Keys: your own signing key (`new`; its public half goes in steward.yaml), and "
        "payload encryption keys for the codec's key ring (`codec-new`)."
    ),
    no_args_is_help=True,
)


@app.command("new")
def new_command(
    name: Annotated[str, typer.Argument(help="your name, as steward.yaml knows you")],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="where to keep it (default: $STEWARD_KEYS_DIR or ~/.config)"),
    ] = None,
) -> None:
    """Make a key pair: the private key stays here, the public key is printed."""
    from steward import signing

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


@app.command("codec-new")
def codec_new_command(
    key_id: Annotated[
        str | None, typer.Option("--id", help="the key's id (default: k, the date, 4 hex digits)")
    ] = None,
    append: Annotated[
        Path | None,
        typer.Option(
            "--append",
            help="add the key at the end of this ring file (created 0600): it encrypts from "
            "then on, once every process has the new ring",
        ),
    ] = None,
) -> None:
    """Make a payload encryption key (AES-256) for the codec's key ring.

    Prints the line `KEY_ID:BASE64_KEY` for STEWARD_CODEC_KEYS or a ring file; with
    --append, adds it to that file instead and prints only its id. The last key of a ring
    encrypts; all of them decrypt: keep old keys while any history or blob needs them.
    """
    from steward import codec

    try:
        line = codec.key_line(key_id)
        if append is None:
            typer.echo(line)
            return
        codec.append_key(append, line)
    except codec.KeyRingError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    except OSError as err:
        typer.secho(f"error: cannot write {append}: {err.strerror}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"added key {line.partition(':')[0]} to {append}; it is now the newest key.")
    typer.echo(
        "Give every worker, client and codec server this ring. Restarting them one by one? "
        "Then put the new key first in the ring (it only decrypts there), restart all, and "
        "move it last: no process then meets a payload it has no key for."
    )


def sign_command(
    approval_id: Annotated[str, typer.Argument(metavar="ID", help="approval id from `pending`")],
    approver: Annotated[str, typer.Option("--as", help="your approver name")],
    reject: Annotated[bool, typer.Option("--reject", help="sign a rejection")] = False,
    reason: Annotated[str, typer.Option(help="note kept with the decision")] = "",
    key: KeyOption = None,
) -> None:
    """Print a decision signed with your key, as JSON to send from the Temporal UI."""
    from steward.runs import check_decision, find_request, make_decision, required_key

    check_decision(approval_id, approver, approve=not reject, reason=reason)

    async def go() -> None:
        request = await find_request(await connect(), approval_id)
        private = required_key(approver, key, "signing needs your private key")
        decision = make_decision(request, approver, approve=not reject, reason=reason, key=private)
        typer.echo(json.dumps(decision.model_dump(mode="json")))

    run(go())
