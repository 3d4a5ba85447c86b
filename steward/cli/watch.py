"""`steward watch WORKFLOW_ID` (and `steward run --follow`): print a run's events live.

Model answers appear as they stream; tool calls, approvals (with the command that decides
them), questions and the cost between them. When a model call is retried after it had
already streamed part of an answer, the partial text is withdrawn: erased on a terminal,
marked as discarded in a log, never shown twice (`steward.events.Transcript`).
"""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from steward.cli.common import run
from steward.client import connect

if TYPE_CHECKING:
    from temporalio.client import Client

    from steward.events import Shown

ERASE_BELOW: str = "\x1b[J"


class Screen:
    """Where a watcher's output goes. On a terminal, withdrawn text is erased in place."""

    def __init__(self, out: TextIO, *, tty: bool | None = None, width: int | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.width = width or shutil.get_terminal_size((100, 24)).columns
        self.column = 0
        self._rows = 0  # rows the current answer text has moved down since it began

    def show(self, shown: Shown) -> None:
        """Print one thing a Transcript said to show."""
        if shown.kind == "text":
            self._text(shown.text)
        elif shown.kind == "retract":
            self._retract()
        else:
            self._line(shown.text)
        self.out.flush()

    def _text(self, text: str) -> None:
        self.out.write(text)
        for char in text:
            if char == "\n" or self.column + 1 >= self.width:
                self._rows += 1
                self.column = 0
            else:
                self.column += 1

    def _retract(self) -> None:
        if self.tty:
            # Back to where the withdrawn text began, then clear everything below it.
            up = f"\x1b[{self._rows}A" if self._rows else ""
            self.out.write(f"\r{up}{ERASE_BELOW}")
        elif self.column:
            self.out.write("\n")
        self.column = self._rows = 0

    def _line(self, text: str) -> None:
        if self.column:
            self.out.write("\n")
        self.out.write(text + "\n")
        self.column = self._rows = 0


async def print_events(client: Client, workflow_id: str, out: TextIO) -> str:
    """Print the run's events until it ends; returns the status it ended with."""
    from steward.events import RunFinished, Transcript
    from steward.watch import follow

    transcript = Transcript()
    screen = Screen(out)
    status = ""
    async for event in follow(client, workflow_id):
        for shown in transcript.apply(event):
            screen.show(shown)
        if isinstance(event, RunFinished):
            status = event.status
    return status


def watch_command(
    workflow_id: Annotated[str, typer.Argument(help="the run's workflow id")],
) -> None:
    """Print a run's events as they happen: streamed answers, tools, approvals, cost.

    Watching only reads (by query): it never adds to the run's history.
    """

    async def go() -> None:
        await print_events(await connect(), workflow_id, sys.stdout)

    run(go())
