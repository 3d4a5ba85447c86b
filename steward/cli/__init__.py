"""The `steward` command: thin commands that parse, call the client, and print.

Each command group lives in its own module; this one only assembles them.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from steward.cli import (
    approvals,
    codec,
    costs,
    demo,
    dev,
    history,
    inbox,
    ingest,
    keys,
    models,
    questions,
    runs,
    schedules,
    trace,
    watch,
    worker,
)
from steward.cli.common import StewardGroup
from steward.cli.eval import eval_command
from steward.client import ENVIRONMENT_VARIABLE

app = typer.Typer(
    cls=StewardGroup,
    help="Steward: durable AI workflows on Temporal. Start runs, approve actions, inspect them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def select_environment(
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            envvar=ENVIRONMENT_VARIABLE,
            help="environment from steward.yaml (dev, staging, prod...): its namespace and "
            "overrides apply to every command",
        ),
    ] = None,
) -> None:
    """Steward: durable AI workflows on Temporal. Start runs, approve actions, inspect them."""
    # Set for the whole process, so workers started in it (and their children) agree.
    if env:
        os.environ[ENVIRONMENT_VARIABLE] = env


app.add_typer(dev.app, name="dev")
app.command("run")(runs.run_command)
app.command("status")(runs.status_command)
app.command("watch")(watch.watch_command)
app.command("pending")(approvals.pending_command)
app.command("approve")(approvals.approve_command)
app.command("reject")(approvals.reject_command)
app.command("sign")(keys.sign_command)
app.command("reply")(questions.reply_command)
app.command("worker")(worker.worker_command)
app.command("ingest")(ingest.ingest_command)
app.command("demo")(demo.demo_command)
app.command("models")(models.models_command)
app.command("costs")(costs.costs_command)
app.command("trace")(trace.trace_command)
app.command("replay")(history.replay_command)
app.command("eval")(eval_command)
app.command("codec-server")(codec.codec_server_command)
app.add_typer(history.app, name="history")
app.add_typer(schedules.app, name="schedule")
app.add_typer(keys.app, name="keys")
app.add_typer(inbox.app, name="inbox")


def main() -> None:
    """Entry point of the `steward` script."""
    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    # Exit without interpreter finalization: the Temporal client's native threads can call
    # into Python while it finalizes and crash the process (SIGABRT/SIGSEGV) after the
    # command has already finished and printed its answer, turning a clean exit code into
    # a crash. Everything a command writes is flushed first.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
