"""Fuzzing running workflows: hypothesis drives examples from a thread while the test's
event loop keeps serving the workers, so one run can take many examples.

Hypothesis runs a test synchronously, and the workers live on the session's event loop;
`fuzz_on_loop` hands each example's coroutine to that loop and waits for it. Examples are
not shrunk: once a run is broken every later example fails too, so the first failing
example is the one worth reporting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from hypothesis import Phase, settings
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from tests.fuzz import EXPLORE, FUZZ
from tests.support.histories import readable_history

T = TypeVar("T")

EXAMPLE_TIMEOUT = 30.0


def run_settings(count: int) -> settings:
    """Settings for examples sent to a running workflow: few, in order, unshrunk."""
    return settings(
        FUZZ,
        max_examples=count * 4 if EXPLORE else count,
        phases=(Phase.explicit, Phase.generate),
        report_multiple_bugs=False,
    )


async def fuzz_on_loop(
    test: Callable[[Callable[[Coroutine[Any, Any, T]], T]], Callable[[], None]],
) -> None:
    """Run the hypothesis test that `test` builds, in a thread, with examples on this loop.

    `test` receives `on_loop(coroutine) -> result` and returns the @given function.
    """
    loop = asyncio.get_running_loop()

    def on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(EXAMPLE_TIMEOUT)

    await asyncio.to_thread(test(on_loop))


async def task_failures(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The messages of the run's failed workflow tasks (none, in a healthy run)."""
    history = await readable_history(handle)
    return [
        event.workflow_task_failed_event_attributes.failure.message
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def until(check: Callable[[], Awaitable[bool]], timeout: float, pause: float = 0.05) -> bool:
    """Poll `check` until it holds (True) or `timeout` seconds pass (False)."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(pause)
    except TimeoutError:
        return False
    return True


async def closed(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the run has ended, one way or another."""
    description = await handle.describe()
    return description.status not in (None, WorkflowExecutionStatus.RUNNING)


async def stop(handle: WorkflowHandle[Any, Any]) -> None:
    """Terminate the run if it still runs (a stuck one would retry its task forever)."""
    try:
        if not await closed(handle):
            await handle.terminate(reason="fuzz test finished with it")
    except RPCError:
        pass  # it ended between the two calls


GATE_REASONS = (
    "no pending approval with id",
    "argument digest does not match",
    "is not an allowed approver",
    "requested this action and cannot approve it",
    "already approved",
    "was already decided",
    "needs a decision signed",
)
"""How the approval gate words a refusal of a well-formed decision."""

NOISE = (
    "Traceback",
    "NoneType",
    "object has no attribute",
    "positional argument",
    "Failed decoding arguments",
)
"""Words that mean an exception leaked instead of a refusal being made."""


def assert_clear_refusal(reason: str) -> None:
    """A refused decision says `malformed decision: field: problem`, or the gate's rule."""
    assert reason.strip(), "empty refusal"
    assert not any(noise in reason for noise in NOISE), reason
    if reason.startswith("malformed decision: "):
        assert re.match(r"^[^:\s][^:]*: \S", reason.removeprefix("malformed decision: ")), reason
    else:
        assert any(rule in reason for rule in GATE_REASONS), reason
