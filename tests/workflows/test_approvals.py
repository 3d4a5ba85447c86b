"""The approval gate under bad and hostile decisions, by update, signal and the Temporal CLI
(with the codec server, and without: a decision sent in plain JSON is accepted as is)."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from steward.config import StewardConfig
from steward.models import ApprovalDecision, DecisionRecord
from steward.runs import RunError, decide, pending, start_run
from tests.support.codec_server import codec_server
from tests.support.fake_model import FakeModel
from tests.support.stack import (
    outbox_messages,
    running_workers,
    wait_for_approval,
    wait_for_refusals,
)
from tests.support.temporal_cli import temporal_cli
from tests.workflows.test_support import TICKET, queue_happy_path


async def test_refused_decisions_change_nothing(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        # alice asks, so alice may not approve even though she is an approver
        handle = await start_run(
            client, config, "support-reply", TICKET, "alice", task_queue=task_queue
        )
        request = await wait_for_approval(handle)

        def decision(**changes: object) -> ApprovalDecision:
            base = {
                "request_id": request.id,
                "args_digest": request.args_digest,
                "approver": "demo-approver",
                "approve": True,
            }
            return ApprovalDecision.model_validate(base | changes)

        refusals = {
            "no pending approval": decision(request_id=f"{handle.id}:99"),
            "argument digest does not match": decision(args_digest="0" * 16),
            "is not an allowed approver": decision(approver="mallory"),
            "cannot approve it": decision(approver="alice"),
        }
        for expected, bad in refusals.items():
            with pytest.raises(WorkflowUpdateFailedError) as caught:
                await handle.execute_update("decide", bad)
            cause = caught.value.cause
            assert isinstance(cause, ApplicationError) and cause.type == "DecisionRefused"
            assert expected in cause.message
            # one line for the approver: no trace of the worker, never the digest waiting
            assert cause.failure is not None and cause.failure.stack_trace == ""
            assert "\n" not in cause.message and request.args_digest not in cause.message

        # the same refusals by signal are recorded, not applied
        for bad in refusals.values():
            await handle.signal("decide", bad)
        progress = await wait_for_refusals(handle, 2 * len(refusals))
        assert [r.reason for r in progress.refused] and len(progress.pending) == 1
        assert all(any(expected in r.reason for r in progress.refused) for expected in refusals)
        # every decision is on record, by update and by signal, and none was accepted
        records = await handle.query("decisions", result_type=list[DecisionRecord])
        assert [r.via for r in records] == ["update"] * 4 + ["signal"] * 4
        assert not any(r.accepted for r in records)

        # the CLI path refuses an unknown id before sending anything
        with pytest.raises(RunError, match="no pending approval"):
            await decide(client, f"{handle.id}:7", "demo-approver", approve=True)

        # one valid approval (a second one is tested while the run still waits, below)
        await handle.execute_update("decide", decision())
        result = await handle.result()

    assert result.status == "completed"
    assert [a.approver for a in result.approvals] == ["demo-approver"]
    assert len(outbox_messages(config)) == 1


async def test_a_second_decision_for_a_decided_request_is_refused(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    # two sends in one agent run: the replayed decision for the first arrives while the
    # run waits on the second, so nothing races the run's end
    email = {"to": "ops@example.com", "subject": "Backup", "body": "done"}
    for _ in range(2):
        fake_model.queue(json.dumps({"action": "send_email", "arguments": email}))
    fake_model.queue(json.dumps({"action": "answer", "answer": "sent twice"}))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "tell ops", "dana", task_queue=task_queue
        )
        first = await wait_for_approval(handle)
        approve_first = ApprovalDecision(
            request_id=first.id, args_digest=first.args_digest, approver="alice", approve=True
        )
        await handle.execute_update("decide", approve_first)
        async with asyncio.timeout(20):
            while (second := await wait_for_approval(handle)).id == first.id:
                await asyncio.sleep(0.05)
        for replayed in (approve_first, approve_first.model_copy(update={"approve": False})):
            with pytest.raises(WorkflowUpdateFailedError) as caught:
                await handle.execute_update("decide", replayed)
            assert f"approval {first.id} was already decided: approved" in str(caught.value.cause)
        records = await handle.query("decisions", result_type=list[DecisionRecord])
        assert [(r.accepted, r.approve) for r in records] == [
            (True, True),
            (False, True),
            (False, False),
        ]
        await decide(client, second.id, "alice", approve=True)
        result = await handle.result()

    assert result.status == "completed"
    assert [a.status for a in result.approvals] == ["approved", "approved"]
    assert len(outbox_messages(config)) == 2


MALFORMED = ('{"request_id": 5}', '"approve"', '{"approve": "yes", "x": 1}', "[]")


def run_input(shown: str) -> Payload:
    """The run's input in `temporal workflow show --output json`."""
    history = WorkflowHistory.from_json("shown", shown)
    return history.events[0].workflow_execution_started_event_attributes.input.payloads[0]


