"""Strategies for the fuzz tests: arbitrary JSON, nasty values, mutations of valid documents,
and valid-typed payloads (run requests, profiles, tool specs, approval rules, budgets).

A mutated document remembers where it was changed, so a test can check that a refusal
names that place and not some other field.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

from hypothesis import strategies as st

from steward.config import load_config
from steward.models import MAX_WAIT_SECONDS, ApprovalDecision, RiskClass, finite_json
from steward.tools import activity_tools

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "examples" / "steward.yaml"
TICKET = (REPO / "examples" / "tickets" / "late-delivery.txt").read_text(encoding="utf-8")

Location: TypeAlias = tuple[str | int, ...]
"""Where in a document something is: keys and list indexes from the top."""

# --- arbitrary values ------------------------------------------------------------------

SPECIAL_FLOATS = (math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324)
SPECIAL_INTS = (0, -1, 2**31, 2**63, 2**64 + 1, -(2**63) - 1, 10**30)
SPECIAL_TEXTS = (
    "",
    " ",
    "\x00",
    "\t\n",
    "\u202e\u200b",  # right-to-left override, zero-width space
    "é" * 3,
    "日本語",
    "🙂",
    "null",
    "true",
    "NaN",
    "../../etc/passwd",
    "a@b",
    '{"request_id": 1}',
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(SPECIAL_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_FLOATS),
    st.text(max_size=20),
    st.sampled_from(SPECIAL_TEXTS),
)

huge_texts = st.builds(
    lambda unit, size: (unit * size)[:size],
    st.sampled_from(["a", "é", "🙂", "\x00", " ", "ab/"]),
    st.sampled_from([201, 301, 321, 501, 2_001, 2_049, 100_001, 1_000_001]),
)
"""Strings just past the length limits payloads declare, in one- to four-byte characters."""

json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)
"""Anything JSON can carry (and NaN and infinities, which Python's JSON also writes)."""

nasty_values: st.SearchStrategy[Any] = st.one_of(json_values, huge_texts)

long_texts = huge_texts.filter(lambda text: len(text) < 3_000)
"""Strings past the shorter limits only, for documents that are slow to write and read."""


def deep_nesting(depth: int) -> Any:
    """A list nested `depth` levels deep (recursion limits of parsers and validators)."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


# --- mutations -------------------------------------------------------------------------


def locations(value: Any, prefix: Location = ()) -> Iterator[Location]:
    """Every place in a JSON document below its root."""
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        yield (*prefix, key)
        yield from locations(child, (*prefix, key))


def _container(document: Any, location: Location) -> Any:
    for key in location[:-1]:
        document = document[key]
    return document


@st.composite
def mutated(
    draw: st.DrawFn,
    documents: st.SearchStrategy[Any],
    max_changes: int = 3,
    values: st.SearchStrategy[Any] = nasty_values,
) -> tuple[Any, list[Location]]:
    """A valid document with one to `max_changes` changes, and where each change is.

    A change drops a field or a list item, replaces a value with an arbitrary or nasty one,
    or adds an unknown field to an object.
    """
    document = copy.deepcopy(draw(documents))
    changed: list[Location] = []
    for _ in range(draw(st.integers(1, max_changes))):
        places = list(locations(document))
        if not places:
            break
        where = draw(st.sampled_from(places))
        parent = _container(document, where)
        action = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
        target = parent[where[-1]]
        if action == "add" and isinstance(target, dict):
            key = draw(st.text(min_size=1, max_size=12))
            if key not in target:
                target[key] = draw(json_values)
                changed.append((*where, key))
            continue
        if action == "drop":
            if isinstance(parent, list):
                parent.pop(where[-1])  # type: ignore[arg-type]
                changed.append(where[:-1])  # later items moved: the list itself changed
            else:
                del parent[where[-1]]
                changed.append(where)
            continue
        parent[where[-1]] = draw(values)
        changed.append(where)
    return document, changed


def related(location: Location, changes: list[Location]) -> bool:
    """Whether `location` is a changed place, inside one, or one of its containers."""
    return any(
        location[: len(change)] == change or change[: len(location)] == location
        for change in changes
    )


# --- valid payloads --------------------------------------------------------------------

names = st.text(min_size=1, max_size=24)
identifiers = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)


def plain_json(value: Any) -> bool:
    """Whether `value` holds no Infinity or NaN (which payloads refuse)."""
    try:
        finite_json(value)
    except ValueError:
        return False
    return True


def positive_floats(*, bounded: bool) -> st.SearchStrategy[float]:
    """Floats above zero: up to a day when bounded, else up to the largest a payload
    accepts (a year: deadlines and costs are bounded; tests past the bounds use their own
    strategies).
    """
    if bounded:
        return st.floats(min_value=0.001, max_value=86_400, allow_nan=False)
    return st.floats(min_value=0, max_value=MAX_WAIT_SECONDS, exclude_min=True, allow_nan=False)


def positive_ints(*, bounded: bool) -> st.SearchStrategy[int]:
    """Ints from one: up to a million when bounded, else up to the payloads' largest limit
    shared by every count (a billion model calls).
    """
    if bounded:
        return st.integers(1, 1_000_000)
    return st.integers(1, 10**9)


@st.composite
def approval_rules(draw: st.DrawFn, *, bounded: bool = True) -> dict[str, Any]:
    """A valid ApprovalRule, as JSON."""
    approvers = draw(st.lists(names, min_size=1, max_size=4))
    escalation = draw(
        st.none()
        | st.fixed_dictionaries(
            {
                "approvers": st.lists(names, min_size=1, max_size=3),
                "timeout_seconds": positive_floats(bounded=bounded),
            }
        )
    )
    return {
        "approvers": approvers,
        "timeout_seconds": draw(positive_floats(bounded=bounded)),
        "required": draw(st.integers(1, len(set(approvers)))),
        "escalation": escalation,
        "signed": draw(st.booleans()),
    }


json_schemas: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({"type": "object"}),
    st.just(
        {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 50}, "n": {"type": "integer"}},
            "required": ["text"],
            "additionalProperties": False,
        }
    ),
    st.dictionaries(st.text(max_size=10), json_values, max_size=4),
)
"""MCP input schemas: sensible ones, and whatever a server might send."""


@st.composite
def tool_specs(draw: st.DrawFn, *, bounded: bool = True) -> dict[str, Any]:
    """A valid ToolSpec, as JSON: a registered tool, an MCP tool, or an unknown name."""
    kind = draw(st.sampled_from(["registered", "mcp", "unknown"]))
    server = draw(identifiers) if kind == "mcp" else None
    if kind == "registered":
        name = draw(st.sampled_from(sorted(t.name for t in activity_tools())))
    elif server is not None:
        name = f"{server}.{draw(identifiers)}"
    else:
        name = draw(names)
    return {
        "name": name,
        "description": draw(st.text(max_size=40)),
        "risk": draw(st.sampled_from([risk.value for risk in RiskClass])),
        "scopes": draw(st.lists(st.text(max_size=10), max_size=3)),
        "privileged": draw(st.booleans()),
        "side_effects": draw(st.booleans()),
        "decision": draw(st.sampled_from([None, "allow", "approve", "deny"])),
        "approval": draw(st.none() | approval_rules(bounded=bounded)),
        "max_calls_per_run": draw(st.none() | st.integers(1, 5)),
        "mcp_server": server,
        "input_schema": draw(st.none() | json_schemas.filter(plain_json)) if server else None,
        "timeout_seconds": draw(st.floats(min_value=0.001, max_value=3600, allow_nan=False)),
    }


@st.composite
def budgets(draw: st.DrawFn, *, bounded: bool = True) -> dict[str, Any]:
    """A valid Budget, as JSON."""
    on_exceed = draw(st.sampled_from(["stop", "approve"]))
    return {
        "max_cost_usd": draw(st.none() | positive_floats(bounded=bounded)),
        "max_tokens": draw(st.none() | positive_ints(bounded=bounded)),
        "max_model_calls": draw(st.none() | positive_ints(bounded=bounded)),
        "on_exceed": on_exceed,
        "approval": draw(approval_rules(bounded=bounded)) if on_exceed == "approve" else None,
    }


TIER_NAMES = st.sampled_from(["fast", "strong", "medium", "ghost"])


@st.composite
def profiles(
    draw: st.DrawFn, *, bounded: bool = True, tools: bool = True, kind: str | None = None
) -> dict[str, Any]:
    """A valid AgentProfile, as JSON; tier names may or may not be configured ones."""
    tier_order = draw(st.lists(TIER_NAMES, max_size=3, unique=True))
    return {
        "name": draw(names),
        "kind": kind or draw(st.sampled_from(["playbook", "agent"])),
        "description": draw(st.text(max_size=40)),
        "instructions": draw(st.text(max_size=80)),
        "tools": draw(st.lists(tool_specs(bounded=bounded), max_size=4)) if tools else [],
        "tiers": draw(st.dictionaries(st.sampled_from(["plan", "classify", "draft"]), TIER_NAMES)),
        "max_turns": draw(st.integers(1, 100 if not bounded else 3)),
        "tier_order": tier_order,
        "deployments": {tier: ["fake/queued"] for tier in tier_order},
        "budget": draw(budgets(bounded=bounded)),
    }


TARGETS = st.one_of(
    st.sampled_from(["support-reply", "helpdesk", "researcher"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,30}", fullmatch=True),
)


@st.composite
def run_requests(draw: st.DrawFn, *, bounded: bool = True) -> dict[str, Any]:
    """A valid RunRequest, as JSON: a target (configured or not), a task, who asks."""
    text = draw(st.one_of(st.just(TICKET), st.text(min_size=1, max_size=200), huge_texts))
    request: dict[str, Any] = {
        "target": draw(TARGETS),
        "input": text if text.strip() and len(text) <= 1_000_000 else f"task {text[:100]}",
        "principal": draw(st.text(min_size=1, max_size=200)),
    }
    if draw(st.booleans()):
        budget = draw(budgets(bounded=bounded))
        request["budget_cap"] = {
            key: budget[key] for key in ("max_cost_usd", "max_tokens", "max_model_calls")
        }
    return request


def example_requests() -> list[dict[str, Any]]:
    """The RunRequests the CLI builds for the example config's agents."""
    config = load_config(EXAMPLE_CONFIG)
    return [
        {"target": name, "input": TICKET, "principal": "demo-user"}
        for name in sorted(config.agents)
    ]


DECISION = ApprovalDecision(
    request_id="support-reply-1a2b3c4d5e:1",
    args_digest="3f9c0e1d2b4a5968",
    approver="demo-approver",
    approve=True,
    reason="checked the draft",
).model_dump(mode="json")
"""The decision docs/approvals.md shows for the Temporal CLI and UI, with a shorter id."""


def as_json_text(value: Any) -> str:
    """`value` as the JSON a client would send (NaN and infinities as Python writes them)."""
    return json.dumps(value)
