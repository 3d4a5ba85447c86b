"""Durability against real faults: a worker killed with SIGKILL, a server restarted, and
secrets kept out of the server's database, the logs and the output.

These tests run workers as separate processes and a persisted dev server of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from temporalio.api.history.v1 import History
from temporalio.client import Client

from steward import devserver
from steward.client import connect
from steward.config import StewardConfig
from steward.models import RunResult
from steward.runs import decide, start_run
from tests.support.histories import readable_history
from tests.support.processes import ChildProcess
from tests.support.stack import outbox_messages, wait_for_approval
from tests.workflows.test_support import DRAFT, TICKET

REPO = Path(__file__).resolve().parent.parent
CANARY = "sk-canary-4f1d2c9e7b3a5d8f"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devserver.DevServer]:
    """A persisted dev server of this module's own, so it can be restarted and inspected."""
    state = tmp_path_factory.mktemp("steward-home")
    started = devserver.start(state, port=free_port(), ui_port=free_port())
    yield started
    devserver.stop(state)


@pytest.fixture
async def server_client(
    server: devserver.DevServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Client]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", server.address)
    yield await connect()


class WorkerProcess(ChildProcess):
    """Start, kill and restart `tests/support/worker_proc.py` against one server."""

    def __init__(self, tmp: Path, config: StewardConfig, queue: str, address: str) -> None:
        self.tmp = tmp
        self.queue = queue
        self.calls_log = tmp / "model-calls.jsonl"
        self.log = tmp / "worker.log"
        self.config_path = tmp / "steward.yaml"
        data = config.model_dump(mode="json", exclude_none=True)
        data["tools"]["send_email"]["timeout_seconds"] = 3  # a killed send is retried fast
        self.config_path.write_text(yaml.safe_dump(data))
        self.env = os.environ | {"TEMPORAL_ADDRESS": address, "PYTHONPATH": str(REPO)}
        super().__init__()

    def start(self, responses: list[str], *, send_delay: float = 0.0, **env: str) -> None:
        script = self.tmp / f"script-{len(responses)}-{send_delay}.json"
        script.write_text(json.dumps(responses))
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.worker_proc",
                    "--queue",
                    self.queue,
                    "--config",
                    str(self.config_path),
                    "--script",
                    str(script),
                    "--calls-log",
                    str(self.calls_log),
                    "--send-delay",
                    str(send_delay),
                ],
                cwd=REPO,
                env=self.env | env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def model_calls(self) -> int:
        return len(self.calls_log.read_text().splitlines()) if self.calls_log.exists() else 0


@pytest.fixture
def worker_process(
    tmp_path: Path, config: StewardConfig, task_queue: str, server: devserver.DevServer
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(tmp_path, config, task_queue, server.address)
    yield process
    process.stop()


async def wait_until(predicate: object, timeout: float = 30) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.1)


async def test_worker_killed_while_waiting_and_while_sending(
    server_client: Client, config: StewardConfig, worker_process: WorkerProcess, task_queue: str
) -> None:
    classify = json.dumps({"category": "shipping", "urgency": "high"})
    worker_process.start([classify, DRAFT], send_delay=60)
    handle = await start_run(
        server_client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
    )
    request = await wait_for_approval(handle, timeout=60)
    assert worker_process.model_calls() == 2

    # killed while the run waits for a human: the wait is in history, not in the worker
    worker_process.kill()
    worker_process.start([], send_delay=60)  # an empty script: any new model call fails
    await decide(server_client, request.id, "demo-approver", approve=True)

    # killed after the message is delivered but before the activity reports completion
    await wait_until(lambda: len(outbox_messages(config)) == 1)
    worker_process.kill()
    worker_process.start([])
    result = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.status == "completed"
    assert "already delivered by an earlier attempt" in result.actions[0].output
    assert worker_process.model_calls() == 2  # completed model calls were not made again
    assert len(outbox_messages(config)) == 1  # and the reply went out exactly once


async def test_server_restart_while_waiting(
    server: devserver.DevServer,
    server_client: Client,
    config: StewardConfig,
    worker_process: WorkerProcess,
    task_queue: str,
) -> None:
    classify = json.dumps({"category": "billing", "urgency": "low"})
    worker_process.start([classify, DRAFT])
    handle = await start_run(
        server_client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
    )
    request = await wait_for_approval(handle, timeout=60)

    state = server.db_path.parent
    worker_process.stop()
    assert devserver.stop(state)
    restarted = devserver.start(
        state,
        port=int(server.address.rsplit(":", 1)[1]),
        ui_port=int(server.ui_url.rsplit(":", 1)[1]),
    )
    assert restarted.db_path == server.db_path
    worker_process.start([])

    client = await connect()
    _, outcome = await decide(client, request.id, "demo-approver", approve=True)
    assert outcome is not None and outcome.status == "approved"
    resumed = client.get_workflow_handle(handle.id, result_type=RunResult)
    result = await asyncio.wait_for(resumed.result(), timeout=60)
    assert result.status == "completed"
    assert len(outbox_messages(config)) == 1


async def test_no_secret_in_history_logs_or_output(
    server: devserver.DevServer,
    server_client: Client,
    config: StewardConfig,
    worker_process: WorkerProcess,
    task_queue: str,
) -> None:
    # the fake deployment takes its key from the worker's environment, like a provider's
    data = yaml.safe_load(worker_process.config_path.read_text())
    for deployments in data["tiers"].values():
        for deployment in deployments:
            deployment["api_key_env"] = "OPENAI_API_KEY"
    worker_process.config_path.write_text(yaml.safe_dump(data))
    worker_process.start(
        [json.dumps({"category": "other", "urgency": "low"}), DRAFT], OPENAI_API_KEY=CANARY
    )
    handle = await start_run(
        server_client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
    )
    request = await wait_for_approval(handle, timeout=60)
    cli = subprocess.run(
        [sys.executable, "-m", "steward.cli", "approve", request.id, "--as", "demo-approver"],
        env=os.environ | {"TEMPORAL_ADDRESS": server.address, "OPENAI_API_KEY": CANARY},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert cli.returncode == 0, cli.stderr
    await asyncio.wait_for(handle.result(), timeout=60)
    worker_process.stop()

    # the key reached the model call (the fake saw it) ...
    assert CANARY in worker_process.calls_log.read_text()
    # ... and nowhere else
    fetched = await readable_history(handle)
    # to_json() keeps payloads base64-encoded, where a substring search cannot see them;
    # the raw bytes of the events show payload data as it is stored.
    raw = History(events=fetched.events).SerializeToString()
    assert CANARY.encode() not in raw
    assert CANARY not in fetched.to_json()
    for path in (server.db_path, server.log_path, worker_process.log, *outbox_messages(config)):
        assert CANARY.encode() not in path.read_bytes(), path.name
    assert CANARY not in cli.stdout + cli.stderr
