"""Customer text is encrypted at rest: the support playbook runs against the embedded dev
server persisted to SQLite, with its codec server, and then neither the database files nor
a history export hold the ticket's or the draft's text; `steward trace` and the codec
server read it back. What stays plaintext by necessity (search attributes, memo, workflow
ids, activity summaries, user metadata) holds none of it either.

Both searches are checked against a control, so they cannot pass by looking in the wrong
place: a payload written without the codec is found in the same database, and the same
export search finds the draft in a committed plaintext history.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from typer.testing import CliRunner

from steward import devserver
from steward.cli import app
from steward.client import connect
from steward.codec import codec_from_environment, encrypted_key_id
from steward.config import StewardConfig
from steward.decoding import decode_history, history_payloads
from steward.plugin import StewardPlugin
from steward.runs import decide, start_run
from tests.support.codec_server import UI_ORIGIN
from tests.support.fake_model import FakeModel
from tests.support.stack import outbox_messages, running_workers, wait_for_approval

pytestmark = pytest.mark.timeout(180)

TICKET = """From: Marguerite Okonkwo-Lindqvist <marguerite.ol@example.com>
Subject: Zebra-striped teapot arrived in eleven pieces

Hello,

The zebra-striped teapot from order #77120 arrived in eleven pieces, wrapped in a
single sheet of newspaper. I would like a replacement before my aunt visits on Sunday.

Marguerite
"""
DRAFT = "Dear Marguerite,\n\nA replacement zebra-striped teapot leaves our warehouse tomorrow.\n"
# Phrases only the ticket or the draft contain: none may be found at rest.
NEEDLES = (
    "zebra-striped teapot",
    "Okonkwo-Lindqvist",
    "marguerite.ol@example.com",
    "eleven pieces",
    "aunt visits on Sunday",
    "leaves our warehouse tomorrow",
)
HISTORIES = Path(__file__).resolve().parent / "histories"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    server: devserver.DevServer
    codec_url: str
    client: Client
    state: Path


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """The embedded stack as `steward dev up` starts it: the codec server, then the dev
    server persisted to SQLite with its UI on the codec server; the tests' key ring."""
    state = tmp_path / "home"
    monkeypatch.setenv("STEWARD_HOME", str(state))
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    codec_server = devserver.start_codec_server(state, port=free_port(), origins=[UI_ORIGIN])
    try:
        server = devserver.start(
            state, port=free_port(), ui_port=free_port(), codec_endpoint=codec_server.url
        )
        try:
            yield Stack(server, codec_server.url, await connect(), state)
        finally:
            devserver.stop(state)
    finally:
        devserver.stop_codec_server(state)


def database_bytes(server: devserver.DevServer) -> bytes:
    """The SQLite database as stored: the file, its write-ahead log and shared memory."""
    files = sorted(server.db_path.parent.glob(server.db_path.name + "*"))
    assert server.db_path in files
    return b"".join(path.read_bytes() for path in files)


def export_texts(exported: str) -> Iterator[str]:
    """An exported history as a search must see it: the JSON, and every base64 field of it
    (payload data and metadata values) decoded."""
    yield exported

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and (key == "data" or key in ENCODED_KEYS):
                    yield base64.b64decode(value).decode("utf-8", errors="replace")
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    yield from walk(json.loads(exported))


ENCODED_KEYS = {"encoding", "encryption-key-id", "messageType", "type"}


def found(needles: tuple[str, ...], texts: list[str]) -> list[str]:
    return [needle for needle in needles if any(needle in text for text in texts)]


async def steward(*args: str, env: dict[str, str]) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    return result.exit_code, result.output


