"""Environments: one steward.yaml for dev, staging and prod.

`environments` maps each name to the Temporal namespace it runs in and a partial
steward.yaml merged over the rest (`merge`). Which environment is in force is the
caller's choice; nothing here reads the process environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from steward.strict import Strict

DEFAULT_NAMESPACE = "default"

# Temporal's namespace name rule: letters, digits, '-', '_' and '.', starting with a letter.
_NAMESPACE_NAME = r"^[A-Za-z][A-Za-z0-9._-]{1,254}$"


class EnvironmentConfig(Strict):
    """One environment: the Temporal namespace it runs in and what differs there.

    `overrides` is a partial steward.yaml deep-merged over the rest of the file: mappings
    merge key by key, anything else (lists, numbers, strings, null) replaces.
    """

    namespace: str = Field(pattern=_NAMESPACE_NAME, description="Temporal namespace")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="partial steward.yaml merged over the rest"
    )

    @field_validator("overrides")
    @classmethod
    def _not_nested(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "environments" in value:
            raise ValueError("environments cannot be overridden per environment")
        return value


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` over `base`: mappings merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = value
    return merged
