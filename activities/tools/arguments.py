"""Tool arguments checked again where the tool runs, and against an MCP tool's schema.

Workflows validate a call's arguments against the registry's model before the policy sees
them; the activity validates once more, because an activity can be started by any client
with any payload. A bad argument is a non-retryable error that names the field.

An MCP tool's arguments are checked against the JSON schema its server described. That
schema is the server's word, not ours, so a broken one (not a schema, a `$ref` that points
nowhere or at itself) is reported as a problem like any other, never raised: the check runs
inside a workflow, where an exception would fail the workflow task on every retry.
"""

from __future__ import annotations

from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ValidationError
from referencing.exceptions import Unresolvable

from steward.errors import INVALID_TOOL_ARGUMENTS, application_error
from steward.models import ToolInvocation, problems

Args = TypeVar("Args", bound=BaseModel)

SCHEMA = "the tool's input schema"
"""Where a problem with the server's schema itself is, for the model and the trace."""

MAX_PROBLEM_CHARS = 300
"""A problem quotes the value it is about; a long value is cut, the problem stays readable."""


def parse_arguments(model: type[Args], invocation: ToolInvocation) -> Args:
    """The invocation's arguments as `model`, or a non-retryable InvalidToolArguments."""
    try:
        return model.model_validate(invocation.call.arguments)
    except ValidationError as err:
        raise application_error(
            INVALID_TOOL_ARGUMENTS,
            f"{invocation.call.tool} arguments invalid: {problems(err, 'arguments')}",
        ) from None


def schema_problems(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """Why `arguments` do not fit an MCP tool's input schema, as `field: problem`; [] if
    they fit. Deterministic and never raising, so workflows may call it.
    """
    try:
        Draft202012Validator.check_schema(schema)
        errors = list(Draft202012Validator(schema).iter_errors(arguments))
    except SchemaError as err:
        where = "/".join(str(part) for part in err.absolute_path) or "top level"
        return [f"{SCHEMA} (at {where}): not a valid JSON schema: {_cut(err.message)}"]
    except Unresolvable as err:
        return [f"{SCHEMA}: a reference in it resolves nowhere ({_cut(err)})"]
    except RecursionError:
        return [f"{SCHEMA}: it refers to itself without end"]
    return [
        f"{'.'.join(str(part) for part in error.absolute_path) or 'arguments'}: "
        f"{_cut(error.message)}"
        for error in errors
    ]


def _cut(problem: object) -> str:
    text = str(problem)
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 1] + "…"
