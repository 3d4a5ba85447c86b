"""Malformed `decide` signals and updates sent to a run that waits for an approval.

Anyone who may signal a workflow can send `decide` any payload: none, several, null,
bytes, JSON of any shape, or a decision that is almost right. Whatever arrives, the run
must refuse it with a clear reason (recorded for a signal, answered for an update), its
workflow task must not fail, and the request must still be waiting, so that the one valid
approval at the end completes the run.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from steward.config import StewardConfig
from steward.models import ApprovalDecision, ApprovalRequest, RefusedDecision, RunProgress
from steward.runs import start_run
from tests.fuzz.running import (
    assert_clear_refusal,
    fuzz_on_loop,
    run_settings,
    task_failures,
    until,
)
from tests.fuzz.strategies import DECISION, json_values, long_texts, mutated
from tests.support.fake_model import FakeModel
from tests.support.stack import outbox_messages, running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

PRINCIPAL = "demo-user"


def decision_for(request: ApprovalRequest, **changes: Any) -> dict[str, Any]:
    """A decision that `request` would accept, with `changes`."""
    valid = {
        "request_id": request.id,
        "args_digest": request.args_digest,
        "approver": "alice",
        "approve": True,
        "reason": "fuzz",
    }
    return valid | changes


def counts(request: ApprovalRequest, value: Any) -> bool:
    """Whether `value` is a decision the gate would apply (and so end the run)."""
    try:
        decision = ApprovalDecision.model_validate(value)
    except ValidationError:
        return False
    return (
        decision.request_id == request.id
        and decision.args_digest == request.args_digest
        and decision.approver in request.approvers
        and decision.approver != PRINCIPAL
    )


def decide_arguments(request: ApprovalRequest) -> st.SearchStrategy[list[Any]]:
    """The argument lists of `decide` messages that must all be refused.

    Payloads stay far below Temporal's 2 MB limit: the server refuses bigger ones itself.
    """
    nasty = json_values | long_texts
    value = st.one_of(
        json_values,
        st.binary(max_size=16),
        mutated(st.just(decision_for(request)), values=nasty).map(lambda changed: changed[0]),
        st.just(DECISION),
    )
    arguments = st.one_of(value.map(lambda one: [one]), st.lists(value, max_size=3))
    return arguments.filter(lambda args: not (len(args) == 1 and counts(request, args[0])))


async def waiting_run(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> tuple[WorkflowHandle[Any, Any], ApprovalRequest]:
    queue_happy_path(fake_model)
    handle = await start_run(
        client, config, "support-reply", TICKET, PRINCIPAL, task_queue=task_queue
    )
    return handle, await wait_for_approval(handle)


async def progress(handle: WorkflowHandle[Any, Any]) -> RunProgress:
    result: RunProgress = await handle.query("progress", result_type=RunProgress)
    return result


def latest(refused: list[RefusedDecision]) -> tuple[int, RefusedDecision | None]:
    """How many refusals are kept and the last one: changes when a new one is recorded."""
    return len(refused), refused[-1] if refused else None


async def approve_and_finish(
    handle: WorkflowHandle[Any, Any], request: ApprovalRequest, config: StewardConfig
) -> None:
    await handle.execute_update("decide", ApprovalDecision.model_validate(decision_for(request)))
    result = await handle.result()
    assert result.status == "completed"
    assert len(outbox_messages(config)) == 1
    assert await task_failures(handle) == []


async def test_malformed_decide_signals_are_refused_and_the_run_goes_on(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    async with running_workers(client, config, task_queue):
        handle, request = await waiting_run(client, config, fake_model, task_queue)

        async def send(arguments: list[Any]) -> None:
            before = latest((await progress(handle)).refused)
            await handle.signal("decide", args=arguments)

            async def refused() -> bool:
                return latest((await progress(handle)).refused) != before

            handled = await until(refused, timeout=5, pause=0.01)
            assert await task_failures(handle) == []
            assert handled, "the signal was neither applied nor refused"
            now = await progress(handle)
            assert [waiting.id for waiting in now.pending] == [request.id]
            assert_clear_refusal(now.refused[-1].reason)

        def fuzz(on_loop: Callable[[Coroutine[Any, Any, None]], None]) -> Callable[[], None]:
            @run_settings(25)
            @given(arguments=decide_arguments(request))
            @example(arguments=[])
            @example(arguments=[None])
            @example(arguments=[b"\x00approve"])
            @example(arguments=[decision_for(request), decision_for(request)])
            @example(arguments=[decision_for(request, approver="mallory")])
            @example(arguments=[decision_for(request, approver=PRINCIPAL)])
            @example(arguments=[decision_for(request, args_digest="0" * 16)])
            def signals(arguments: list[Any]) -> None:
                on_loop(send(arguments))

            return signals

        await fuzz_on_loop(fuzz)
        await approve_and_finish(handle, request, config)


async def test_malformed_decide_updates_are_rejected_clearly_and_the_run_goes_on(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    async with running_workers(client, config, task_queue):
        handle, request = await waiting_run(client, config, fake_model, task_queue)

        async def send(arguments: list[Any]) -> None:
            try:
                receipt = await handle.execute_update("decide", args=arguments)
            except WorkflowUpdateFailedError as err:
                cause = err.cause
                assert isinstance(cause, ApplicationError), repr(cause)
                assert_clear_refusal(cause.message)
            else:
                raise AssertionError(f"{arguments!r} was accepted: {receipt!r}")
            assert await task_failures(handle) == []
            assert [waiting.id for waiting in (await progress(handle)).pending] == [request.id]

        def fuzz(on_loop: Callable[[Coroutine[Any, Any, None]], None]) -> Callable[[], None]:
            @run_settings(25)
            @given(arguments=decide_arguments(request))
            @example(arguments=[])
            @example(arguments=[None])
            @example(arguments=[b"\x00approve"])
            @example(arguments=[decision_for(request), decision_for(request)])
            @example(arguments=[decision_for(request, approver="mallory")])
            @example(arguments=[{"request_id": request.id}])
            def updates(arguments: list[Any]) -> None:
                on_loop(send(arguments))

            return updates

        await fuzz_on_loop(fuzz)
        await approve_and_finish(handle, request, config)
