"""Every mistake a careless user can make at `steward` and at the workers' entry point ends
in one line on stderr naming what to fix, never a traceback: exit 2 when the input must
change, exit 1 when the operation failed (no Temporal server there).

Refusals of bad input run with TEMPORAL_ADDRESS pointing nowhere: had the command connected
first, it would have said it cannot reach Temporal (exit 1) instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from google.protobuf.any_pb2 import Any as AnyProto
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.errordetails.v1 import NamespaceNotFoundFailure, NotFoundFailure
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from steward.cli import app
from steward.codec import KeyRingError, MissingKey
from steward.config import ConfigError, StewardConfig
from steward.devserver import DevServerError
from steward.errors import (
    NotFound,
    OperationFailed,
    RequestError,
    StewardError,
    TemporalUnreachable,
)
from steward.exits import BAD_INPUT, FAILED, RPC_ERRORS, Explained, explain, steward_error
from steward.replay import HistoryError
from steward.runs import RunError, start_run
from steward.schedules import ScheduleError
from steward.signing import SigningKeyError
from tests.support.fake_model import FakeModel
from tests.support.stack import running_workers

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "steward.yaml"
NOWHERE = "127.0.0.1:9"
NOT_UTF8 = b"Subject: refund\n\n\xff\xfe caf\xe9\n"
runner = CliRunner()


def one_line(stderr: str) -> str:
    """The only line on stderr, which must be an `error: ...` line."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def steward(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    """`steward ARGS` in this process, against no server; (exit code, its error line)."""
    result = runner.invoke(app, list(args), env={"TEMPORAL_ADDRESS": NOWHERE}, input=stdin)
    assert result.stdout == "", result.stdout
    return result.exit_code, one_line(result.stderr)


def process(*argv: str, cwd: Path, **env: str) -> tuple[int, str]:
    """`python ARGV` as a user runs it from `cwd`; (exit code, its error line)."""
    done = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ | {"PYTHONPATH": str(REPO), **env},
        timeout=120,
        check=False,
    )
    return done.returncode, one_line(done.stderr)


async def on_server(env: WorkflowEnvironment, *args: str, cwd: Path = REPO) -> tuple[int, str]:
    """`steward ARGS` in its own process against the session's server."""
    spawned = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "steward.cli",
        *args,
        env=os.environ
        | {
            "PYTHONPATH": str(REPO),
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    _, err = await spawned.communicate()
    return spawned.returncode or 0, one_line(err.decode())


# --- input that is not what it should be ----------------------------------------------


def test_run_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    ticket = tmp_path / "ticket.txt"
    ticket.write_bytes(NOT_UTF8)
    code, line = steward("run", "helpdesk", f"@{ticket}", "--config", str(EXAMPLE))
    assert code == BAD_INPUT
    assert f"{ticket} is not UTF-8 text" in line


def test_run_refuses_standard_input_that_is_not_utf8() -> None:
    code, line = steward("run", "helpdesk", "-", "--config", str(EXAMPLE), stdin=NOT_UTF8)
    assert code == BAD_INPUT and "standard input is not UTF-8 text" in line


def test_demo_refuses_a_ticket_it_cannot_read(tmp_path: Path) -> None:
    code, line = steward("demo", "--ticket", str(tmp_path / "missing.txt"))
    assert code == BAD_INPUT and "no such file" in line
    ticket = tmp_path / "ticket.txt"
    ticket.write_bytes(NOT_UTF8)
    code, line = steward("demo", "--ticket", str(ticket))
    assert code == BAD_INPUT and "is not UTF-8 text" in line


def test_trace_refuses_a_history_that_is_not_text(tmp_path: Path) -> None:
    history = tmp_path / "run.json"
    history.write_bytes(NOT_UTF8)
    code, line = steward("trace", str(history))
    assert code == BAD_INPUT and "not UTF-8 text" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["reject", "support-reply-1:ab12cd34-1", "--as", "alice", "--reason", "r" * 5_000],
            "reason: String should have at most 2000 characters",
        ),
        (
            ["approve", "support-reply-1:ab12cd34-1", "--as", "a" * 300],
            "approver: String should have at most 200 characters",
        ),
        (
            [
                "approve",
                "support-reply-1:ab12cd34-1",
                "--as",
                "alice",
                "--signal",
                "--digest",
                "f" * 99,
            ],
            "args_digest: String should have at most 64 characters",
        ),
        (
            ["sign", "support-reply-1:ab12cd34-1", "--as", "a" * 300],
            "approver: String should have at most 200 characters",
        ),
        (["approve", "support-reply-1", "--as", "alice"], "is not an approval id"),
        (
            ["reply", "helpdesk-1", "x" * 10_001, "--as", "dana"],
            "text: String should have at most 10000 characters",
        ),
        (["reply", "helpdesk-1", "", "--as", "dana"], "text: String should have at least 1"),
        (
            ["reply", "helpdesk-1", "yes", "--as", "d" * 201, "--question", "q" * 301],
            "question_id: String should have at most 300 characters; sender: String",
        ),
    ],
)
def test_a_malformed_decision_or_reply_is_refused_before_anything_is_sent(
    args: list[str], expected: str
) -> None:
    code, line = steward(*args)
    assert code == BAD_INPUT and expected in line


