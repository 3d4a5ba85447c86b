"""A run's live events: what `steward watch` and `steward run --follow` print as it happens.

Every run has one typed event stream (Temporal's Workflow Streams, topic `events`). The
workflow publishes what it decides: a model turn starting, the model's whole answer, tool
calls starting and finishing, approvals asked for and decided, questions, the cost so far,
the end. The model activity publishes the answer's text as it streams in (`TextDelta`).

An activity can be retried, or fall back to the tier's next deployment, after it has
already streamed part of an answer. Every delta therefore names its step and its
generation (deployment, attempt), and a watcher shows only the newest generation of each
step: when a newer one starts, the older one's partial text is withdrawn, not appended to.
The workflow's `ModelAnswered` is the answer as recorded in history; a watcher that missed
deltas (or got none: a deployment that does not stream) still shows it, once.
`Transcript` holds exactly that logic, apart from any terminal, so it can be tested.

Pure: no Temporal, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import Field, TypeAdapter

from steward.models import CallPath
from steward.strict import Tagged

TOPIC: Final = "events"
"""The Workflow Streams topic every run publishes its events on."""

EXCERPT_CHARS: Final = 300
"""Longest tool output or answer excerpt an event carries (history has the whole text)."""


class TurnStarted(Tagged):
    """A model call is about to be made for a step (a playbook step, an agent turn)."""

    kind: Literal["turn"] = "turn"
    step: str
    tier: str
    model: str = Field(default="", description="the tier's first deployment")


class TextDelta(Tagged):
    """Text a model call streamed, at `start` in that generation's answer."""

    kind: Literal["text"] = "text"
    step: str
    deployment: int = Field(ge=0)
    attempt: int = Field(ge=1)
    start: int = Field(ge=0, description="where this text begins in the generation's answer")
    text: str


class ModelAnswered(Tagged):
    """A step's model call succeeded: its whole answer, as history records it."""

    kind: Literal["answered"] = "answered"
    step: str
    deployment: int = Field(ge=0)
    attempt: int = Field(ge=1)
    model: str
    path: CallPath
    text: str
    tool_calls: list[str] = Field(default_factory=list, description="the tools it called")


class ToolStarted(Tagged):
    """The run is about to carry out a tool call (the policy and approvals come first)."""

    kind: Literal["tool_started"] = "tool_started"
    call_id: str
    tool: str
    args_digest: str


class ToolFinished(Tagged):
    """What became of a tool call."""

    kind: Literal["tool_finished"] = "tool_finished"
    call_id: str
    tool: str
    decision: str
    outcome: str
    reason: str
    output: str = Field(default="", description=f"its first {EXCERPT_CHARS} characters")


class ApprovalRequested(Tagged):
    """A call waits for a human decision; `command` is how to give it."""

    kind: Literal["approval_requested"] = "approval_requested"
    request_id: str
    tool: str
    args_digest: str
    approvers: list[str]
    deadline: datetime
    command: str


class ApprovalDecided(Tagged):
    """How an approval request ended."""

    kind: Literal["approval_decided"] = "approval_decided"
    request_id: str
    tool: str
    status: str
    approver: str | None = None
    reason: str = ""


class QuestionAsked(Tagged):
    """The run asks a human a question and waits; `command` is how to answer."""

    kind: Literal["question"] = "question"
    question_id: str
    question: str
    deadline: datetime
    command: str


class QuestionAnswered(Tagged):
    """A question got its reply, or its deadline passed."""

    kind: Literal["question_answered"] = "question_answered"
    question_id: str
    status: str
    sender: str = ""


class CostSoFar(Tagged):
    """The run's spend after a model call."""

    kind: Literal["cost"] = "cost"
    model_calls: int
    tokens: int
    cost_usd: float
    unpriced_calls: int = 0


class RunFinished(Tagged):
    """The run ended with a result."""

    kind: Literal["finished"] = "finished"
    status: str
    answer: str = Field(default="", description=f"its first {EXCERPT_CHARS} characters")


RunEvent = Annotated[
    TurnStarted
    | TextDelta
    | ModelAnswered
    | ToolStarted
    | ToolFinished
    | ApprovalRequested
    | ApprovalDecided
    | QuestionAsked
    | QuestionAnswered
    | CostSoFar
    | RunFinished,
    Field(discriminator="kind"),
]
"""Any event of a run's stream."""

