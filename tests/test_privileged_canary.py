"""Least privilege, end to end across processes: the default worker holds no privileged
credential and serves no privileged activity, and a secret given only to the privileged
worker reaches the SMTP server and nothing else.

Both workers run as separate processes through the real entry (`workers.run.main`, with
the fake model installed first), each with its own state directory, so each exports its
spans to its own JSON-lines file and writes its own log. The SMTP server is a real one on
loopback that requires a login. The password is a fresh random canary, set only in the
privileged process's environment. One run sends through the server; a second run meets a
refused login, so the tool's error lands in history. Then the canary is looked for in every
place a leak could surface: histories, results, the failure, both logs, both span files,
the outbox, the fake model's call log and `steward trace`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.history.v1 import History
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from steward import queues
from steward.config import StewardConfig
from steward.models import RunResult
from steward.runs import decide, start_run
from steward.trace import build_trace, render_json, render_text
from tests.support.histories import readable_history
from tests.support.role_worker import REGISTERED
from tests.support.smtp_server import Inbox, free_port
from tests.support.stack import wait_for_approval
from tests.workflows.test_support import DRAFT, TICKET
from workers.build import privileged_tools

REPO = Path(__file__).resolve().parent.parent
CANARY = f"pw-canary-{uuid.uuid4().hex}"
USER = "steward-mailer"
USER_ENV = "STEWARD_CANARY_SMTP_USER"
PASSWORD_ENV = "STEWARD_CANARY_SMTP_PASSWORD"
PROCESS_TIMEOUT = 15.0


@dataclass
class Attempt:
    """One login the server saw; the password itself is not kept."""

    login: str
    password_is_canary: bool
    accepted: bool


@dataclass
class Gate:
    """aiosmtpd authenticator: USER with the canary, while `accept` holds."""

    accept: bool = True
    attempts: list[Attempt] = field(default_factory=list)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        right = (data.login, data.password) == (USER.encode(), CANARY.encode())
        attempt = Attempt(
            data.login.decode(), data.password == CANARY.encode(), right and self.accept
        )
        self.attempts.append(attempt)
        return AuthResult(success=attempt.accepted, handled=False)


@contextmanager
def smtp_requiring_login(gate: Gate) -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback that takes mail only after `gate` lets a login in."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=gate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class RoleProcess:
    """`tests/support/role_worker.py` for one role, with its own state dir and log."""

    def __init__(self, tmp: Path, role: str) -> None:
        self.role = role
        self.home = tmp / f"home-{role}"
        self.log = tmp / f"worker-{role}.log"
        self.calls_log = tmp / f"model-calls-{role}.jsonl"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def spans(self) -> Path:
        """Where the real entry exports spans: the state directory's spans.jsonl."""
        return self.home / "spans.jsonl"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, queue: str, config: Path, env: dict[str, str], script: Path | None) -> None:
        self.home.mkdir()
        command = [sys.executable, "-m", "tests.support.role_worker"]
        if script is not None:
            command += ["--script", str(script), "--calls-log", str(self.calls_log)]
        command += ["--role", self.role, "--queue", queue, "--config", str(config)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env | {"STEWARD_HOME": str(self.home)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def environ(self) -> bytes:
        """The process's environment as the kernel holds it, once it has exec'd Python."""
        source = Path(f"/proc/{self.pid}/environ")
        for _ in range(100):  # empty between fork and exec
            if data := source.read_bytes():
                return data
            time.sleep(0.05)
        raise AssertionError(f"{self.role} worker has no environment yet")

    def stop(self) -> int | None:
        """SIGTERM (the entry drains, stops and flushes its spans); SIGKILL if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=PROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=PROCESS_TIMEOUT)
        return self.process.returncode

    def registered(self) -> dict[str, set[str]]:
        """Activity names per task queue, from the log lines the worker wrote when built."""
        prefix, _, _ = REGISTERED.partition("%s")
        found: dict[str, set[str]] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            _, marker, rest = line.partition(prefix)
            if marker:
                queue, _, names = rest.partition(": activities=")
                found[queue] = set(filter(None, names.split(",")))
        return found


def worker_config(config: StewardConfig, tmp: Path, smtp_port: int) -> Path:
    """The test config with `smtp:` on the loopback server and every path under tmp."""
    data = config.model_dump(mode="json", exclude_none=True)
    data["smtp"] = {
        "host": "127.0.0.1",
        "port": smtp_port,
        "starttls": False,  # allowed for loopback only
        "username_env": USER_ENV,
        "password_env": PASSWORD_ENV,
        "timeout_seconds": 5,
    }
    data["files"] |= {"workspace": str(tmp / "workspace"), "published": str(tmp / "published")}
    path = tmp / "steward.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def approve_and_wait(client: Client, handle: WorkflowHandle[Any, RunResult]) -> RunResult:
    request = await wait_for_approval(handle, timeout=60)
    assert request.tool == "send_email"
    await decide(client, request.id, "demo-approver", approve=True)
    return await asyncio.wait_for(handle.result(), timeout=30)


async def poller_identities(client: Client, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
        )
    )
    return {poller.identity for poller in response.pollers}


def history_text(history: WorkflowHistory) -> str:
    """Every string in a history, payloads included.

    The JSON form alone is not enough: it carries payload data base64-encoded, where a
    plain substring search would never find a secret. The protobuf bytes hold it as is.
    """
    raw = History(events=history.events).SerializeToString().decode("utf-8", "replace")
    return history.to_json() + "\n" + raw


def of_process(identities: set[str], pid: int) -> bool:
    # The SDK's default worker identity is "PID@HOST".
    return any(identity.startswith(f"{pid}@") for identity in identities)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc/PID/environ")
# Plain AUTH is what the config allows on loopback (starttls: false); aiosmtpd warns of it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_canary_given_only_to_the_privileged_worker_never_leaks(
    env: WorkflowEnvironment, config: StewardConfig, task_queue: str, tmp_path: Path
) -> None:
    client = env.client
    assert CANARY not in "".join(os.environ.values())  # only the child gets it, by hand
    gate = Gate()
    base_env = {
        name: value
        for name, value in os.environ.items()
        if name not in (USER_ENV, PASSWORD_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT")
    } | {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "PYTHONPATH": str(REPO),
    }
    classify = json.dumps({"category": "shipping", "urgency": "high"})
    script = tmp_path / "script.json"
    script.write_text(json.dumps([classify, DRAFT, classify, DRAFT]))
    default = RoleProcess(tmp_path, "default")
    privileged = RoleProcess(tmp_path, "privileged")
    privileged_queue = queues.privileged(task_queue)

    with smtp_requiring_login(gate) as (inbox, port):
        config_path = worker_config(config, tmp_path, port)
        try:
            default.start(task_queue, config_path, base_env, script)
            privileged.start(
                task_queue, config_path, base_env | {USER_ENV: USER, PASSWORD_ENV: CANARY}, None
            )
            # the credential is in the privileged process only, by value and by name
            assert CANARY.encode() in privileged.environ()
            default_environ = default.environ()
            assert CANARY.encode() not in default_environ
            assert PASSWORD_ENV.encode() not in default_environ
            assert USER_ENV.encode() not in default_environ

            # (1) approved: the privileged worker logs in with the canary and sends
            sent = await start_run(
                client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
            )
            result = await approve_and_wait(client, sent)
            assert result.status == "completed", result
            (action,) = result.actions
            assert action.outcome == "done"
            assert f"through 127.0.0.1:{port}" in action.output
            assert [a for a in gate.attempts if a.accepted] == [Attempt(USER, True, True)]
            (received,) = inbox.received
            assert received.recipients == ["dana.whitfield@example.com"]
            assert "refund of the express fee" in received.message.get_content()

            # (2) the server now refuses that login: the tool fails, clearly, for good
            gate.accept = False
            refused = await start_run(
                client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
            )
            failed = await approve_and_wait(client, refused)
            assert failed.status == "failed", failed
            (action,) = failed.actions
            assert action.outcome == "failed"
            assert action.reason.startswith("SmtpAuthFailed: ")
            assert f"127.0.0.1:{port} refused the login" in action.reason
            assert f"{USER_ENV}/{PASSWORD_ENV}" in action.reason  # names, not values
            refusals = [a for a in gate.attempts if not a.accepted]
            assert refusals and all(a.password_is_canary for a in refusals)
            assert len(inbox.received) == 1

            # each queue is polled by its own process only
            activity, workflow = (
                TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
            on_privileged = await poller_identities(client, privileged_queue, activity)
            assert of_process(on_privileged, privileged.pid), on_privileged
            assert not of_process(on_privileged, default.pid), on_privileged
            assert not await poller_identities(client, privileged_queue, workflow)
            for kind in (activity, workflow):
                on_default = await poller_identities(client, task_queue, kind)
                assert of_process(on_default, default.pid), on_default
                assert not of_process(on_default, privileged.pid), on_default
        finally:
            codes = {p.role: p.stop() for p in (default, privileged)}
    assert codes == {"default": 0, "privileged": 0}, codes

    # the default process registered no privileged activity; the privileged one has them
    held_back = privileged_tools(config) | {"notify_approvers"}
    assert "send_email" in held_back
    default_registered = default.registered()
    privileged_registered = privileged.registered()
    assert set(default_registered) == {task_queue}, default_registered
    assert set(privileged_registered) == {privileged_queue}, privileged_registered
    assert "complete" in default_registered[task_queue]
    assert not held_back & default_registered[task_queue]
    assert held_back <= privileged_registered[privileged_queue]

    # the run left a trail in every place a leak could surface ...
    histories = [await readable_history(handle) for handle in (sent, refused)]
    traces = [build_trace(history) for history in histories]
    places: dict[str, str] = {
        "result": result.model_dump_json(),
        "failed run's result": failed.model_dump_json(),
        "trace of the failed run": render_text(traces[1]),
    }
    for handle, history, trace in zip((sent, refused), histories, traces, strict=True):
        places[f"history of {handle.id}"] = history_text(history)
        places[f"trace of {handle.id}"] = render_text(trace) + render_json(trace)
    for process in (default, privileged):
        places[f"{process.role} log"] = process.log.read_text(errors="replace")
        places[f"{process.role} spans"] = process.spans.read_text()
    places["model calls"] = default.calls_log.read_text()
    outbox = [path for path in Path(config.outbox).rglob("*") if path.is_file()]
    places |= {f"outbox {path.name}": path.read_text(errors="replace") for path in outbox}
    assert "SmtpAuthFailed" in places["trace of the failed run"]
    assert "RunActivity:send_email" in places["privileged spans"]
    assert "RunActivity:complete" in places["default spans"]
    assert "worker up: role=default" in places["default log"]
    assert "worker up: role=privileged" in places["privileged log"]
    assert any(path.parent.name == "sent" for path in outbox)  # the record of the send
    assert len(places["model calls"].splitlines()) == 4
    # ... and the canary is in none of them
    leaks = [where for where, text in places.items() if CANARY in text]
    assert not leaks, f"canary found in: {leaks}"
