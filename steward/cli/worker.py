"""`steward worker`: run Steward's Temporal workers in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from steward import queues


def worker_command(
    role: Annotated[
        str,
        typer.Option(help="default (workflows, model calls), privileged (tools), or all"),
    ] = "all",
    queue: Annotated[str, typer.Option(help="task queue to serve")] = queues.DEFAULT,
    config: Annotated[str | None, typer.Option(help="steward.yaml to use")] = None,
) -> None:
    """Run workers until Ctrl-C. Credentials are read here, from this process's environment."""
    if role not in ("default", "privileged", "all"):
        raise typer.BadParameter("role must be default, privileged or all")
    from steward.codec import CodecError
    from workers.run import main

    args = ["--role", role, "--queue", queue]
    if config:
        args += ["--config", config]
    try:
        main(args)
    except CodecError as err:  # no key ring, or a wrong one: nothing to serve with
        typer.secho(f"error: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
