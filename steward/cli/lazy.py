"""A command group that lists its commands without importing them.

`steward --help` should not wait for the Temporal SDK, pydantic and litellm to import, and
`steward pending` should import what `pending` uses, not what `eval` does. So the group
knows each command by name, by the first paragraph of its help and by where it lives;
`--help` lists that, and only the command actually run is imported and converted, as
Typer converts a command registered with `app.command` or `app.add_typer`. A test loads
every command and checks that the help listed here is still its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    """One command of the group, known without importing it."""

    name: str
    target: str
    """`module:attribute`: a command function, or a `typer.Typer` of subcommands."""
    help: str
    """The first paragraph of the command's own help: all `steward --help` shows of it."""


class Listed(TyperCommand):
    """A command as the group's help lists it, until it is run (see LazyGroup)."""

    def __init__(self, entry: LazyCommand, **attrs: Any) -> None:
        super().__init__(entry.name, help=entry.help, **attrs)
        self.entry = entry


class LazyGroup(TyperGroup):
    """A TyperGroup whose `lazy_commands` are imported only when one of them runs.

    Until then each is a `Listed` placeholder in `commands`, so help, completion and
    Typer's "did you mean" read them as they would read the real ones.
    """

    lazy_commands: ClassVar[Sequence[LazyCommand]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for entry in self.lazy_commands:
            self.commands[entry.name] = Listed(entry, rich_markup_mode=self.rich_markup_mode)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """The command `args` name, imported if it was only listed so far."""
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, Listed):
            command = self.load(command.entry.name)
        return name, command, rest

    def load(self, name: str) -> Any:
        """Import command `name` and convert it with Typer, once; the real click command."""
        command = self.commands[name]
        if not isinstance(command, Listed):
            return command
        module, _, attribute = command.entry.target.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        # Converted inside a Typer of the same settings, so the command is the one that
        # registering it on the app would have made.
        holder = typer.Typer(
            rich_markup_mode=self.rich_markup_mode, suggest_commands=self.suggest_commands
        )
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
        else:
            holder.command(name)(target)
        loaded = typer.main.get_group(holder).commands[name]
        self.commands[name] = loaded
        return loaded
