"""The `steward` CLI as a user runs it: help, refusals of bad input, and the approval loop."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from steward.cli import app
from steward.config import StewardConfig
from steward.models import MAX_INPUT_CHARS
from steward.runs import start_run
from tests.support.fake_model import FakeModel
from tests.support.stack import outbox_messages, running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = str(REPO / "examples" / "steward.yaml")
runner = CliRunner()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([], "Start runs, approve actions"),
        (["run"], "Start a run of a playbook or agent"),
        (["status"], "Show a run"),
        (["watch"], "Print a run's events as they happen"),
        (["pending"], "List approvals waiting"),
        (["approve"], "Approve one waiting action"),
        (["reject"], "Reject one waiting action"),
        (["reply"], "Reply to a question a run is waiting on"),
        (["dev"], "up"),
        (["worker"], "Run workers until Ctrl-C"),
        (["demo"], "end to end"),
    ],
)
def test_every_command_explains_itself(command: list[str], expected: str) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert expected in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "hello"], "unknown playbook or agent 'nope'"),
        (["helpdesk", "   "], "input is empty"),
        (["support-reply", "no headers here"], "bad ticket"),
        (["helpdesk", "@missing-file.txt"], "no such file"),
    ],
)
def test_run_refuses_bad_input_before_starting(args: list[str], message: str) -> None:
    # TEMPORAL_ADDRESS points nowhere: a refusal must come before any connection
    result = runner.invoke(
        app, ["run", *args, "--config", EXAMPLE], env={"TEMPORAL_ADDRESS": "127.0.0.1:9"}
    )
    assert result.exit_code == 2
    assert message in result.output


def test_run_refuses_oversized_input(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * (MAX_INPUT_CHARS + 1))
    result = runner.invoke(
        app,
        ["run", "helpdesk", f"@{big}", "--config", EXAMPLE],
        env={"TEMPORAL_ADDRESS": "127.0.0.1:9"},
    )
    assert result.exit_code == 2
    assert "the limit is 1,000,000" in result.output


async def steward(env: WorkflowEnvironment, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "steward.cli",
        *args,
        env=os.environ | {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_pending_approve_and_status_from_the_cli(
    env: WorkflowEnvironment,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)

        async with asyncio.timeout(20):  # visibility is eventually consistent
            while True:
                code, out = await steward(env, "pending")
                if request.id in out:
                    break
                await asyncio.sleep(0.2)
        assert code == 0 and "send_email" in out and "dana.whitfield@example.com" in out

        code, out = await steward(env, "approve", request.id, "--as", "mallory")
        assert code == 2 and "not an allowed approver" in out
        code, out = await steward(env, "approve", request.id, "--as", "demo-user")
        assert code == 2 and "cannot approve it" in out
        code, out = await steward(env, "approve", request.id, "--as", "demo-approver")
        assert code == 0 and "approved" in out, out
        await handle.result()

        code, out = await steward(env, "status", handle.id)
        assert code == 0 and "completed" in out and "send_email -> done" in out
        code, out = await steward(env, "approve", request.id, "--as", "demo-approver")
        assert code == 2

    assert len(outbox_messages(config)) == 1
