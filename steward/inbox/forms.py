"""A waiting call's arguments as form fields, and an approver's edit back as arguments.

The fields come from the tool's argument schema (a built-in tool's pydantic model), one
per property, in the schema's order; arguments the schema does not name (all of an MCP
tool's, whose schema only its server knows) still get a field each, so nothing the run
would do is hidden. A string
is a text field when its schema keeps it short or patterned (a subject, an address),
else a textarea; anything else is edited as JSON.
Fields the tool locks (an email's `to`) are read-only, and their submitted values are
ignored: the original is sent back, and the gate refuses a change to them anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from steward import tools
from steward.models import ApprovalRequest
from steward.runs import RunError

FIELD_PREFIX = "arg."
SHORT_TEXT = 1000
"""A string whose schema caps it at this many characters (a subject, an address) is one line."""


@dataclass(frozen=True)
class FormField:
    """One argument as the form shows it."""

    name: str
    value: str
    multiline: bool
    locked: bool
    as_json: bool
    description: str = ""

    @property
    def input_name(self) -> str:
        """The form field's name."""
        return FIELD_PREFIX + self.name


def tool_schema(tool: str) -> dict[str, Any]:
    """The JSON schema of a built-in tool's arguments; empty for any other tool."""
    entry = tools.find(tool)
    return entry.parameters() if entry is not None else {}


def fields(request: ApprovalRequest, schema: dict[str, Any]) -> list[FormField]:
    """The form's fields for `request`'s arguments."""
    properties: dict[str, Any] = dict(schema.get("properties") or {})
    names = [name for name in properties if name in request.arguments]
    names += [name for name in request.arguments if name not in properties]
    shown = []
    for name in names:
        value = request.arguments[name]
        prop = properties.get(name) or {}
        as_json = not isinstance(value, str)
        text = json.dumps(value, indent=2, ensure_ascii=False) if as_json else value
        limit = prop.get("maxLength")
        one_line = "pattern" in prop or (isinstance(limit, int) and limit <= SHORT_TEXT)
        multiline = as_json or "\n" in text or not one_line
        shown.append(
            FormField(
                name=name,
                value=text,
                multiline=multiline,
                locked=name in request.locked,
                as_json=as_json,
                description=str(prop.get("description") or ""),
            )
        )
    return shown


def edited_arguments(request: ApprovalRequest, form: Mapping[str, str]) -> dict[str, Any] | None:
    """The arguments as the approver left them; None when nothing changed. RunError naming
    a field whose JSON does not parse.
    """
    arguments = dict(request.arguments)
    for name, original in request.arguments.items():
        given = form.get(FIELD_PREFIX + name)
        if given is None or name in request.locked:
            continue
        if isinstance(original, str):
            # Browsers send every line break as CRLF: one left as it was is no edit.
            if given.replace("\r\n", "\n") != original.replace("\r\n", "\n"):
                arguments[name] = given.replace("\r\n", "\n")
            continue
        try:
            arguments[name] = json.loads(given)
        except json.JSONDecodeError as err:
            raise RunError(f"{name}: your edit is not JSON ({err.msg})") from None
    return None if arguments == request.arguments else arguments