RUN_EVENT: Final = TypeAdapter[RunEvent](RunEvent)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of `text`, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- what a watcher shows -------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One thing to show: a status `line`, answer `text` (continuing the step's text), or
    a `retract`ion of the text shown so far for `step` (an older generation's).
    """

    kind: Literal["line", "text", "retract"]
    text: str
    step: str = ""


@dataclass
class _Generation:
    deployment: int
    attempt: int
    text: str = ""
    done: bool = False

    def key(self) -> tuple[int, int]:
        return (self.deployment, self.attempt)


@dataclass
class Transcript:
    """What a watcher has seen of a run: the text of each step's newest generation.

    `apply` takes events in stream order and says what to show. Deltas of an older
    generation arriving late are ignored; the first delta of a newer one retracts the
    text shown for the older; a step's final answer completes (or replaces) what its
    deltas showed, so it appears exactly once.
    """

    _steps: dict[str, _Generation] = field(default_factory=dict)

    def text(self, step: str) -> str:
        """The text a watcher now sees for `step`."""
        generation = self._steps.get(step)
        return generation.text if generation is not None else ""

    def apply(self, event: RunEvent) -> list[Shown]:
        """What to show for one event."""
        if isinstance(event, TextDelta):
            return self._delta(event)
        if isinstance(event, ModelAnswered):
            return self._answered(event)
        if isinstance(event, TurnStarted):
            self._steps.pop(event.step, None)
        if isinstance(event, RunFinished) and self._streamed(event.answer):
            # The answer has just streamed in full: say how the run ended, not it again.
            return [Shown("line", describe(event.model_copy(update={"answer": ""})))]
        return [Shown("line", describe(event))]

    def _streamed(self, answer: str) -> bool:
        """Whether `answer` (maybe an excerpt) is the text some step just showed."""
        start = answer.strip().removesuffix("…")
        return bool(start) and any(
            step.done and step.text.strip().startswith(start) for step in self._steps.values()
        )

    def _delta(self, delta: TextDelta) -> list[Shown]:
        shown: list[Shown] = []
        current = self._steps.get(delta.step)
        key = (delta.deployment, delta.attempt)
        if current is not None and (current.done or key < current.key()):
            return shown  # late: the step is answered, or a newer generation is showing
        if current is None or key != current.key():
            if current is not None and current.text:
                shown.append(Shown("retract", current.text, delta.step))
                shown.append(Shown("line", _retry_note(delta.deployment, delta.attempt)))
            current = self._steps[delta.step] = _Generation(delta.deployment, delta.attempt)
        if delta.start > len(current.text):
            return shown  # a gap (deltas lost): the final answer will fill it
        new = delta.text[len(current.text) - delta.start :]
        if new:
            current.text += new
            shown.append(Shown("text", new, delta.step))
        return shown

    def _answered(self, answer: ModelAnswered) -> list[Shown]:
        shown: list[Shown] = []
        current = self._steps.get(answer.step)
        key = (answer.deployment, answer.attempt)
        if current is not None and current.key() == key and answer.text.startswith(current.text):
            rest = answer.text[len(current.text) :]
        else:
            if current is not None and current.text:
                shown.append(Shown("retract", current.text, answer.step))
                if current.key() != key:
                    shown.append(Shown("line", _retry_note(answer.deployment, answer.attempt)))
            rest = answer.text
        self._steps[answer.step] = _Generation(answer.deployment, answer.attempt, answer.text, True)
        if rest:
            shown.append(Shown("text", rest, answer.step))
        shown.append(Shown("line", describe(answer)))
        return shown


def _retry_note(deployment: int, attempt: int) -> str:
    where = f"deployment {deployment}, " if deployment else ""
    return f"  (retried: {where}attempt {attempt}; the partial answer above was discarded)"


def describe(event: RunEvent) -> str:
    """One line for an event, as `steward watch` prints it."""
    match event:
        case TurnStarted():
            model = f" ({event.model})" if event.model else ""
            return f"▸ {event.step} on {event.tier}{model}"
        case TextDelta():
            return event.text
        case ModelAnswered():
            calls = f", calls {', '.join(event.tool_calls)}" if event.tool_calls else ""
            retried = f", attempt {event.attempt}" if event.attempt > 1 else ""
            return f"  ({event.model}, {event.path}{calls}{retried})"
        case ToolStarted():
            return f"⚙ {event.tool} ({event.call_id})"
        case ToolFinished():
            output = f": {event.output}" if event.output else ""
            return f"  {event.tool} {event.decision} -> {event.outcome} ({event.reason}){output}"
        case ApprovalRequested():
            return (
                f"⏸ approval needed for {event.tool} ({event.request_id}, digest "
                f"{event.args_digest}) from one of {', '.join(event.approvers)} by "
                f"{event.deadline:%Y-%m-%d %H:%M} UTC\n  {event.command}"
            )
        case ApprovalDecided():
            by = f" by {event.approver}" if event.approver else ""
            reason = f": {event.reason}" if event.reason else ""
            return f"  approval {event.request_id} {event.status}{by}{reason}"
        case QuestionAsked():
            return f"? {event.question}\n  {event.command}"
        case QuestionAnswered():
            by = f" by {event.sender}" if event.sender else ""
            return f"  question {event.question_id} {event.status}{by}"
        case CostSoFar():
            unpriced = f" ({event.unpriced_calls} unpriced)" if event.unpriced_calls else ""
            return (
                f"  $ {event.cost_usd:.6f}{unpriced}, {event.tokens} tokens, "
                f"{event.model_calls} model calls"
            )
        case RunFinished():
            return f"■ {event.status}: {event.answer}" if event.answer else f"■ {event.status}"
