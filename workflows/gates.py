"""What every gate of a run shares: a person's answer awaited durably, and a message read.

A run waits on people in two gates: approvals (`workflows.approvals`: a tool call waits
for a decision) and questions (`workflows.questions`: the run waits for a reply). Both
mint ids scoped to the run, wait for an answer until a deadline or until the run must
continue as new, read each incoming message as exactly one payload of a model (so a
malformed one is refused, never raised), and keep a bounded record of what they refused.
Those pieces are here, once; each gate keeps its own rules for what an answer must be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow

from steward.models import problems, run_tag

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class ContinueAsNew(Exception):
    """A wait gave way because the run continues as new; its state carries what waited."""


TAKEOVER_PATCH = "answers-wait-for-takeover"
"""A decision or reply that reaches a continued run in its first workflow task, before the
run has taken over what its chain carried, waits for that instead of being refused as
unknown (the request or question it answers was carried, so the answer was lost).
Histories recorded before it replay as they ran: the answer refused."""


def before_takeover(taken_over: bool) -> bool:
    """Whether this is a continued run that has not yet taken over what its chain carried:
    Temporal hands a message that arrived before the run's first task to its handler
    before `run` begins. Pure, so an update's validator may ask it.
    """
    return not taken_over and workflow.info().continued_run_id is not None


async def after_takeover(taken_over: Callable[[], bool]) -> None:
    """In a continued run, wait until the run has taken over what its chain carried."""
    if before_takeover(taken_over()) and workflow.patched(TAKEOVER_PATCH):
        await workflow.wait_condition(taken_over)


def scoped_id(run_id: str, local: str) -> str:
    """An id for something a run waits on, bound to the run's first execution, so an
    answer meant for an earlier run of the same workflow id never counts here.
    """
    scope = f"{run_tag(run_id)}-" if run_id else ""
    return f"{workflow.info().workflow_id}:{scope}{local}"


async def answered(
    done: Callable[[], bool],
    interrupt: Callable[[], bool],
    seconds: float,
    summary: str,
    carried: str,
) -> bool:
    """Whether `done` came true within `seconds` (False at the deadline).

    Raises ContinueAsNew, saying `carried`, when `interrupt` came true first: the run is
    about to continue as new and carries what waited to its next run.
    """
    try:
        await workflow.wait_condition(
            lambda: done() or interrupt(), timeout=seconds, timeout_summary=summary
        )
    except TimeoutError:
        return False
    if not done():
        raise ContinueAsNew(carried)
    return True


def one_payload(sent: tuple[object, ...], model: type[M], what: str) -> M | str:
    """The one `model` a signal or update carries, or what is wrong with it, in one line.

    The SDK has decoded each payload as plain JSON (null and bytes included); validating
    here, not in the SDK, is what lets a bad payload be refused instead of raised.
    """
    if len(sent) != 1:
        return f"malformed {what}: {what}: expected one JSON object, got {len(sent)} arguments"
    try:
        return model.model_validate(sent[0])
    except ValidationError as err:
        return f"malformed {what}: {problems(err, what)}"


def keep_last(kept: list[T], item: T, limit: int) -> None:
    """Append `item`, keeping only the newest `limit` items."""
    kept.append(item)
    del kept[:-limit]
