"""`steward --help` lists every command without importing it, and shows what it showed when
every command was imported up front: the same names, the same help, the same commands
once they run.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from steward.cli import COMMANDS, app, select_environment
from steward.cli.lazy import LazyCommand, LazyGroup, Listed

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()

HEAVY = (
    "temporalio",
    "litellm",
    "llama_cpp",
    "qdrant_client",
    "pydantic",
    "httpx",
    "cryptography",
    "yaml",
    "uvicorn",
    "starlette",
    "jinja2",
    "steward.models",
    "steward.payloads",
    "steward.config",
    "steward.runs",
    "steward.devserver",
    "workflows",
    "activities",
    "workers",
    "evals",
)
"""Packages and modules that take long to import (or pull in ones that do)."""


def imported_by(*args: str) -> set[str]:
    """The heavy modules in sys.modules after `steward ARGS` ran in a fresh interpreter."""
    probe = (
        "import json, sys\n"
        "from steward.cli import app\n"
        "try:\n"
        f"    app({list(args)!r}, prog_name='steward')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules = json.loads(done.stdout.splitlines()[-1])
    return {m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY)}


def test_help_imports_nothing_heavy() -> None:
    assert imported_by("--help") == set()


def test_a_command_s_help_imports_only_that_command() -> None:
    # Typer converts option values with pydantic TypeAdapters, so parsing the group's
    # `--env` (before any subcommand) imports pydantic itself; Steward's models stay out.
    heavy = imported_by("pending", "--help")
    assert {m for m in heavy if m.split(".")[0] != "pydantic"} == set()


def eager_app() -> typer.Typer:
    """`steward` as it was built before its commands were lazy: every one registered."""
    eager = typer.Typer(
        help=app.info.help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    eager.callback()(select_environment)
    for entry in COMMANDS:
        module, _, attribute = entry.target.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            eager.add_typer(target, name=entry.name)
        else:
            eager.command(entry.name)(target)
    return eager


def test_the_listing_is_what_every_command_says_of_itself() -> None:
    listed = runner.invoke(app, ["--help"])
    assert listed.exit_code == 0, listed.output
    assert listed.output == runner.invoke(eager_app(), ["--help"]).output


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda entry: entry.name)
def test_every_listed_command_is_a_real_command_with_that_help(entry: LazyCommand) -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    assert isinstance(group.get_command(typer.Context(group), entry.name), Listed)
    command = group.load(entry.name)
    assert not isinstance(command, Listed)
    assert command.name == entry.name
    assert (command.help or "").split("\n\n")[0] == entry.help
    own = runner.invoke(app, [entry.name, "--help"])
    assert own.exit_code == 0, own.output
    assert own.output == runner.invoke(eager_app(), [entry.name, "--help"]).output


def test_a_mistyped_command_still_gets_a_suggestion() -> None:
    result = runner.invoke(app, ["pendng"])
    assert result.exit_code == 2
    assert "Did you mean 'pending'?" in result.output