async def test_plain_temporal_cli_can_approve_and_cannot_break_the_run(
    env: WorkflowEnvironment, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    client = env.client
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)

        for malformed in MALFORMED:
            code, out = await temporal_cli(
                env,
                "workflow",
                "signal",
                "--workflow-id",
                handle.id,
                "--name",
                "decide",
                "--input",
                malformed,
            )
            assert code == 0, out
        progress = await wait_for_refusals(handle, 4)
        assert all(r.reason.startswith("malformed decision") for r in progress.refused)
        # a refusal names what was wrong, field by field
        assert any("args_digest: Field required" in r.reason for r in progress.refused)
        assert len(progress.pending) == 1  # still waiting, task not stuck

        good = {
            "request_id": request.id,
            "args_digest": request.args_digest,
            "approver": "demo-approver",
            "approve": True,
            "reason": "via temporal CLI",
        }
        code, out = await temporal_cli(
            env,
            "workflow",
            "signal",
            "--workflow-id",
            handle.id,
            "--name",
            "decide",
            "--input",
            json.dumps(good),
        )
        assert code == 0, out
        result = await handle.result()

    assert result.status == "completed"
    assert result.approvals[0].reason == "via temporal CLI"
    assert len(outbox_messages(config)) == 1
    # Sent without the codec, the decisions were read (plaintext passes through the codec)
    # and checked like any other; history keeps them as they were sent, in plaintext,
    # while everything the run itself wrote is encrypted.
    history = await handle.fetch_history()
    signals = [
        event.workflow_execution_signaled_event_attributes.input.payloads[0]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == "decide"
    ]
    assert [p.metadata["encoding"] for p in signals] == [b"json/plain"] * 5
    assert json.loads(signals[-1].data) == good
    started = history.events[0].workflow_execution_started_event_attributes
    scheduled = [
        event.activity_task_scheduled_event_attributes.input.payloads[0]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    for written in (started.input.payloads[0], *scheduled):
        assert written.metadata["encoding"] == b"binary/encrypted"
        assert written.metadata["encryption-key-id"] == b"test-1"


async def test_temporal_cli_through_the_codec_server_reads_refusals_and_approves_encrypted(
    env: WorkflowEnvironment, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    client = env.client
    queue_happy_path(fake_model)
    with codec_server() as codec_url:
        async with running_workers(client, config, task_queue):
            handle = await start_run(
                client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
            )
            request = await wait_for_approval(handle)
            show = ("workflow", "show", "--workflow-id", handle.id, "--output", "json")

            # through the codec server the CLI shows the ticket; without it, ciphertext
            code, shown = await temporal_cli(env, *show, codec_endpoint=codec_url)
            assert code == 0, shown
            assert b"still not delivered" in run_input(shown).data
            assert run_input(shown).metadata["encoding"] == b"json/plain"
            code, raw = await temporal_cli(env, *show)
            assert code == 0 and b"still not delivered" not in run_input(raw).data
            assert run_input(raw).metadata["encoding"] == b"binary/encrypted"

            # a refused update reads as its one line, through the codec or without it: a
            # refusal names ids and rules, never customer text, so it stays readable
            bad = {
                "request_id": request.id,
                "args_digest": request.args_digest,
                "approver": "mallory",
                "approve": True,
            }
            update = (
                *("workflow", "update", "execute", "--workflow-id", handle.id),
                *("--name", "decide", "--input", json.dumps(bad)),
            )
            code, out = await temporal_cli(env, *update, codec_endpoint=codec_url)
            assert code != 0 and "'mallory' is not an allowed approver" in out, out
            assert "Traceback" not in out
            code, out = await temporal_cli(env, *update)
            assert code != 0 and "'mallory' is not an allowed approver" in out, out

            good = bad | {"approver": "demo-approver", "reason": "via the codec server"}
            signal = ("workflow", "signal", "--workflow-id", handle.id, "--name", "decide")
            code, out = await temporal_cli(
                env, *signal, "--input", json.dumps(good), codec_endpoint=codec_url
            )
            assert code == 0, out
            result = await handle.result()

    assert result.status == "completed"
    assert result.approvals[0].reason == "via the codec server"
    assert len(outbox_messages(config)) == 1
    # the decision the CLI sent arrived encrypted, with the workers' key
    history = await handle.fetch_history()
    (sent,) = [
        event.workflow_execution_signaled_event_attributes.input.payloads[0]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == "decide"
    ]
    assert sent.metadata["encoding"] == b"binary/encrypted"
    assert sent.metadata["encryption-key-id"] == b"test-1"
    assert b"via the codec server" not in sent.SerializeToString()


async def test_pending_lists_every_live_run_and_names_those_that_cannot_answer(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        orphan = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        await wait_for_approval(orphan)
    # its workers are gone: it can no longer answer a query
    queue_happy_path(fake_model)
    live_queue = f"{task_queue}-live"
    async with running_workers(client, config, live_queue):
        live = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=live_queue
        )
        request = await wait_for_approval(live)
        unanswered: list[str] = []
        async with asyncio.timeout(30):  # visibility is eventually consistent
            while orphan.id not in unanswered:
                unanswered.clear()
                waiting = await pending(client, unanswered)
                await asyncio.sleep(0.2)
        assert request.id in {r.id for r in waiting}
        assert all(r.workflow_id != orphan.id for r in waiting)
        await live.terminate("test done")
    await orphan.terminate("test done")