async def test_the_playbook_leaves_no_customer_text_at_rest(
    stack: Stack, config: StewardConfig, fake_model: FakeModel, task_queue: str, tmp_path: Path
) -> None:
    fake_model.queue(json.dumps({"category": "shipping", "urgency": "high"}))
    fake_model.queue(DRAFT)
    client = stack.client
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        assert request.arguments["to"] == "marguerite.ol@example.com"
        await decide(client, request.id, "alice", approve=True, reason="zebra-striped teapot ok")
        result = await handle.result()
    assert result.status == "completed" and len(outbox_messages(config)) == 1

    # Control: a payload written without the codec is plainly visible in this database.
    marker = f"plaintext-control-{uuid.uuid4().hex}"
    plain = await Client.connect(stack.server.address, plugins=[StewardPlugin(None)])
    await plain.start_workflow("NoWorkerNeeded", marker, id=marker, task_queue="nobody-polls")
    async with asyncio.timeout(30):  # the server writes it to SQLite as it accepts it
        while marker.encode() not in database_bytes(stack.server):
            await asyncio.sleep(0.2)
    assert handle.id.encode() in database_bytes(stack.server)  # ids are stored in plaintext

    # The database holds none of the ticket or the draft.
    stored = database_bytes(stack.server)
    assert [n for n in NEEDLES if n.encode() in stored] == []
    assert [n for n in NEEDLES if n.encode("utf-16-le") in stored] == []

    # Nor does a history export, searched payload by payload.
    server_env = {"TEMPORAL_ADDRESS": stack.server.address}
    exported = tmp_path / "export.json"
    code, out = await steward("history", "export", handle.id, "-o", str(exported), env=server_env)
    assert code == 0, out
    assert found(NEEDLES, list(export_texts(exported.read_text()))) == []
    # (control: the same search finds a committed, plaintext draft)
    committed = list(export_texts((HISTORIES / "support-approved.json").read_text()))
    assert found(("refund of the express fee",), committed) == ["refund of the express fee"]

    # `steward trace` reads it all back, from the server and from the export.
    for target in (handle.id, str(exported)):
        code, trace = await steward("trace", target, "--workflow-id", handle.id, env=server_env)
        assert code == 0, trace
        assert "marguerite.ol@example.com" in trace
        assert "A replacement zebra-striped teapot leaves our warehouse tomorrow." in trace
        assert "zebra-striped teapot ok" in trace  # the approver's reason

    # So does the codec server, given the stored payloads, as the Temporal UI asks.
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    scheduled = {
        event.activity_task_scheduled_event_attributes.activity_type.name: (
            event.activity_task_scheduled_event_attributes.input.payloads[0]
        )
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    sent = [started.input.payloads[0], scheduled["send_email"]]
    answer = httpx.post(
        f"{stack.codec_url}/decode",
        json={"payloads": [json_format.MessageToDict(p) for p in sent]},
        headers={"Origin": UI_ORIGIN, "X-Namespace": "default"},
    )
    assert answer.status_code == 200
    run_input, send = (json.loads(base64.b64decode(p["data"])) for p in answer.json()["payloads"])
    assert run_input["input"] == TICKET
    assert send["call"]["arguments"]["body"] == DRAFT.strip()
    assert answer.headers["access-control-allow-origin"] == UI_ORIGIN

    # What is plaintext by necessity holds no customer text: search attributes (indexed by
    # the server), workflow ids, memo, activity summaries and other user metadata (read
    # here decrypted, to check what Steward puts there, not only what is stored).
    # (summaries are encrypted too, in this SDK; the rule holds for readers without it)
    summaries = [e.user_metadata.summary for e in history.events if e.user_metadata.summary.data]
    assert summaries and {encrypted_key_id(p) for p in summaries} == {"test-1"}
    readable = await decode_history(history, codec_from_environment())
    described = await handle.describe()
    plaintext = [
        handle.id,
        json.dumps(described.search_attributes, default=str),
        json.dumps(await described.memo(), default=str),
    ]
    for event in readable.events:
        metadata = event.user_metadata
        plaintext += [p.data.decode() for p in (metadata.summary, metadata.details) if p.data]
        fields = []
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            upsert = event.upsert_workflow_search_attributes_event_attributes
            fields = list(upsert.search_attributes.indexed_fields.values())
        elif event.HasField("workflow_execution_started_event_attributes"):
            start = event.workflow_execution_started_event_attributes
            fields = [*start.search_attributes.indexed_fields.values(), *start.memo.fields.values()]
        plaintext += [p.data.decode() for p in fields]
    assert any("send_email (" in text for text in plaintext)  # the summaries were read
    assert any("awaiting_approval" in text for text in plaintext)  # and the upserts
    assert found(NEEDLES, plaintext) == []


async def test_payloads_in_the_database_carry_the_rings_key(stack: Stack) -> None:
    """Every payload a Steward client writes is encrypted with the newest key of the ring,
    except search attributes, which the server must index."""
    handle = await stack.client.start_workflow(
        "NoWorkerNeeded",
        {"ticket": TICKET},
        id=f"at-rest-{uuid.uuid4().hex[:8]}",
        task_queue="nobody-polls",
        memo={"note": "zebra-striped teapot"},
        static_summary="zebra-striped teapot",
    )
    history: WorkflowHistory = await handle.fetch_history()
    payloads = history_payloads(history)
    assert payloads  # input, memo, summary
    assert {p.metadata["encoding"] for p in payloads} == {b"binary/encrypted"}
    assert {p.metadata["encryption-key-id"] for p in payloads} == {b"test-1"}
