"""Authority a client cannot forge, attacked the way a namespace user would: with the
plain `temporal` CLI and hand-written JSON.

The run input grants nothing: a profile, tools, approvers or a policy in it are refused,
so is a target the workers do not know; the workers resolve what a run may do from their
own steward.yaml. Each refused run fails at once with one clear line, its workflow task
never fails (no retry loop), and nothing is sent.
"""

from __future__ import annotations

import json
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from steward.config import StewardConfig
from steward.models import RunRequest, RunResult
from steward.runs import RunError, decide, sign_start, start_run
from steward.tools import default_specs
from tests.support.fake_model import FakeModel
from tests.support.identity import people, with_identity
from tests.support.stack import (
    activities_for_tests,
    outbox_messages,
    running_workers,
    wait_for_approval,
)
from tests.support.temporal_cli import temporal_cli
from tests.workflows.test_support import TICKET, queue_happy_path
from workers.build import build_workers

SEND = {"to": "victim@example.com", "subject": "Invoice", "body": "Pay now."}


def _allowing_profile(config: StewardConfig) -> dict[str, Any]:
    """The helpdesk's profile as a client could write it, with send_email set to allow."""
    profile = config.profile("helpdesk", default_specs()).model_dump(mode="json")
    for tool in profile["tools"]:
        tool["decision"] = "allow"
        tool["approval"] = None
    return profile


def hostile_inputs(config: StewardConfig) -> dict[str, tuple[str, dict[str, Any], str, str]]:
    """name -> (workflow type, run input, failure type, what the failure must say)."""
    base = {"target": "helpdesk", "input": "mail the invoice", "principal": "mallory"}
    return {
        "a profile with send_email allowed (the old input shape)": (
            "AgentWorkflow",
            {"input": "mail it", "principal": "mallory", "profile": _allowing_profile(config)},
            "BadInput",
            "profile: a run input carries only",
        ),
        "extra tools": (
            "AgentWorkflow",
            base | {"tools": [{"name": "send_email", "decision": "allow"}]},
            "BadInput",
            "tools: a run input carries only",
        ),
        "a widened approver group": (
            "AgentWorkflow",
            base | {"approvers": ["mallory"]},
            "BadInput",
            "approvers: a run input carries only",
        ),
        "signed: false": (
            "SupportReplyWorkflow",
            {"target": "support-reply", "input": TICKET, "principal": "m", "signed": False},
            "BadInput",
            "signed: a run input carries only",
        ),
        "an unknown target": (
            "AgentWorkflow",
            base | {"target": "root-shell"},
            "UnknownTarget",
            "unknown playbook or agent 'root-shell'",
        ),
        "a playbook started as an agent": (
            "AgentWorkflow",
            base | {"target": "support-reply", "input": TICKET},
            "UnknownTarget",
            "start it as SupportReplyWorkflow",
        ),
        "resume state in a fresh start": (
            "AgentWorkflow",
            base | {"resume": {"turn": 0, "messages": []}},
            "BadInput",
            "only a run's own continue-as-new carries state",
        ),
        "eval options on a production worker": (
            "AgentWorkflow",
            base | {"eval": {"approval_deadline_seconds": 1}},
            "BadInput",
            "honoured only by an eval worker",
        ),
        "not an object": ("AgentWorkflow", ["helpdesk"], "BadInput", "JSON object"),  # type: ignore[dict-item]
    }


