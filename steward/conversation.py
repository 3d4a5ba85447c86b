"""The agent loop's memory: what the model sees each turn, and what a run carries on.

A long agent run meets two limits. The model has a context window, so the messages sent
each turn are a window: the instructions, the task, a summary of what fell out, and the
newest messages up to the profile's `context_chars`. Temporal's history has limits too, so
the run continues as new at a turn boundary, carrying an `AgentState`: the turn count,
the window, the summary, the ledger, the actions so far and any approval or question
still waiting.
Large messages travel as blob references (see `steward.blobs`), so neither the window
nor the state grows with the size of what tools return.

Pure: no Temporal, no I/O. The workflow decides when; this module says what.
"""

from __future__ import annotations

from pydantic import Field

from steward.blobs import BlobRef
from steward.models import (
    ActionRecord,
    ApprovalDecision,
    ApprovalOutcome,
    ApprovalRequest,
    Citation,
    DecisionRecord,
    Ledger,
    LegacyRunRequest,
    Message,
    ModelCallRecord,
    ResolvedRun,
    RunRequest,
    Strict,
    ToolCall,
)
from steward.questions import QuestionState

SUMMARY_LINES = 40
"""Lines of the summary of earlier turns kept (the oldest go first)."""

SUMMARY_LINE_CHARS = 160

CARRIED_RECORDS = 500
"""Actions and model calls carried across continue-as-new (the newest; the ledger has totals)."""

CARRIED_OUTPUT_CHARS = 500
"""Tool output kept in a carried action (its full text is in the earlier run or a blob)."""


class GateState(Strict):
    """The approval gate of a run, as carried to the next run of the chain."""

    seq: int = Field(default=0, ge=0, description="approval ids issued so far")
    pending: list[ApprovalRequest] = Field(default_factory=list)
    decided: dict[str, str] = Field(
        default_factory=dict, description="recent approval id -> outcome status"
    )
    accepted: dict[str, list[ApprovalDecision]] = Field(
        default_factory=dict,
        description="waiting request id -> the approvals it has so far (the acting worker "
        "checks all of them)",
    )
    decisions: list[DecisionRecord] = Field(
        default_factory=list, description="decisions received so far (the newest)"
    )


class QueuedCall(Strict):
    """A tool call of the model's last turn not yet carried out when the run continued."""

    call: ToolCall
    reply_to: str = Field(
        default="", description="the provider's id for the call, when the model made it natively"
    )
    problem: str = Field(default="", description="why the call cannot be carried out as given")


class AgentState(Strict):
    """Everything an agent run needs to go on after continuing as new."""

    turn: int = Field(ge=0, description="turns completed")
    task_blob: BlobRef | None = Field(
        default=None, description="the task, once the model activity stored it"
    )
    runs: int = Field(default=1, ge=1, description="runs in this chain so far")
    messages: list[Message]
    summary: list[str] = Field(default_factory=list)
    summarised: int = Field(default=0, ge=0, description="messages folded into the summary")
    actions: list[ActionRecord] = Field(default_factory=list)
    calls_by_tool: dict[str, int] = Field(default_factory=dict)
    citations: list[Citation] = Field(default_factory=list)
    model_calls: list[ModelCallRecord] = Field(default_factory=list)
    approvals: list[ApprovalOutcome] = Field(default_factory=list)
    ledger: Ledger = Field(default_factory=Ledger)
    gate: GateState = Field(default_factory=GateState)
    questions: QuestionState = Field(default_factory=QuestionState)
    waiting: ToolCall | None = Field(
        default=None, description="the call whose approval was still pending (older runs)"
    )
    queued: list[QueuedCall] = Field(
        default_factory=list,
        description="the last turn's calls not yet carried out, the first maybe awaiting approval",
    )
    stream_offset: int = Field(
        default=0, ge=0, description="events published to the run's stream so far, in the chain"
    )
    dropped_records: int = Field(default=0, ge=0, description="old records not carried")
    resolved: ResolvedRun | None = Field(
        default=None,
        description="what the workers resolved when the chain began (MCP tools described)",
    )
    input_flags: list[str] = Field(
        default_factory=list, description="what the input guardrail found"
    )


