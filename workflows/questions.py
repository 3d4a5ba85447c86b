"""The question gate: a run asks a human something and waits, durably, for one reply.

The approval gate's sibling. An open question is visible by the `open_questions` query and
by the `StewardOpenQuestions` search attribute (the run's status reads `awaiting_input`
while one is open and no approval is). Replies arrive by the `reply` signal (Temporal UI,
`temporal workflow signal`, scripts) or the `reply` update (the CLI, which wants to hear at
once if it was refused). A reply counts only if it names an open question, comes from its
audience (when the question has one) and the question was not answered already; anything
else is refused and recorded, never applied, and a malformed payload cannot fail the
workflow task. At the deadline the question times out. The gate's state can be carried
across continue-as-new, like the approval gate's: a restored question keeps its id and
deadline, takes replies at once, and is waited on again (for the time left) when the run
asks it again or calls `wait`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

from steward import errors
from steward import search_attributes as sa
from steward.questions import Answer, Question, QuestionState, RefusedReply, Reply
from workflows.gates import (
    after_takeover,
    answered,
    before_takeover,
    keep_last,
    one_payload,
    scoped_id,
)

MAX_REFUSALS_KEPT = 50
MAX_ANSWERS_KEPT = 50
"""Answers carried across continue-as-new: enough to refuse a late repeat of a reply."""


def _nothing_else_waits() -> bool:
    return False


def _nobody_told(question: Question) -> None:
    return


class QuestionGate:
    """Open questions of one run, their answers, and the rules for accepting a reply."""

    def __init__(self, approvals_pending: Callable[[], bool] = _nothing_else_waits) -> None:
        self.approvals_pending = approvals_pending
        self.open: dict[str, Question] = {}
        self.answers: dict[str, Answer] = {}
        self.refused: list[RefusedReply] = []
        self._seq = 0
        # Questions carried from the previous run, by text, waiting to be asked again.
        self._carried: dict[str, Question] = {}
        self.interrupt: Callable[[], bool] = _nothing_else_waits
        """While true, a waiting question stops waiting: the run is about to continue as new."""
        self.opened: Callable[[Question], None] = _nobody_told
        """Told of each question as it opens (the run's event stream)."""
        self._run_id = ""
        self.on_change: Callable[[], None] = lambda: None
        """Called when what waits changes (a question opens or ends)."""

    def scope(self, run_id: str) -> None:
        """Bind question ids to the run, so a reply meant for an earlier run of the same
        workflow id never answers this one's question.
        """
        self._run_id = run_id

    def check(self, reply: Reply) -> str | None:
        """Why this reply must be refused, or None if it may be applied."""
        question = self.open.get(reply.question_id)
        if question is None:
            done = self.answers.get(reply.question_id)
            if done is not None:
                said = "already answered" if done.status == "answered" else "timed out"
                return f"question {reply.question_id} was {said}"
            return f"no open question with id {reply.question_id!r}"
        if question.audience and reply.sender not in question.audience:
            return (
                f"{reply.sender!r} may not answer {question.id} "
                f"(it asks: {', '.join(question.audience)})"
            )
        return None

    def apply(self, reply: Reply) -> Answer:
        """Record a checked reply; the waiting `ask` wakes with it."""
        question = self.open.pop(reply.question_id)
        answer = Answer(
            question_id=question.id,
            status="answered",
            text=reply.text,
            sender=reply.sender,
            asked_at=question.asked_at,
            answered_at=workflow.now(),
        )
        self.answers[question.id] = answer
        return answer

    def refuse(self, question_id: str, sender: str, reason: str) -> None:
        """Keep a refused reply for the query and the logs (bounded)."""
        workflow.logger.warning("reply refused: %s", reason)
        refused = RefusedReply(
            question_id=question_id, sender=sender, reason=reason, at=workflow.now()
        )
        keep_last(self.refused, refused, MAX_REFUSALS_KEPT)

    async def ask(
        self,
        question: str,
        timeout_seconds: float,
        asked_by: str,
        principal: str,
        audience: list[str],
    ) -> Answer:
        """Open a question and wait for its reply or its deadline.

        The same question carried over from the previous run is resumed instead: same id,
        same deadline. Raises ContinueAsNew when `interrupt` says the run must continue as
        new while it waits.
        """
        carried = self._carried.pop(question, None)
        if carried is not None:
            return await self.wait(carried.id)
        self._seq += 1
        now = workflow.now()
        opened = Question(
            id=scoped_id(self._run_id, f"q{self._seq}"),
            workflow_id=workflow.info().workflow_id,
            question=question,
            asked_by=asked_by,
            principal=principal,
            audience=audience,
            asked_at=now,
            deadline=now + timedelta(seconds=timeout_seconds),
        )
        self.open[opened.id] = opened
        self.opened(opened)
        return await self.wait(opened.id)

    async def wait(self, question_id: str) -> Answer:
        """Wait for an open question's reply until its deadline (after `restore` too)."""
        if question_id in self.answers:  # a carried question answered before it was resumed
            self._publish()
            return self.answers[question_id]
        question = self.open[question_id]
        self._publish()
        left = (question.deadline - workflow.now()).total_seconds()
        if left > 0 and not await answered(
            lambda: question.id in self.answers,
            self.interrupt,
            left,
            "question deadline",
            f"question {question.id} is carried to the next run",
        ):
            workflow.logger.info("question %s: no reply by its deadline", question.id)
        if question.id not in self.answers:
            del self.open[question.id]
            self.answers[question.id] = Answer(
                question_id=question.id,
                status="timed_out",
                asked_at=question.asked_at,
                answered_at=workflow.now(),
            )
        self._publish()
        return self.answers[question.id]

    def snapshot(self) -> QuestionState:
        """The gate's state, to carry into the next run of a continue-as-new."""
        return QuestionState(
            seq=self._seq,
            open=list(self.open.values()),
            answers=list(self.answers.values())[-MAX_ANSWERS_KEPT:],
        )

    def restore(self, state: QuestionState) -> None:
        """Take over a snapshot: open questions take replies at once and resume when asked
        again (or on `wait`), with the time left until their deadline.
        """
        self._seq = state.seq
        self.open = {question.id: question for question in state.open}
        self.answers = {answer.question_id: answer for answer in state.answers}
        self._carried = {question.question: question for question in state.open}

    def _publish(self) -> None:
        workflow.upsert_search_attributes(
            [
                sa.OPEN_QUESTIONS.value_set(list(self.open)),
                sa.STATUS.value_set(
                    sa.waiting_status(
                        approvals_pending=self.approvals_pending(), questions_open=bool(self.open)
                    )
                ),
            ]
        )
        self.on_change()


class QuestionHandlers:
    """Signal, update and query handlers for a workflow that owns a `QuestionGate`.

    Workflows inherit this; Temporal registers inherited handlers.
    """

    questions: QuestionGate
    taken_over: bool
    """Whether the run holds what its chain carried (`workflows.gates.before_takeover`)."""

    # As with `decide`: the handlers take their arguments as sent, however many, so that a
    # payload count that does not fit cannot raise before this code runs. They await only
    # a continued run's takeover of its chain; a handler that does not await runs as a
    # plain function would, so recorded histories replay as they ran.

    @workflow.signal(name="reply")
    async def reply_signal(self, *sent: object) -> None:
        """A reply sent as a signal: checked, then applied or refused (never raised)."""
        reply = _reply(sent)
        if isinstance(reply, str):
            self.questions.refuse("?", "?", reply)
            return
        await after_takeover(lambda: self.taken_over)
        reason = self.questions.check(reply)
        if reason is not None:
            self.questions.refuse(reply.question_id, reply.sender, reason)
            return
        self.questions.apply(reply)

    @workflow.update(name="reply")
    async def reply_update(self, *sent: object) -> Answer:
        """A reply sent as an update: a refusal is answered to the sender at once."""
        reply = _reply(sent)  # replay skips validators: check again
        if isinstance(reply, str):
            raise errors.application_error(errors.MALFORMED_REPLY, reply)
        await after_takeover(lambda: self.taken_over)
        reason = self.questions.check(reply)
        if reason is not None:
            self.questions.refuse(reply.question_id, reply.sender, reason)
            raise errors.application_error(errors.REPLY_REFUSED, reason)
        return self.questions.apply(reply)

    @reply_update.validator
    def _check_reply(self, *sent: object) -> None:
        reply = _reply(sent)
        if not isinstance(reply, str) and before_takeover(self.taken_over):
            return  # the question may be one the run has yet to take over: the handler waits
        reason = reply if isinstance(reply, str) else self.questions.check(reply)
        if reason is not None:
            raise ValueError(reason)

    @workflow.query(name="open_questions")
    def open_questions(self) -> list[Question]:
        """Questions still waiting for a reply."""
        return list(self.questions.open.values())

    @workflow.query(name="refused_replies")
    def refused_replies(self) -> list[RefusedReply]:
        """The most recent replies the run refused, and why."""
        return list(self.questions.refused)


def _reply(sent: tuple[object, ...]) -> Reply | str:
    """The one reply a `reply` signal or update carries, or what is wrong with it."""
    return one_payload(sent, Reply, "reply")