# --- no server ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["pending"], ["status", "helpdesk-1"], ["approve", "helpdesk-1:ab12cd34-1", "--as", "a"]],
)
def test_no_server_is_a_failed_operation_that_says_where_and_what_to_start(
    args: list[str],
) -> None:
    code, line = steward(*args)
    assert code == FAILED
    assert f"cannot reach Temporal at {NOWHERE}" in line and "`steward dev up`" in line


def test_a_worker_with_no_server_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the worker makes its outbox and state here
    code, line = steward("worker", "--config", str(EXAMPLE))
    assert code == FAILED
    assert f"cannot reach Temporal at {NOWHERE}" in line and "`steward dev up`" in line


# --- workers refuse a config they cannot honour -----------------------------------------


def _example() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return loaded


def _granting(tool: str) -> str:
    config = _example()
    agents = config["agents"]
    assert isinstance(agents, dict)
    agents["researcher"]["tools"].append(tool)
    return yaml.safe_dump(config)


def _searching(collection: str) -> str:
    config = _example()
    agents = config["agents"]
    assert isinstance(agents, dict)
    agents["helpdesk"]["collections"].append(collection)
    return yaml.safe_dump(config)


def _setting(tool: str) -> str:
    config = _example()
    tools = config["tools"]
    assert isinstance(tools, dict)
    tools[tool] = {"decision": "allow"}
    return yaml.safe_dump(config)


