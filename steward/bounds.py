"""The bounded types a steward.yaml setting and the payload it becomes both declare.

A limit is checked twice: when steward.yaml is read (`steward.config`) and when the
profile a run records is built from it (`steward.payloads`). Declared once here, the two
cannot disagree, so a value the file accepts is never refused as the run starts, and a
bound raised for one is raised for both. Defaults and descriptions stay with each field,
where they may differ (an override's default is "unset"); tests/test_config_payloads.py
checks that the fields a config class and its payload share agree in type, bounds and,
where the value is copied as is, default.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

MAX_WAIT_SECONDS = 366 * 86400
"""Longest approval deadline: a year. Much more overflows the date a deadline falls on."""

MAX_RETRY_SECONDS = 7 * 86400
"""Longest a tool call may keep retrying: a week."""

MAX_TURNS = 100_000
DEFAULT_CONTEXT_CHARS = 200_000

# --- agents --------------------------------------------------------------------------

AgentKind = Literal["playbook", "agent"]
MaxTurns = Annotated[int, Field(ge=1, le=MAX_TURNS)]
ContextChars = Annotated[
    int,
    Field(
        ge=1_000,
        le=10_000_000,
        description="most characters of conversation sent to the model each turn",
    ),
]
MaxParallel = Annotated[int, Field(ge=1, le=16)]

# --- budgets -------------------------------------------------------------------------

CostLimit = Annotated[float, Field(gt=0, le=1e9)]
TokenLimit = Annotated[int, Field(gt=0, le=10**15)]
CallLimit = Annotated[int, Field(gt=0, le=10**9)]
OnExceed = Literal["stop", "approve"]

# --- approvals -----------------------------------------------------------------------

ApprovalWait = Annotated[float, Field(gt=0, le=MAX_WAIT_SECONDS)]
ApprovalsNeeded = Annotated[int, Field(ge=1)]

# --- tools ---------------------------------------------------------------------------

ToolDecision = Literal["allow", "approve", "deny"]
ToolTimeout = Annotated[float, Field(gt=0, le=3600)]
RetryWindow = Annotated[float, Field(gt=0, le=MAX_RETRY_SECONDS)]
CallsPerRun = Annotated[int, Field(ge=1)]
