"""Helpers every command shares: run a coroutine, read INPUT, the options several commands
take, and the command group that turns every failure a person can fix into one line on
stderr.

`StewardGroup` is the one place failures are printed: whatever `steward.exits.explain`
knows (a bad config, an unknown run, Temporal unreachable, a file that is not text)
prints `error: ...` and exits 2 (the input must change) or 1 (the operation failed).
Commands do not catch errors to print them; anything unexplained is a bug and keeps its
traceback. Typer's own usage errors (a missing argument, an option of the wrong type)
keep Typer's rendering and exit 2.

Every command imports this module, and `steward --help` imports it too, so what it needs
from the rest of Steward (the Temporal SDK and pydantic, through them) it imports where
it is used.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from steward.cli.lazy import LazyGroup

if TYPE_CHECKING:
    from steward.exits import Explained

T = TypeVar("T")


ConfigOption = Annotated[
    str | None, typer.Option("--config", help="steward.yaml to use (default: ./steward.yaml)")
]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key", help="private key file (default: $STEWARD_KEY_FILE, else NAME's in the keys dir)"
    ),
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine (its failures are explained by StewardGroup)."""
    import asyncio

    return asyncio.run(coro)


class StewardGroup(LazyGroup):
    """The `steward` command group: a failure a person can fix leaves as one line."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; print a failure `explain` knows in one line, with its code."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # help, usage errors and exits: Typer's own, and nothing to explain
        except Exception as err:
            from steward.exits import explain

            explained = explain(err)
            if explained is None:
                raise
            fail(explained)


def fail(explained: Explained) -> NoReturn:
    """Print `error: ...` on stderr and exit with the explained code."""
    typer.secho(f"error: {explained.line}", fg="red", err=True)
    raise typer.Exit(explained.code) from None


def read_input(value: str) -> str:
    """INPUT as given, `@FILE` for a file's contents, or `-` for standard input (UTF-8)."""
    if value == "-":
        return _text(typer.get_binary_stream("stdin").read(), "standard input")
    if value.startswith("@"):
        return read_file(Path(value[1:]))
    return value


def read_file(path: Path) -> str:
    """A text file a user named; RunError (exit 2) naming it if it is not one."""
    from steward.runs import RunError

    if not path.is_file():
        raise RunError(f"no such file: {path}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise RunError(f"cannot read {path}: {err.strerror}") from None
    return _text(data, str(path))


def _text(data: bytes, source: str) -> str:
    from steward.runs import RunError

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RunError(
            f"{source} is not UTF-8 text (at byte {err.start}): save it as UTF-8"
        ) from None


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
    from steward import devserver

    server = devserver.status()
    return server.ui_url if server is not None else None


def ui_link(workflow_id: str, namespace: str = "default") -> str | None:
    """A Temporal UI link to a workflow, when the UI's address is known."""
    from steward import approval_view

    base = ui_base()
    return approval_view.ui_run_url(base, namespace, workflow_id) if base else None