BAD_CONFIGS = {
    "invalid YAML": ("tiers: [\n", "not valid YAML: line 2, column 1"),
    "an unknown tool granted": (_granting("launch_rockets"), "unknown tool 'launch_rockets'"),
    "an unknown MCP tool granted": (_granting("notes.add"), "'notes.add' is not an MCP tool"),
    "an unknown collection": (_searching("handbok"), "unknown collection 'handbok'"),
    "settings for a misspelt tool": (_setting("send_emial"), "tools.send_emial: no tool"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_workers_refuse_a_config_naming_what_is_wrong(tmp_path: Path, case: str) -> None:
    text, expected = BAD_CONFIGS[case]
    config = tmp_path / "steward.yaml"
    config.write_text(text, encoding="utf-8")
    code, line = steward("worker", "--config", str(config))
    assert code == BAD_INPUT
    assert expected in line
    assert line.startswith(f"error: {config}") or "agents." in line or "tools." in line


@pytest.mark.parametrize("case", ["invalid YAML", "an unknown tool granted"])
def test_python_m_workers_refuses_them_the_same_way(tmp_path: Path, case: str) -> None:
    text, expected = BAD_CONFIGS[case]
    config = tmp_path / "steward.yaml"
    config.write_text(text, encoding="utf-8")
    code, line = process(
        "-m", "workers", "--config", str(config), cwd=tmp_path, TEMPORAL_ADDRESS=NOWHERE
    )
    assert code == BAD_INPUT and expected in line


def test_workers_refuse_a_config_file_that_is_not_there(tmp_path: Path) -> None:
    code, line = steward("worker", "--config", str(tmp_path / "nope.yaml"))
    assert code == BAD_INPUT and "nope.yaml does not exist" in line


# --- on a server ---------------------------------------------------------------------------


async def test_run_refuses_an_id_whose_run_is_running_or_completed(
    env: WorkflowEnvironment,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    waiting = f"taken-{uuid.uuid4().hex[:8]}"
    # No worker on this queue: the run stays running.
    handle = await start_run(
        client, config, "helpdesk", "hello", "dana", task_queue=task_queue, workflow_id=waiting
    )
    code, line = await on_server(
        env,
        "run",
        "helpdesk",
        "again",
        "--id",
        waiting,
        "--queue",
        task_queue,
        "--config",
        str(EXAMPLE),
    )
    assert code == BAD_INPUT
    assert f"workflow id {waiting!r} is taken: its last run is running" in line
    await handle.terminate("test done")

    done = f"taken-{uuid.uuid4().hex[:8]}"
    fake_model.queue(json.dumps({"action": "answer", "answer": "Hello."}))
    async with running_workers(client, config, task_queue):
        finished = await start_run(
            client, config, "helpdesk", "hello", "dana", task_queue=task_queue, workflow_id=done
        )
        await finished.result()
    code, line = await on_server(
        env,
        "run",
        "helpdesk",
        "again",
        "--id",
        done,
        "--queue",
        task_queue,
        "--config",
        str(EXAMPLE),
    )
    assert code == BAD_INPUT
    assert f"workflow id {done!r} is taken: its last run is completed" in line


async def test_status_of_an_unknown_run_names_it(env: WorkflowEnvironment) -> None:
    code, line = await on_server(env, "status", "no-such-run-1234")
    assert code == BAD_INPUT and "no-such-run-1234" in line and "not found" in line


async def test_a_namespace_the_server_lacks_says_how_to_create_it(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    namespace = f"steward-absent-{uuid.uuid4().hex[:8]}"
    config = _example()
    config["environments"] = {"qa": {"namespace": namespace}}
    (tmp_path / "steward.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    for args in (["--env", "qa", "pending"], ["--env", "qa", "worker"]):
        code, line = await on_server(env, *args, cwd=tmp_path)
        assert code == BAD_INPUT, args
        assert f"namespace {namespace!r} does not exist" in line
        assert f"temporal operator namespace create --namespace {namespace}" in line


# --- the rules, one type at a time -----------------------------------------------------------


def _rpc(status: RPCStatusCode, *details: object) -> RPCError:
    packed = []
    for detail in details:
        wrapped = AnyProto()
        wrapped.Pack(detail)  # type: ignore[arg-type]
        packed.append(wrapped)
    raw = GrpcStatus(code=status.value, message="said", details=packed).SerializeToString()
    return RPCError("said", status, raw)


@pytest.mark.parametrize(
    ("error", "code", "expected"),
    [
        (ConfigError("steward.yaml: tiers: Field required"), BAD_INPUT, "tiers: Field required"),
        (RunError("bad run input"), BAD_INPUT, "bad run input"),
        (OperationFailed("ingest failed: disk full"), FAILED, "ingest failed"),
        (TemporalUnreachable("h:1", "refused"), FAILED, "cannot reach Temporal at h:1"),
        (ExceptionGroup("worker", [ConfigError("one")]), BAD_INPUT, "one"),
        (WorkflowAlreadyStartedError("w-1", "AgentWorkflow"), BAD_INPUT, "'w-1' is taken"),
        (
            WorkflowFailureError(cause=ApplicationError("budget exceeded")),
            FAILED,
            "the run failed: budget exceeded",
        ),
        (_rpc(RPCStatusCode.NOT_FOUND, NotFoundFailure()), BAD_INPUT, "Temporal said: said"),
        (_rpc(RPCStatusCode.INVALID_ARGUMENT), BAD_INPUT, "Temporal said: said"),
        (_rpc(RPCStatusCode.UNAUTHENTICATED), BAD_INPUT, "Temporal said: said"),
        (_rpc(RPCStatusCode.PERMISSION_DENIED), BAD_INPUT, "Temporal said: said"),
        (_rpc(RPCStatusCode.UNAVAILABLE), FAILED, "Temporal said: said"),
        (_rpc(RPCStatusCode.DEADLINE_EXCEEDED), FAILED, "Temporal said: said"),
        (
            _rpc(RPCStatusCode.NOT_FOUND, NamespaceNotFoundFailure(namespace="ns-x")),
            BAD_INPUT,
            "namespace 'ns-x' does not exist",
        ),
        (FileNotFoundError(2, "No such file or directory", "/x/y"), FAILED, "cannot use /x/y"),
    ],
)
def test_explain_decides_by_type(error: BaseException, code: int, expected: str) -> None:
    explained = explain(error)
    assert explained is not None
    assert explained.code == code and expected in explained.line


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        KeyError("x"),
        RuntimeError("connect"),
        ExceptionGroup("two", [ConfigError("a"), ConfigError("b")]),
    ],
)
def test_anything_else_keeps_its_traceback(error: BaseException) -> None:
    assert explain(error) is None


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConfigError("x"), RequestError),
        (RunError("x"), RequestError),
        (HistoryError("x"), RequestError),
        (ScheduleError("x"), RequestError),
        (SigningKeyError("x"), RequestError),
        (KeyRingError("x"), RequestError),
        (MissingKey("x", ["k1"]), RequestError),
        (DevServerError("x"), OperationFailed),
        (TemporalUnreachable("h:1", "refused"), OperationFailed),
    ],
)
def test_stewards_client_errors_are_steward_errors_of_their_kind(
    error: Exception, kind: type[StewardError]
) -> None:
    assert isinstance(error, kind)
    other = OperationFailed if kind is RequestError else RequestError
    assert not isinstance(error, other)


