"""The base every Steward payload and config model shares, and how their errors read.

`Strict` refuses unknown fields and non-JSON numbers, so what a client sends is exactly
what arrives, and a misspelt key in steward.yaml is an error rather than a default
silently kept; `problems` words a validation error as `field: what was expected`. Kept
apart, importing nothing of Steward's, so every module (payloads, questions, blob
references, guardrails, config) builds on the same base.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError


def problems(err: ValidationError, whole: str) -> str:
    """A validation error as `field: what was expected`, one per problem.

    `whole` names the payload itself when a problem is not in one field.
    """
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}" for e in err.errors()
    )


J = TypeVar("J")


def finite_json(value: J) -> J:
    """`value` unchanged if it is plain JSON; infinities and NaN are refused.

    Python's json reads `Infinity` and `NaN`, but the data converter writes them as null,
    so a payload holding one would not be the payload that arrives (and a digest over it
    would not match). Free-form fields (tool arguments, MCP schemas) are checked with this.
    """
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            raise ValueError("Infinity and NaN are not JSON numbers")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return value


class Strict(BaseModel):
    """Base for payloads and config sections: unknown fields are an error, not dropped."""

    # Infinity and NaN would pass validation, then travel as JSON null: refuse them here.
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)
