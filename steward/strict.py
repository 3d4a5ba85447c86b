"""The base every Steward payload and config model shares, and how their errors read.

`Strict` refuses unknown fields and non-JSON numbers, so what a client sends is exactly
what arrives, and a misspelt key in steward.yaml is an error rather than a default
silently kept; `problems` words a validation error as `field: what was expected`. Kept
apart, importing nothing of Steward's, so every module (payloads, questions, blob
references, guardrails, config) builds on the same base.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)
from pydantic.fields import FieldInfo


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


def is_tag(field: FieldInfo) -> bool:
    """A tagged union's tag: one literal value, given as the default (`kind: Literal["pii"]
    = "pii"`).
    """
    return (
        get_origin(field.annotation) is Literal
        and len(get_args(field.annotation)) == 1
        and not field.is_required()
    )


class Strict(BaseModel):
    """Base for payloads and config sections: unknown fields are an error, not dropped."""

    # Infinity and NaN would pass validation, then travel as JSON null: refuse them here.
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


class Tagged(Strict):
    """Base for a member of a tagged union (`kind: Literal["pii"] = "pii"`).

    Payloads travel without the fields left at their defaults (`steward.plugin`'s
    converter), but a tagged union is read back by its tag: a `Tagged` model writes its
    tag always. Only tagged models pay for that (a serializer in Python, per instance).
    """

    _tags: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._tags = tuple(name for name, field in cls.model_fields.items() if is_tag(field))

    @model_serializer(mode="wrap")
    def _keep_tags(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if info.exclude_defaults:
            for name in self._tags:
                data.setdefault(name, getattr(self, name))
        return data
