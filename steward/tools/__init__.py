"""The tool catalogue: every tool Steward knows, one entry each (`steward.tools.entry.Tool`).

Everything else is derived from it: the tools and argument schemas a model is offered,
how a workflow checks a call's arguments before the policy sees them, which queue a call
goes to, the activities each worker registers (`workers.build`), what the eval sandbox
records instead of acting (`activities.evals`), and the defaults steward.yaml overrides.

Adding a tool: a module here with its argument model and entry, listed in `_ENTRIES`; its
activity, a method named after the tool on the provider object the entry names; and, for a
new provider, that object built in `workers.build.default_activities`. A config that grants
a tool no worker serves stops the workers from starting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from steward import errors
from steward.models import ModelTool, ToolSpec
from steward.tools.ask_human import ASK
from steward.tools.email import SEND_EMAIL
from steward.tools.entry import Tool
from steward.tools.files import PUBLISH_FILE, WRITE_FILE
from steward.tools.handoff import HAND_OFF
from steward.tools.http_get import HTTP_GET
from steward.tools.search_docs import SEARCH

_ENTRIES: tuple[Tool[Any], ...] = (
    SEND_EMAIL,
    WRITE_FILE,
    PUBLISH_FILE,
    HTTP_GET,
    SEARCH,
    ASK,
    HAND_OFF,
)

CATALOGUE: dict[str, Tool[Any]] = {entry.name: entry for entry in _ENTRIES}
"""Every tool by name. Extended only by `register`, before any worker is built."""


def find(name: str) -> Tool[Any] | None:
    """The tool of that name, or None."""
    return CATALOGUE.get(name)


def with_schemas(offered: Sequence[ModelTool]) -> list[ModelTool]:
    """`offered` with each tool sent by name (no `parameters`) given its catalogue schema.

    A workflow offers the catalogue's tools by name; the model activity reads their
    schemas here, from the code it runs. A name the catalogue does not have is refused:
    offering it any schema would let the model call it blind.
    """
    filled: list[ModelTool] = []
    for tool in offered:
        if tool.parameters is None:
            entry = find(tool.name)
            if entry is None:
                raise errors.application_error(
                    errors.BAD_INPUT,
                    f"tool {tool.name!r} was offered without its argument schema, and this "
                    "worker's tool catalogue has no tool of that name",
                )
            tool = tool.model_copy(update={"parameters": entry.parameters()})
        filled.append(tool)
    return filled


def activity_tools() -> list[Tool[Any]]:
    """The tools a worker runs as activities, in catalogue order."""
    return [entry for entry in CATALOGUE.values() if entry.provider is not None]


def default_specs() -> dict[str, ToolSpec]:
    """The default spec of every tool steward.yaml may grant and override, by name."""
    return {name: entry.spec for name, entry in CATALOGUE.items() if entry.grantable}


def register(entries: Iterable[Tool[Any]]) -> None:
    """Add tools that live outside Steward's own code (a team's, a test's).

    Call it before workers are built, in every process that runs workers or replays their
    histories: workflows look tools up here. A name already taken is refused, so nothing
    can replace a built-in tool's checks.
    """
    for entry in entries:
        if entry.name in CATALOGUE:
            raise ValueError(f"a tool named {entry.name!r} is already in the catalogue")
        CATALOGUE[entry.name] = entry


__all__ = ["CATALOGUE", "Tool", "activity_tools", "default_specs", "find", "register"]
