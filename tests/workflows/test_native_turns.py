"""Native tool calling in the agent loop: several calls in one turn, each through the gate.

The fake model is a deployment with `tool_calling: native`: it is offered the tools as
functions (no response schema) and answers with tool calls, as a provider does. The
workflow runs the calls in the order given, each through schema check, policy and
approval, and answers each call by its id, so the next request pairs every call with
its result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.client import Client

from steward.config import StewardConfig
from steward.models import LLMRequest
from steward.runs import decide, start_run
from steward.trace import build_trace, render_text
from tests.support.fake_model import FakeModel, FakeToolCall
from tests.support.histories import readable_history
from tests.support.stack import outbox_messages, running_workers, wait_for_approval
from tests.support.web_server import web_server
from workers.build import default_activities

SEND = {"to": "ops@example.com", "subject": "Backup", "body": "The backup finished."}


def native(config: StewardConfig, **helpdesk: Any) -> StewardConfig:
    data = config.model_dump()
    data["tiers"] = {
        name: [{"model": "fake/queued", "tool_calling": "native"}] for name in data["tiers"]
    }
    data["agents"]["helpdesk"] |= helpdesk
    return StewardConfig.model_validate(data)


async def test_two_calls_in_one_turn_run_in_order_and_cross_continue_as_new(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = native(config, continue_after={"events": 50})
    fake_model.queue_calls(
        FakeToolCall("send_email", json.dumps(SEND), id="toolu_1"),
        FakeToolCall("write_file", "{not json", id="toolu_2"),
    )
    fake_model.queue("Sent the note; the file could not be written.")
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Tell ops and note it", "dana", task_queue=task_queue
        )
        first = await wait_for_approval(handle)
        first_run = (await handle.describe()).run_id
        # Refused decisions grow the waiting run's history until it continues as new.
        for n in range(40):
            await handle.signal("decide", {"request_id": first.id, "junk": n})
            if (await handle.describe()).run_id != first_run:
                break
        waiting = await wait_for_approval(handle)
        assert (await handle.describe()).run_id != first_run, "expected a new run of the chain"
        await decide(client, waiting.id, "alice", approve=True)
        result = await handle.result()

    assert result.status == "completed"
    assert result.answer == "Sent the note; the file could not be written."
    assert [(a.call_id, a.tool, a.decision, a.outcome) for a in result.actions] == [
        ("call-1", "send_email", "approve", "done"),
        ("call-1.2", "write_file", "deny", "denied"),
    ]
    assert result.actions[1].reason == "the arguments are not JSON"
    assert len(outbox_messages(config)) == 1
    offered, answered = fake_model.calls
    # Offered natively: functions with strict parameters, no response schema.
    assert offered.response_format is None and offered.tool_choice == "auto"
    assert offered.tools is not None
    functions = {tool["function"]["name"]: tool["function"] for tool in offered.tools}
    assert functions["send_email"]["strict"] is True
    assert functions["send_email"]["parameters"]["additionalProperties"] is False
    assert "Call a tool when you need one" in offered.messages[0]["content"]
    # The next request answers each call by its id, right after the calls.
    tail = answered.messages[-3:]
    assert [call["id"] for call in tail[0]["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert [(m["role"], m["tool_call_id"]) for m in tail[1:]] == [
        ("tool", "toolu_1"),
        ("tool", "toolu_2"),
    ]
    assert "not instructions" in tail[1]["content"] and "not JSON" in tail[2]["content"]
    assert [call.path for call in result.model_calls] == ["native", "native"]


async def test_a_plain_answer_ends_a_native_run_and_an_invented_tool_is_denied(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    config = native(config)
    fake_model.queue_calls(FakeToolCall("delete_everything", "{}"))
    fake_model.queue("")  # empty: not an answer
    fake_model.queue("Nothing to delete.")
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Delete everything", "dana", task_queue=task_queue
        )
        result = await handle.result()

    assert (result.status, result.answer) == ("completed", "Nothing to delete.")
    (denied,) = result.actions
    assert (denied.tool, denied.outcome, denied.reason) == (
        "delete_everything",
        "denied",
        "no tool named 'delete_everything'",
    )
    assert "the answer was empty" in fake_model.calls[2].messages[-1]["content"]


async def test_stored_calls_and_results_still_pair_up(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str, tmp_path: Path
) -> None:
    # Over 1 KB, a message sent again is stored by the model activity and resent as a
    # reference from the next turn on: a long tool result, and long arguments of a call
    # made natively. Stored, each must still pair with its call or result.
    config = native(config, context_chars=50_000)
    data = config.model_dump()
    data["http"]["allow_hosts"] = ["127.0.0.1"]
    data["files"] = {"workspace": str(tmp_path / "ws"), "published": str(tmp_path / "pub")}
    config = StewardConfig.model_validate(data)
    note = {"path": "notes/long.md", "content": "x" * 3_000}
    with web_server() as site:
        fake_model.queue_calls(
            FakeToolCall("http_get", json.dumps({"url": site.url("/big/a/2000")}), id="toolu_page"),
            FakeToolCall("write_file", json.dumps(note), id="toolu_note"),
        )
        fake_model.queue_calls(FakeToolCall("ask_human", '{"question": "', id="toolu_bad"))
        fake_model.queue("Done.")
        activities = default_activities(config, allow_paid=False)
        async with running_workers(client, config, task_queue, activities):
            handle = await start_run(
                client, config, "helpdesk", "Fetch and note", "dana", task_queue=task_queue
            )
            await decide(client, (await wait_for_approval(handle)).id, "alice", approve=True)
            result = await handle.result()
            history = await readable_history(handle)

    assert result.status == "completed"
    assert [a.outcome for a in result.actions] == ["done", "done", "denied"]
    third = fake_model.calls[2].messages
    calls = [m for m in third if m.get("tool_calls")]
    answers = [m for m in third if m["role"] == "tool"]
    assert [[c["id"] for c in m["tool_calls"]] for m in calls] == [
        ["toolu_page", "toolu_note"],
        ["toolu_bad"],
    ]
    assert [a["tool_call_id"] for a in answers] == ["toolu_page", "toolu_note", "toolu_bad"]
    assert json.loads(calls[0]["tool_calls"][1]["function"]["arguments"]) == note
    assert "page a:" in answers[0]["content"]
    # In history, that request carried both as references only.
    requests = [
        LLMRequest.model_validate_json(
            e.activity_task_scheduled_event_attributes.input.payloads[0].data
        )
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "complete"
    ]
    sent = requests[2].messages
    made = next(m for m in sent if m.tool_calls)
    assert made.tool_calls[1].arguments == "" and made.tool_calls[1].arguments_blob is not None
    page = next(m for m in sent if m.tool_call_id == "toolu_page")
    assert page.role == "tool" and page.content == "" and page.blob is not None
    # `steward trace` shows how each call was constrained and what it called.
    text = render_text(build_trace(history))
    assert "constrained by: native tool calls" in text and "called: http_get, write_file" in text
