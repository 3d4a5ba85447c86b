"""The embedded dev server's lifecycle: start, reuse, status, stop, and a restart that keeps
every workflow and registers search attributes an older database lacks. Also its refusals:
a port held by another program, a server that dies on start, a stale record.

Each test gets its own state directory and free ports, so nothing here touches the
session's server or a developer's running one.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from typer.testing import CliRunner

from steward import codec, devserver
from steward import search_attributes as sa
from steward.cli import app
from steward.client import connect

pytestmark = pytest.mark.timeout(90)
runner = CliRunner()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state directory, also made the default one; any server left is stopped."""
    home = tmp_path / "steward-home"
    monkeypatch.setenv("STEWARD_HOME", str(home))
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    yield home
    devserver.stop(home)
    devserver.stop_codec_server(home)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def registered(client: Client) -> dict[str, int]:
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    return dict(response.custom_attributes)


async def test_start_reuse_stop_and_restart_keep_workflows(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ui_port = free_port(), free_port()
    # The first database knows only two of Steward's search attributes, as one made by an
    # older Steward would: the restart must register the rest.
    with monkeypatch.context() as older:
        older.setattr(sa, "ALL", sa.ALL[:2])
        server = devserver.start(state, port=port, ui_port=ui_port)

    assert not server.reused
    assert server.address == f"127.0.0.1:{port}"
    assert server.db_path == state / devserver.DB_FILE and server.db_path.is_file()
    assert devserver.status(state) == server
    assert devserver.default_address() == server.address
    with urllib.request.urlopen(server.ui_url, timeout=10) as page:
        assert page.status == 200

    again = devserver.start(state, port=port, ui_port=ui_port)
    assert again.reused and again.pid == server.pid

    status = runner.invoke(app, ["dev", "status"])
    assert status.exit_code == 0, status.output
    assert server.address in status.output

    client = await Client.connect(server.address)
    assert set(await registered(client)) >= {key.name for key in sa.ALL[:2]}
    workflow_id = f"survives-restart-{uuid.uuid4().hex[:8]}"
    await client.start_workflow("NoWorkerNeeded", id=workflow_id, task_queue="nobody-polls")

    assert devserver.stop(state)
    assert process_gone(server.pid)
    assert devserver.status(state) is None
    assert not (state / devserver.RECORD_FILE).exists()
    assert devserver.default_address() == devserver.DEFAULT_ADDRESS
    assert not devserver.stop(state)

    restarted = devserver.start(state, port=port, ui_port=ui_port)
    assert not restarted.reused and restarted.pid != server.pid
    assert restarted.db_path == server.db_path

    client = await Client.connect(restarted.address)
    described = await client.get_workflow_handle(workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    attributes = await registered(client)
    for key in sa.ALL:
        assert attributes.get(key.name) == key.indexed_value_type, key.name


def test_port_held_by_another_program_is_refused(state: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(devserver.DevServerError, match=f"port \\(--port\\) {port} .* in use"):
            devserver.start(state, port=port, ui_port=free_port())
    assert devserver.status(state) is None
    assert not (state / devserver.RECORD_FILE).exists()


def test_server_that_dies_on_start_shows_its_log(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = (*devserver.TUNING, ("--dynamic-config-value", "steward.broken=not-json"))
    monkeypatch.setattr(devserver, "TUNING", broken)
    with pytest.raises(devserver.DevServerError) as raised:
        devserver.start(state, port=free_port(), ui_port=free_port(), wait=20)
    message = str(raised.value)
    assert "exited before it answered" in message
    assert "steward.broken" in message  # the server's own complaint, from its log
    assert devserver.status(state) is None
    assert not (state / devserver.RECORD_FILE).exists()


def test_stale_or_unreadable_record_means_no_server(state: Path) -> None:
    state.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = {
        "address": "127.0.0.1:1",
        "ui_url": "http://127.0.0.1:2",
        "pid": dead.pid,
        "db_path": str(state / devserver.DB_FILE),
        "log_path": str(state / devserver.LOG_FILE),
    }
    (state / devserver.RECORD_FILE).write_text(json.dumps(record))
    assert devserver.status(state) is None
    assert devserver.default_address() == devserver.DEFAULT_ADDRESS

    # a live process that is not a dev server on this database (a recycled pid)
    record["pid"] = os.getpid()
    (state / devserver.RECORD_FILE).write_text(json.dumps(record))
    assert devserver.status(state) is None
    assert not devserver.stop(state)  # and it is never signalled
    assert not (state / devserver.RECORD_FILE).exists()

    (state / devserver.RECORD_FILE).write_text("{not json")
    assert devserver.status(state) is None
    assert devserver.default_address() == devserver.DEFAULT_ADDRESS


def test_cli_status_fails_when_nothing_runs(state: Path) -> None:
    status = runner.invoke(app, ["dev", "status"])
    assert status.exit_code == 1
    assert "steward dev up" in status.output
    down = runner.invoke(app, ["dev", "down"])
    assert down.exit_code == 0
    assert "No Temporal dev server running" in down.output


def test_binary_and_tuning_are_what_the_server_is_started_with() -> None:
    binary = devserver.temporal_binary()
    assert binary.name == "temporal" and os.access(binary, os.X_OK)
    args = devserver.tuning_args()
    assert args[args.index("history.transferProcessorMaxPollRPS=10000") - 1] == (
        "--dynamic-config-value"
    )
    assert len(args) == 2 * len(devserver.TUNING)


async def test_dev_up_makes_the_key_file_and_points_the_ui_at_a_codec_server(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ring comes from the dev key file here, as on a fresh clone.
    monkeypatch.delenv("STEWARD_CODEC_KEYS")
    port, ui_port, codec_port = free_port(), free_port(), free_port()
    ports = ["--port", str(port), "--ui-port", str(ui_port), "--codec-port", str(codec_port)]
    up = runner.invoke(app, ["dev", "up", *ports])
    assert up.exit_code == 0, up.output
    keys = state / codec.DEV_KEYS_FILE
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert "(created: keep it secret" in up.output
    codec_url = f"http://127.0.0.1:{codec_port}"
    assert f"codec:    {codec_url}" in up.output

    # the UI is told where to decode (the settings it serves to the browser)
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/api/v1/settings") as page:
        settings = json.loads(page.read())
    assert settings["Codec"]["Endpoint"] == codec_url
    codec_server = devserver.codec_server_status(state)
    assert codec_server is not None and devserver.codec_server_serving(codec_server)

    # a client of this server encrypts with the dev key, and the codec server reads it
    client = await connect()
    handle = await client.start_workflow(
        "NoWorkerNeeded", "a ticket's text", id=f"dev-{uuid.uuid4().hex[:8]}", task_queue="q"
    )
    started = (await handle.fetch_history()).events[0]
    (sealed,) = started.workflow_execution_started_event_attributes.input.payloads
    ring = codec.read_keyring(keys, "the dev key file")
    assert sealed.metadata["encryption-key-id"] == ring.newest.encode()
    as_json = json_format.MessageToDict(sealed)
    decoded = httpx.post(f"{codec_url}/decode", json={"payloads": [as_json]}).json()
    assert base64.b64decode(decoded["payloads"][0]["data"]) == b'"a ticket\'s text"'

    ring_text = keys.read_text()
    again = runner.invoke(app, ["dev", "up", *ports])
    assert again.exit_code == 0 and "reusing it" in again.output
    assert "(created" not in again.output and keys.read_text() == ring_text
    assert devserver.codec_server_status(state) == codec_server
    status = runner.invoke(app, ["dev", "status"])
    assert f"codec:    {codec_url}" in status.output

    down = runner.invoke(app, ["dev", "down"])
    assert down.exit_code == 0 and "Codec server stopped." in down.output
    assert process_gone(codec_server.pid)
    assert devserver.codec_server_status(state) is None
    assert keys.exists()  # the key stays: the database still needs it


def test_dev_up_with_encryption_off_starts_no_codec_server(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_CODEC", "off")
    ports = ["--port", str(free_port()), "--ui-port", str(free_port())]
    up = runner.invoke(app, ["dev", "up", *ports, "--codec-port", str(free_port())])
    assert up.exit_code == 0, up.output
    assert "codec" not in up.output
    assert devserver.codec_server_status(state) is None
    assert not (state / codec.DEV_KEYS_FILE).exists()
    server = devserver.status(state)
    assert server is not None and server.codec_endpoint == ""
