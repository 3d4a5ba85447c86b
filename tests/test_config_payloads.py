"""A steward.yaml section and the payload it becomes agree on every field they share.

The workers read the config classes (steward.config) from their file, and profile
resolution copies the values into the payloads a run records (steward.payloads). A bound on
one side only would let the file accept what a run then refuses, or the reverse. Each
field the two share is compared here by its JSON schema (type, bounds, allowed values)
and, where the value is copied unchanged, by its default; every other field must be named
as belonging to one side, so a field added to one class and not the other fails here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel, Field

from steward.config import (
    AgentConfig,
    ApprovalConfig,
    BudgetConfig,
    EscalationConfig,
    MCPToolConfig,
    ToolConfig,
)
from steward.payloads import AgentProfile, ApprovalRule, Budget, Escalation, ToolSpec


@dataclass(frozen=True)
class Pair:
    """A config class, the payload it becomes, and how their fields correspond."""

    config: type[BaseModel]
    payload: type[BaseModel]
    renamed: dict[str, str] = field(default_factory=dict)
    """config field -> the payload field it is copied into under another name"""
    resolved: frozenset[str] = frozenset()
    """config fields turned into something else (a name into a spec, a group into people)"""
    config_only: frozenset[str] = frozenset()
    payload_only: frozenset[str] = frozenset()
    copied: bool = True
    """values are copied as they are, so defaults must match too (not for overrides)"""

    def shared(self) -> dict[str, str]:
        names = set(self.config.model_fields) - self.resolved - self.config_only
        return {name: self.renamed.get(name, name) for name in sorted(names)}

    def __str__(self) -> str:
        return f"{self.config.__name__} -> {self.payload.__name__}"


PAIRS = [
    Pair(
        AgentConfig,
        AgentProfile,
        renamed={"input_guardrails": "input_guardrail"},
        resolved=frozenset({"tools", "budget", "specialists"}),
        config_only=frozenset({"model_tiers"}),
        payload_only=frozenset({"name", "tier_order", "deployments"}),
    ),
    Pair(BudgetConfig, Budget, resolved=frozenset({"approval"})),
    Pair(
        ApprovalConfig,
        ApprovalRule,
        resolved=frozenset({"group", "escalate"}),
        payload_only=frozenset({"approvers", "escalation"}),
    ),
    Pair(
        EscalationConfig,
        Escalation,
        resolved=frozenset({"group"}),
        payload_only=frozenset({"approvers"}),
    ),
    Pair(
        ToolConfig,
        ToolSpec,
        resolved=frozenset({"approval"}),
        payload_only=frozenset(
            {
                "name",
                "description",
                "scopes",
                "side_effects",
                "mcp_server",
                "input_schema",
                "locked",
            }
        ),
        copied=False,
    ),
    Pair(
        MCPToolConfig,
        ToolSpec,
        resolved=frozenset({"approval"}),
        payload_only=frozenset(
            {"name", "scopes", "side_effects", "mcp_server", "input_schema", "locked"}
        ),
        copied=False,
    ),
]


def value_schema(model: type[BaseModel], name: str, *, with_default: bool) -> Any:
    """What a field accepts, as JSON schema: without titles, descriptions and `null`.

    An override is optional where the payload's field is not (unset: keep the default),
    so `null` is left out of both sides.
    """
    whole = model.model_json_schema()
    if "$ref" in whole:  # a recursive model (a profile holds its specialists' profiles)
        whole = whole["$defs"][whole["$ref"].rsplit("/", 1)[1]]
    schema = dict(whole["properties"][name])
    schema.pop("title", None)
    schema.pop("description", None)
    if not with_default:
        schema.pop("default", None)
    options = [o for o in schema.pop("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    return schema


def drift(pair: Pair) -> list[str]:
    """Every way the two classes of `pair` disagree, worded for a failing assertion."""
    problems = []
    shared = pair.shared()
    unplaced = set(pair.payload.model_fields) - set(shared.values()) - pair.payload_only
    unplaced -= {pair.renamed.get(name, name) for name in pair.resolved}
    problems += [f"{pair.payload.__name__}.{name}: in neither list" for name in sorted(unplaced)]
    for name, target in shared.items():
        if target not in pair.payload.model_fields:
            problems.append(f"{pair.config.__name__}.{name}: no {target} in the payload")
            continue
        ours = value_schema(pair.config, name, with_default=pair.copied)
        theirs = value_schema(pair.payload, target, with_default=pair.copied)
        if ours != theirs:
            problems.append(f"{name}: config {ours} != payload {theirs}")
    return problems


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_a_config_class_and_its_payload_share_their_fields(pair: Pair) -> None:
    assert drift(pair) == []


def test_drift_is_found() -> None:
    class Configured(BaseModel):
        turns: int = Field(default=8, ge=1, le=100)
        mode: str = "stop"
        extra_setting: bool = False

    class Recorded(BaseModel):
        turns: int = Field(default=8, ge=1, le=1000)
        mode: str = "go"
        new_field: int = 0

    found = drift(Pair(Configured, Recorded))

    assert len(found) == 4, found
    assert any(p.startswith("turns:") and "1000" in p for p in found)
    assert any(p.startswith("mode:") for p in found)
    assert "Configured.extra_setting: no extra_setting in the payload" in found
    assert "Recorded.new_field: in neither list" in found
