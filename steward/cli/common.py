"""Helpers every command shares: run a coroutine, turn known errors into one clear line."""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from temporalio.service import RPCError

from steward import approval_view, devserver
from steward.codec import CodecError
from steward.config import ConfigError
from steward.runs import RunError

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known failures print `error: ...` and exit 2."""
    try:
        return asyncio.run(coro)
    except (RunError, ConfigError, CodecError) as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    except RPCError as err:
        typer.secho(f"error: Temporal said: {err.message}", fg="red", err=True)
        raise typer.Exit(2) from None
    except RuntimeError as err:
        if "connect" not in str(err).lower():
            raise
        typer.secho(
            f"error: cannot reach Temporal ({err}). Start the embedded server with "
            "`steward dev up`, or set TEMPORAL_ADDRESS.",
            fg="red",
            err=True,
        )
        raise typer.Exit(2) from None


def read_input(value: str) -> str:
    """INPUT as given, `@FILE` for a file's contents, or `-` for standard input."""
    if value == "-":
        return typer.get_text_stream("stdin").read()
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {path}")
        return path.read_text(encoding="utf-8")
    return value


def whoami() -> str:
    """The default principal: $STEWARD_USER, else the login name."""
    return os.environ.get("STEWARD_USER") or getpass.getuser()


UI_URL_VARIABLE = "STEWARD_UI_URL"


def ui_base() -> str | None:
    """The Temporal UI's address: $STEWARD_UI_URL, else the embedded server's when in use."""
    if os.environ.get(UI_URL_VARIABLE):
        return os.environ[UI_URL_VARIABLE].rstrip("/")
    if os.environ.get("TEMPORAL_ADDRESS"):
        return None
    server = devserver.status()
    return server.ui_url if server is not None else None


def ui_link(workflow_id: str, namespace: str = "default") -> str | None:
    """A Temporal UI link to a workflow, when the UI's address is known."""
    base = ui_base()
    return approval_view.ui_run_url(base, namespace, workflow_id) if base else None
