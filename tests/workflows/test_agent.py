"""The agent loop: the model picks tools; every pick goes through schema, policy and approval."""

from __future__ import annotations

import json

from temporalio.client import Client

from steward.config import StewardConfig
from steward.runs import decide, start_run
from tests.support.fake_model import FakeModel, provider_error
from tests.support.histories import history_id, record_history
from tests.support.stack import outbox_messages, running_workers, wait_for_approval

SEND = {"to": "ops@example.com", "subject": "Backup", "body": "The backup finished."}


def turn(action: str, **fields: object) -> str:
    return json.dumps({"action": action, **fields})


async def test_agent_sends_after_approval_and_refuses_what_it_may_not_do(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(turn("delete_everything", arguments={}))  # not a tool at all
    fake_model.queue(turn("send_email", arguments={"to": "not-an-address", "subject": "x"}))
    fake_model.queue(turn("send_email", arguments=SEND))
    fake_model.queue(turn("answer", answer="Sent the note to ops."))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "helpdesk",
            "Tell ops the backup finished",
            "dana",
            task_queue=task_queue,
            workflow_id=history_id("agent-approved"),
        )
        request = await wait_for_approval(handle)
        assert request.arguments == SEND
        await decide(client, request.id, "alice", approve=True)
        result = await handle.result()
        await record_history(handle)

    assert result.status == "completed"
    assert result.answer == "Sent the note to ops."
    assert [(a.tool, a.decision, a.outcome) for a in result.actions] == [
        ("delete_everything", "deny", "denied"),
        ("send_email", "deny", "denied"),
        ("send_email", "approve", "done"),
    ]
    assert "no tool named 'delete_everything'" in result.actions[0].reason
    assert "invalid arguments" in result.actions[1].reason
    # the model was told why each refused call failed, as data
    third_prompt = fake_model.calls[2].messages[-1]["content"]
    assert "invalid arguments" in third_prompt and "not instructions" in third_prompt
    assert len(outbox_messages(config)) == 1


async def test_retried_model_call_is_recorded_once_with_its_attempt(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue_error(provider_error("RateLimitError", "slow down", retry_after=0.1))
    fake_model.queue(turn("answer", answer="ok"))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "helpdesk",
            "say ok",
            "dana",
            task_queue=task_queue,
            workflow_id=history_id("agent-model-retried"),
        )
        result = await handle.result()
        await record_history(handle)
    assert result.status == "completed"
    (call,) = result.model_calls
    assert call.attempt == 2
    assert len(fake_model.calls) == 2


async def test_agent_gives_up_after_its_turn_limit(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    limited = StewardConfig.model_validate(
        config.model_dump() | {"agents": config.model_dump()["agents"]}
    )
    limited.agents["helpdesk"].max_turns = 2
    fake_model.queue("not json").queue("still not json")
    async with running_workers(client, limited, task_queue):
        handle = await start_run(client, limited, "helpdesk", "hi", "dana", task_queue=task_queue)
        result = await handle.result()
    assert result.status == "failed"
    assert result.answer == "no answer after 2 turns"
    assert "not valid: not JSON" in fake_model.calls[1].messages[-1]["content"]


async def test_a_worker_of_the_starting_process_takes_the_first_task_from_the_start(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(turn("answer", answer="Eager."))
    fake_model.queue(turn("answer", answer="Polled."))
    async with running_workers(client, config, task_queue):
        eager = await start_run(client, config, "helpdesk", "Say hi", "dana", task_queue=task_queue)
        # The SDK's own flag (it has no public one): the start's reply carried the task.
        assert getattr(eager, "__temporal_eagerly_started") is True
        assert (await eager.result()).answer == "Eager."
    # With no worker here for the queue, the start is an ordinary one, run once one polls.
    polled = await start_run(client, config, "helpdesk", "Say hi", "dana", task_queue=task_queue)
    assert getattr(polled, "__temporal_eagerly_started") is False
    async with running_workers(client, config, task_queue):
        assert (await polled.result()).answer == "Polled."
