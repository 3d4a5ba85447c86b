"""`steward replay`, `steward history export` and `steward trace` as a user runs them.

Every committed history replays from its file; a workflow edited in place without
`workflow.patched` is caught, with the event where it diverged and what history expected
there; a history whose ciphertext was damaged is reported, not replayed; a run on the
session server round-trips through export, trace and replay.
Commands run in-process (in a thread, since each runs its own event loop).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

import workers.build
from steward.cli import app
from steward.codec import codec_from_environment
from steward.config import StewardConfig
from steward.models import RunResult
from steward.replay import load_history, replay
from steward.runs import start_run
from steward.trace import Trace, build_trace
from tests.support.fake_model import FakeModel
from tests.support.histories import readable_history
from tests.support.stack import running_workers
from tests.test_replay import ChangedSupportReply
from workflows.agent import AgentWorkflow
from workflows.base import RunInput
from workflows.support import SupportReplyWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
ANSWER = json.dumps({"action": "answer", "answer": "backup done"})


async def steward(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_every_committed_history_replays_from_its_file(path: Path) -> None:
    code, out = await steward("replay", str(path))
    assert code == 0, out
    assert f"ok    {path.stem}" in out and "1 ok, 0 would break" in out


async def test_an_unpatched_change_fails_replay_and_names_the_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers.build, "ALL_WORKFLOWS", (ChangedSupportReply, AgentWorkflow))
    code, out = await steward("replay", str(HISTORIES / "support-approved.json"))
    assert code == 1, out
    assert "FAIL  support-approved" in out and "non-determinism at event 5" in out
    assert "expected (as in history): ACTIVITY_TASK_SCHEDULED of activity complete" in out
    assert "model call classify" in out
    assert "today's code: started a timer instead" in out
    assert "0 ok, 1 would break" in out


@activity.defn(name="audit")
async def audit(note: str) -> str:
    return note


@workflow.defn(name="SupportReplyWorkflow", sandboxed=False)
class AuditedSupportReply(SupportReplyWorkflow):
    """The playbook with a new activity in front: core's error names no event for this."""

    @workflow.run
    async def run(self, sent: RunInput) -> RunResult:
        await workflow.execute_activity(audit, "start", start_to_close_timeout=timedelta(seconds=5))
        return await super().run(sent)


async def test_replay_locates_a_divergence_the_error_does_not_place() -> None:
    history = load_history(HISTORIES / "support-approved.json")
    (report,) = await replay([history], workflows=[AuditedSupportReply])
    assert not report.ok and report.nondeterministic
    assert report.event_id == 5
    assert report.actual == "scheduled activity audit instead of complete"
    (same,) = await replay([history])
    assert same.ok and same.event_id is None


async def test_a_history_whose_ciphertext_does_not_authenticate_is_reported_not_replayed() -> None:
    history = load_history(HISTORIES / "support-approved.json")
    codec = codec_from_environment()
    assert codec is not None
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    damaged = codec.encrypt(started)
    damaged.data = damaged.data[:-1] + bytes([damaged.data[-1] ^ 1])
    started.CopyFrom(damaged)
    (report,) = await replay([history])
    assert not report.ok and not report.nondeterministic
    assert report.error_type == "CodecError" and "does not decrypt" in report.error


async def test_bad_files_are_refused_with_one_clear_line(tmp_path: Path) -> None:
    code, out = await steward("replay", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in out
    broken = tmp_path / "broken.json"
    broken.write_text('{"events": [{"eventId": "x"}]}')
    code, out = await steward("trace", str(broken))
    assert code == 2 and "is not a Temporal history in JSON" in out
    code, out = await steward("replay")
    assert code == 2 and "give a WORKFLOW_ID or FILE, or --query" in out


async def test_export_trace_and_replay_a_run_on_the_server(
    env: WorkflowEnvironment,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
) -> None:
    fake_model.queue(ANSWER)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Is the backup done?", "dana", task_queue=task_queue
        )
        await handle.result()
    server = {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host}

    exported = tmp_path / "exported.json"
    code, out = await steward("history", "export", handle.id, "-o", str(exported), env=server)
    assert code == 0 and f"of {handle.id} to {exported}" in out, out
    # The export is the history as stored: encrypted, as the server keeps it.
    stored = await handle.fetch_history()
    assert WorkflowHistory.from_json(handle.id, exported.read_text()).events == stored.events
    fetched = await readable_history(handle)

    page = tmp_path / "trace.html"
    args = ("--workflow-id", handle.id, "--html", str(page))
    code, from_file = await steward("trace", str(exported), *args)
    assert code == 0, from_file
    assert f"AgentWorkflow {handle.id}: completed" in from_file
    assert "model turn-1: tier strong -> fake/queued" in from_file
    assert "answer: backup done" in from_file
    assert "<!doctype html>" in page.read_text()
    code, from_server = await steward("trace", handle.id, env=server)
    assert code == 0 and from_server == from_file.replace(f"wrote {page}\n", "")
    code, as_json = await steward("trace", str(exported), "--workflow-id", handle.id, "--json")
    assert code == 0 and Trace.model_validate_json(as_json) == build_trace(fetched)

    code, out = await steward("replay", handle.id, env=server)
    assert code == 0 and f"ok    {handle.id}" in out, out
    query = f"WorkflowId = '{handle.id}'"
    async with asyncio.timeout(20):  # visibility is eventually consistent
        while (result := await steward("replay", "--query", query, env=server))[0] != 0:
            await asyncio.sleep(0.2)
    assert f"ok    {handle.id}" in result[1]
