"""Tool arguments checked again where the tool runs.

Workflows validate a call's arguments against the registry's model before the policy sees
them; the activity validates once more, because an activity can be started by any client
with any payload. A bad argument is a non-retryable error that names the field.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from steward.models import ToolInvocation, problems

Args = TypeVar("Args", bound=BaseModel)


def parse_arguments(model: type[Args], invocation: ToolInvocation) -> Args:
    """The invocation's arguments as `model`, or a non-retryable InvalidToolArguments."""
    try:
        return model.model_validate(invocation.call.arguments)
    except ValidationError as err:
        raise ApplicationError(
            f"{invocation.call.tool} arguments invalid: {problems(err, 'arguments')}",
            type="InvalidToolArguments",
            non_retryable=True,
        ) from None