def test_the_kind_of_a_steward_error_decides_its_exit_code() -> None:
    """A new error needs no entry anywhere: its branch says what the CLI does."""

    class NoSuchWidget(NotFound):
        pass

    class WidgetServerDown(OperationFailed):
        pass

    assert explain(NoSuchWidget("no widget 'w'")) == Explained(BAD_INPUT, "no widget 'w'")
    assert explain(WidgetServerDown("down")) == Explained(FAILED, "down")


@pytest.mark.parametrize("status", list(RPCStatusCode), ids=lambda s: s.name)
def test_an_rpc_error_is_mapped_by_its_status_through_one_table(status: RPCStatusCode) -> None:
    mapped = steward_error(_rpc(status))
    assert isinstance(mapped, RPC_ERRORS.get(status, OperationFailed))
    assert str(mapped) == "Temporal said: said"


def test_an_unknown_run_and_a_missing_namespace_are_not_found() -> None:
    assert isinstance(steward_error(_rpc(RPCStatusCode.NOT_FOUND, NotFoundFailure())), NotFound)
    missing = steward_error(
        _rpc(RPCStatusCode.NOT_FOUND, NamespaceNotFoundFailure(namespace="ns-x"))
    )
    assert isinstance(missing, NotFound) and "namespace 'ns-x'" in str(missing)


def test_a_message_over_several_lines_is_printed_on_one() -> None:
    explained = explain(ConfigError("first\n  second\n\nthird"))
    assert explained is not None and explained.line == "first second third"
