"""What the catalogue knows of one tool (`Tool`), and the checks shared by its entries.

An entry is pure data and pure functions: workflows read it (inside the sandbox, while
replaying too), so nothing here does I/O or imports what a tool needs to act.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from steward.models import ToolSpec

Args = TypeVar("Args", bound=BaseModel)


@dataclass(frozen=True)
class Tool(Generic[Args]):
    """One tool: its default spec, its arguments, and who runs it.

    `spec` is the default a steward.yaml may override (risk, queue, approval, limits),
    never the arguments or the code. `provider` names which of a worker's activity objects
    runs it (`workers.build.Activities`): that object has an activity method named after
    the tool. A tool without a provider is run by the workflow itself (`ask_human` asks
    durably, `handoff` starts child runs): it has no activity anywhere.
    """

    spec: ToolSpec
    arguments: type[Args]
    provider: str | None
    would: Callable[[Args], str]
    """What an eval's sandbox records the call would have done, from its arguments."""
    grantable: bool = True
    """Whether steward.yaml grants it under an agent's `tools:` (handoff: `specialists:`)."""

    @property
    def name(self) -> str:
        """The name the model calls it by, which is also its activity's name."""
        return self.spec.name

    def checked(self, arguments: dict[str, Any]) -> Args:
        """`arguments` as the tool's model (pydantic's ValidationError if they do not fit)."""
        return self.arguments.model_validate(arguments)

    def normalized(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """`arguments` checked and written as the tool's model writes them (defaults filled,
        values normalised): what a workflow runs and an approver approves.
        """
        written: dict[str, Any] = self.checked(arguments).model_dump()
        return written

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments, as the model is offered it (a copy of its own)."""
        schema: dict[str, Any] = json.loads(_schema_text(self.arguments))
        return schema


@functools.cache
def _schema_text(arguments: type[BaseModel]) -> str:
    """An argument model's JSON schema, as text, made once per process.

    Pydantic builds a schema anew on every call (a fifth of a millisecond each), and every
    run of an agent, and every replay of one, offers its tools; callers parse their own
    copy, so none can change another's.
    """
    return json.dumps(arguments.model_json_schema())


def at_most(value: str, limit: int) -> str:
    """Length limits of tool arguments are checked in validators, not declared as the
    schema's maxLength: the agent's output grammar is built from the schema, and llama.cpp
    expands maxLength into rules per character (a long limit crashes its grammar parser).
    """
    if len(value) > limit:
        raise ValueError(f"{len(value):,} characters; at most {limit:,}")
    return value
