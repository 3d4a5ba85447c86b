"""Questions a run asks a human, and the replies: the payloads of the `reply` signal/update.

Besides approving a tool call, a human can be asked for input: a run (an agent through
its `ask_human` tool, or a playbook step) asks a question and waits durably, until a
deadline, for one reply. Kept apart from `steward.payloads` because it is its own exchange
with its own vocabulary; everything here is a pure payload or constant. Like every
payload, these are stored in history and shown in the UI, so a reply is data: the model
reads it quoted, never as instructions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from steward.bounds import MAX_WAIT_SECONDS
from steward.strict import Strict

ASK_HUMAN = "ask_human"
"""The agent tool that asks a human a question; granted like any tool, in steward.yaml."""

MAX_QUESTION_CHARS = 2_000
MAX_REPLY_CHARS = 10_000
MAX_ASK_SECONDS = MAX_WAIT_SECONDS
"""Longest a question may wait: as long as an approval."""


class AskHumanArgs(Strict):
    """Arguments of the ask_human tool: the question and how long to wait for a reply."""

    question: str = Field(min_length=1, description="one clear question for a person")
    timeout_seconds: float = Field(default=3600.0, gt=0, le=MAX_ASK_SECONDS)

    @field_validator("question")
    @classmethod
    def _fits(cls, value: str) -> str:
        # Checked here, not declared as maxLength: the agent's output grammar is built from
        # this schema, and llama.cpp expands maxLength into one rule per character.
        if not value.strip():
            raise ValueError("the question is blank")
        if len(value) > MAX_QUESTION_CHARS:
            raise ValueError(f"{len(value):,} characters; at most {MAX_QUESTION_CHARS:,}")
        return value


class Question(Strict):
    """A question waiting for a human's reply."""

    id: str = Field(description="WORKFLOW_ID:qN")
    workflow_id: str
    question: str
    asked_by: str = Field(description="the agent or playbook asking")
    principal: str = Field(description="who started the run")
    audience: list[str] = Field(default_factory=list, description="who may answer; empty: anyone")
    asked_at: datetime
    deadline: datetime


class Reply(Strict):
    """A human's reply to one question, as sent by signal or update `reply`.

    Types are strict, as JSON has them; every field is bounded.
    """

    model_config = ConfigDict(strict=True)

    question_id: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=MAX_REPLY_CHARS)
    sender: str = Field(min_length=1, max_length=200)


class Answer(Strict):
    """How a question ended: answered (with the reply) or timed out."""

    question_id: str
    status: Literal["answered", "timed_out"]
    text: str = ""
    sender: str | None = None
    asked_at: datetime
    answered_at: datetime = Field(description="when it was answered, or timed out")


class RefusedReply(Strict):
    """A reply the workflow did not accept, and why (kept for the query and the logs)."""

    question_id: str
    sender: str
    reason: str
    at: datetime


class QuestionState(Strict):
    """A run's questions carried across continue-as-new: open ones keep id and deadline."""

    seq: int = Field(default=0, ge=0, description="questions asked so far in this workflow")
    open: list[Question] = Field(default_factory=list)
    answers: list[Answer] = Field(
        default_factory=list, description="the most recent answers, oldest first"
    )
