"""MCP tools in agent runs: described once into history, schema-checked, policy-gated."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from steward.config import StewardConfig
from steward.runs import RunError, build_request, decide, start_run
from tests.support.fake_model import FakeModel
from tests.support.histories import history_id, readable_history, record_history
from tests.support.stack import running_workers, wait_for_approval

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mcp_config(
    config: StewardConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> StewardConfig:
    monkeypatch.setenv("STEWARD_TEST_NOTES", str(tmp_path / "notes.jsonl"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    data = config.model_dump()
    data["mcp_servers"] = {
        "notes": {
            "command": [sys.executable, "-m", "tests.support.mcp_server"],
            "env": {"NOTES_FILE": "STEWARD_TEST_NOTES"},
            "tools": {
                "add_note": {"risk": "write", "approval": {"group": "support-leads"}},
                "list_notes": {"risk": "read"},
            },
        }
    }
    data["agents"]["helpdesk"]["tools"] = ["notes.list_notes", "notes.add_note"]
    return StewardConfig.model_validate(data)


def turn(action: str, **fields: object) -> str:
    return json.dumps({"action": action, **fields})


async def test_agent_uses_mcp_tools_through_policy(
    client: Client,
    mcp_config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
) -> None:
    fake_model.queue(turn("notes.delete_all_notes", arguments={}))  # not listed: invisible
    fake_model.queue(turn("notes.add_note", arguments={"text": 5}))  # fails the schema
    fake_model.queue(turn("notes.add_note", arguments={"text": "restock trail shoes"}))
    fake_model.queue(turn("notes.list_notes", arguments={}))
    fake_model.queue(turn("answer", answer="Noted."))
    async with running_workers(client, mcp_config, task_queue):
        handle = await start_run(
            client,
            mcp_config,
            "helpdesk",
            "Remember to restock",
            "dana",
            task_queue=task_queue,
            workflow_id=history_id("agent-mcp"),
        )
        request = await wait_for_approval(handle)
        assert request.tool == "notes.add_note"
        assert request.arguments == {"text": "restock trail shoes"}
        await decide(client, request.id, "alice", approve=True)
        result = await handle.result()
        await record_history(handle)
        history = await readable_history(handle)

    assert result.status == "completed"
    assert [(a.tool, a.decision, a.outcome) for a in result.actions] == [
        ("notes.delete_all_notes", "deny", "denied"),
        ("notes.add_note", "deny", "denied"),
        ("notes.add_note", "approve", "done"),
        ("notes.list_notes", "allow", "done"),
    ]
    assert "5 is not of type 'string'" in result.actions[1].reason
    assert result.actions[3].output == "restock trail shoes"
    notes = (tmp_path / "notes.jsonl").read_text().splitlines()
    assert [json.loads(line)["text"] for line in notes] == ["restock trail shoes"]
    # the model was offered exactly the listed tools, with the server's schema
    schema = fake_model.calls[0].response_format
    assert schema is not None
    offered = json.dumps(schema)
    assert "notes.add_note" in offered and "delete_all_notes" not in offered
    # the tools were described once, by an activity recorded in history
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled.count("describe_mcp_tools") == 1
    assert scheduled.count("call_mcp_tool") == 2


def test_unlisted_mcp_tools_cannot_be_granted(mcp_config: StewardConfig) -> None:
    data = mcp_config.model_dump()
    data["agents"]["helpdesk"]["tools"] = ["notes.delete_all_notes"]
    config = StewardConfig.model_validate(data)
    with pytest.raises(RunError, match="not an MCP tool listed under mcp_servers"):
        build_request(config, "helpdesk", "hi", "dana")


def test_mcp_server_needs_one_transport() -> None:
    with pytest.raises(ValueError, match="either command"):
        StewardConfig.model_validate(
            {
                "tiers": {"fast": [{"model": "m"}]},
                "mcp_servers": {
                    "x": {
                        "url": "http://127.0.0.1:1/mcp",
                        "command": ["a"],
                        "tools": {"t": {"risk": "read"}},
                    }
                },
            }
        )