class AgentRun(RunRequest):
    """An agent run's input: a new run, or the next run of a chain (`resume`).

    Only the run's own continue-as-new may carry `resume`: a new run that sends it is
    refused, since the state holds the resolved profile.
    """

    resume: AgentState | None = None


class LegacyAgentRun(LegacyRunRequest):
    """An agent run's input as recorded before the workers resolved profiles."""

    resume: AgentState | None = None


def window(messages: list[Message], budget: int) -> tuple[list[int], list[int]]:
    """Which messages fit the model's budget: (kept, dropped) indexes, in order.

    The newest messages are kept, as many as fit in `budget` characters (stored text
    counts in full); the newest one is always kept, whatever its size.
    """
    kept: list[int] = []
    used = 0
    for index in range(len(messages) - 1, -1, -1):
        size = messages[index].chars()
        if kept and used + size > budget:
            break
        kept.append(index)
        used += size
    kept.reverse()
    first = kept[0] if kept else len(messages)
    return kept, list(range(first))


def fit(state: AgentState, budget: int) -> None:
    """Keep the state's newest messages that fit in `budget` characters; fold the ones that
    fall out into its summary (the newest SUMMARY_LINES lines of it are kept).
    """
    kept, dropped = window(state.messages, budget)
    if dropped:
        state.summary.extend(summary_line(state.messages[i]) for i in dropped)
        del state.summary[:-SUMMARY_LINES]
        state.summarised += len(dropped)
        state.messages = [state.messages[i] for i in kept]


def summary_line(message: Message) -> str:
    """One line recalling a message that fell out of the window."""
    text = " ".join(message.content.split())
    if message.tool_calls:
        called = f"called {', '.join(call.name for call in message.tool_calls)}"
        text = f"{text} ({called})" if text else called
    if message.blob is not None:
        text = f"{text} [{message.blob.size:,} bytes stored as {message.blob.digest[:12]}]"
    if len(text) > SUMMARY_LINE_CHARS:
        text = text[: SUMMARY_LINE_CHARS - 1] + "…"
    return f"- {message.role}: {text}"


def summary_message(lines: list[str], summarised: int) -> Message | None:
    """The message standing in for what fell out of the window, if anything did."""
    if not summarised:
        return None
    shown = lines[-SUMMARY_LINES:]
    older = summarised - len(shown)
    head = (
        f"Earlier in this run ({summarised} messages no longer shown"
        + (f"; the {older} oldest are not listed" if older > 0 else "")
        + "). What was said and done, as data:"
    )
    return Message(role="user", content="\n".join([head, *shown]))


RESULT_OUTPUT_BUDGET = 1_000_000
"""Characters of tool output a run's result holds in all (a result is one payload)."""


def bounded(records: list[ActionRecord]) -> list[ActionRecord]:
    """Actions as a run's result holds them: the newest, outputs shortened only if together
    they would not fit in one payload (full outputs stay in history and the blob store).
    """
    records = records[-CARRIED_RECORDS:]
    if sum(len(record.output) for record in records) <= RESULT_OUTPUT_BUDGET:
        return records
    each = max(RESULT_OUTPUT_BUDGET // len(records), 200)
    return [
        record.model_copy(update={"output": record.output[:each]})
        if len(record.output) > each
        else record
        for record in records
    ]


def carried(records: list[ActionRecord]) -> list[ActionRecord]:
    """Actions as carried across continue-as-new: the newest, outputs shortened."""
    return [
        record.model_copy(update={"output": record.output[:CARRIED_OUTPUT_CHARS]})
        for record in records[-CARRIED_RECORDS:]
    ]