async def test_hostile_run_inputs_are_refused_and_nothing_is_sent(
    env: WorkflowEnvironment, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    client = env.client
    # Were any input obeyed, the model would call send_email and the worker would send.
    for _ in range(20):
        fake_model.queue(json.dumps({"action": "send_email", "arguments": SEND}))
    async with running_workers(client, config, task_queue):
        for name, (workflow_type, sent, failure_type, says) in hostile_inputs(config).items():
            workflow_id = f"attack-{uuid.uuid4().hex[:8]}"
            code, out = await temporal_cli(
                env,
                "workflow",
                "start",
                "--type",
                workflow_type,
                "--task-queue",
                task_queue,
                "--workflow-id",
                workflow_id,
                "--input",
                json.dumps(sent),
            )
            assert code == 0, out
            handle = client.get_workflow_handle(workflow_id, result_type=RunResult)
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
            cause = failed.value.cause
            assert isinstance(cause, ApplicationError), name
            assert cause.type == failure_type, f"{name}: {cause}"
            assert says in cause.message, f"{name}: {cause.message}"
            assert "\n" not in cause.message and "Traceback" not in cause.message, name
            events = [event.event_type for event in (await handle.fetch_history()).events]
            assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in events, name
            scheduled = [
                event.activity_task_scheduled_event_attributes.activity_type.name
                for event in (await handle.fetch_history()).events
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            ]
            assert set(scheduled) <= {"resolve_run"}, f"{name}: {scheduled}"

    assert fake_model.pending == 20, "no model was called for any hostile input"
    assert outbox_messages(config) == []


async def test_the_workers_config_decides_not_the_clients(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    """A client whose steward.yaml allows send_email still gets the workers' approval."""
    lax = config.model_copy(deep=True)
    lax.tools["send_email"] = lax.tools["send_email"].model_copy(
        update={"decision": "allow", "approval": None}
    )
    fake_model.queue(json.dumps({"action": "send_email", "arguments": SEND}))
    fake_model.queue(json.dumps({"action": "answer", "answer": "done"}))
    async with running_workers(client, config, task_queue):
        handle = await start_run(client, lax, "helpdesk", "mail it", "dana", task_queue=task_queue)
        request = await wait_for_approval(handle)
        assert outbox_messages(config) == []
        assert request.tool == "send_email" and "alice" in request.approvers
        await decide(client, request.id, "alice", approve=False, reason="no")
        result = await handle.result()
    assert result.actions[0].outcome == "rejected"
    assert result.config_digest and result.config_digest == config.digest()
    assert outbox_messages(config) == []


# --- the worker that acts checks again, from its own config ---------------------------


async def _split_workers(
    client: Client, default: StewardConfig, privileged: StewardConfig, task_queue: str
) -> AsyncExitStack:
    """A default worker under one config and a privileged worker under another."""
    stack = AsyncExitStack()
    workers = [
        *build_workers(
            client, activities_for_tests(default), task_queue=task_queue, role="default"
        ),
        *build_workers(
            client, activities_for_tests(privileged), task_queue=task_queue, role="privileged"
        ),
    ]
    for worker in workers:
        await stack.enter_async_context(worker)
    return stack


def _with_send_email(config: StewardConfig, **settings: Any) -> StewardConfig:
    data = config.model_dump()
    data["tools"]["send_email"] = settings
    return StewardConfig.model_validate(data)


async def test_the_privileged_worker_refuses_a_tool_its_own_config_denies(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    default = _with_send_email(config, decision="allow")
    privileged = _with_send_email(config, decision="deny")
    fake_model.queue(json.dumps({"action": "send_email", "arguments": SEND}))
    fake_model.queue(json.dumps({"action": "answer", "answer": "tried"}))
    async with await _split_workers(client, default, privileged, task_queue):
        handle = await start_run(client, None, "helpdesk", "mail it", "dana", task_queue=task_queue)
        result = await handle.result()
        history = await handle.fetch_history()

    (action,) = result.actions
    assert (action.tool, action.decision, action.outcome) == ("send_email", "deny", "denied")
    assert "refused by this worker's config" in action.reason and "denied" in action.reason
    assert outbox_messages(default) == [] and outbox_messages(privileged) == []
    failed = [
        event.activity_task_failed_event_attributes.failure
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert failed and {f.application_failure_info.type for f in failed} == {"NotAuthorized"}
    assert all(not f.stack_trace for f in failed), "a refusal carries no trace of the worker"


async def test_the_privileged_worker_wants_the_approvals_its_own_config_asks_for(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    """One approval satisfies the default worker; the privileged worker wants two."""
    default = _with_send_email(config, approval={"group": "support-leads", "required": 1})
    privileged = _with_send_email(config, approval={"group": "support-leads", "required": 2})
    fake_model.queue(json.dumps({"action": "send_email", "arguments": SEND}))
    fake_model.queue(json.dumps({"action": "answer", "answer": "tried"}))
    async with await _split_workers(client, default, privileged, task_queue):
        handle = await start_run(client, None, "helpdesk", "mail it", "dana", task_queue=task_queue)
        request = await wait_for_approval(handle)
        await decide(client, request.id, "alice", approve=True)
        result = await handle.result()

    (action,) = result.actions
    assert action.outcome == "denied"
    assert "needs 2 approval(s)" in action.reason and "1 count here" in action.reason
    assert outbox_messages(default) == []


# --- verified requesters ---------------------------------------------------------------


async def test_signed_starts_prove_the_requester_who_then_cannot_approve(
    env: WorkflowEnvironment,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = env.client
    monkeypatch.setenv("STEWARD_KEYS_DIR", str(tmp_path / "keys"))
    keys = people(tmp_path / "keys", "alice", "demo-approver", "mallory")
    strict = with_identity(
        config,
        {name: keys[name] for name in ("alice", "demo-approver")},
        signed_approvals=["send"],
        signed_start=True,
    )
    queue_happy_path(fake_model)
    async with running_workers(client, strict, task_queue):
        # unsigned, from the plain CLI: refused before anything runs
        unsigned = {"target": "support-reply", "input": TICKET, "principal": "alice"}
        code, out = await temporal_cli(
            env,
            "workflow",
            "start",
            "--type",
            "SupportReplyWorkflow",
            "--task-queue",
            task_queue,
            "--workflow-id",
            "unsigned-start",
            "--input",
            json.dumps(unsigned),
        )
        assert code == 0, out
        await _fails_with(client, "unsigned-start", "UnsignedStart", "is not signed")

        # mallory signs a start claiming to be alice
        forged = sign_start(
            keys["mallory"],
            RunRequest(target="support-reply", input=TICKET, principal="alice"),
            "forged-start",
        )
        await client.start_workflow(
            "SupportReplyWorkflow", forged, id="forged-start", task_queue=task_queue
        )
        await _fails_with(client, "forged-start", "UnsignedStart", "is not 'alice''s")

        # alice's real signature, copied onto another workflow id
        copied = sign_start(
            keys["alice"],
            RunRequest(target="support-reply", input=TICKET, principal="alice"),
            "where-alice-signed",
        )
        await client.start_workflow(
            "SupportReplyWorkflow", copied, id="copied-start", task_queue=task_queue
        )
        await _fails_with(client, "copied-start", "UnsignedStart", "is not 'alice''s")

        # alice's own signed start: she asked, so she may not approve, even signed
        handle = await start_run(
            client,
            strict,
            "support-reply",
            TICKET,
            "alice",
            task_queue=task_queue,
            key=keys["alice"],
        )
        request = await wait_for_approval(handle)
        with pytest.raises(RunError, match="requested this action and cannot approve it"):
            await decide(client, request.id, "alice", approve=True)
        await decide(client, request.id, "demo-approver", approve=True)
        result = await handle.result()

    assert result.status == "completed"
    assert len(outbox_messages(strict)) == 1
    (sent,) = result.actions
    assert sent.outcome == "done"


async def _fails_with(client: Client, workflow_id: str, failure_type: str, says: str) -> None:
    handle = client.get_workflow_handle(workflow_id, result_type=RunResult)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == failure_type and says in cause.message, cause.message
