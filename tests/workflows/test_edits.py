"""Edit before approving: an approver fixes the draft instead of only approving or rejecting.

The edit is checked like the call was (the tool's schema, the policy), fields the tool
locks stay as they are (an email's `to`), the request gets a new digest and only the
edited call counts: approvals of the old arguments no longer do, and the worker that acts
checks the edit too. History and the trace show the original, the edit and who made it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from typer.testing import CliRunner

from steward.cli import app
from steward.config import StewardConfig
from steward.models import ApprovalDecision, ApprovalRequest, DecisionReceipt
from steward.runs import RunError, decide, start_run
from steward.trace import build_trace, render_text
from tests.support.fake_model import FakeModel
from tests.support.histories import readable_history
from tests.support.identity import people, with_identity
from tests.support.stack import (
    mail_text,
    outbox_messages,
    running_workers,
    wait_for_approval,
    with_send_approval,
)
from tests.workflows.test_support import DRAFT, TICKET, queue_happy_path

FIXED = "Hello Dana,\n\nSorry for the delay: your parcel leaves today.\n"


def edit(request: ApprovalRequest, approver: str, **changes: object) -> ApprovalDecision:
    return ApprovalDecision(
        request_id=request.id,
        args_digest=request.args_digest,
        approver=approver,
        approve=True,
        arguments=request.arguments | changes,
    )


async def refused(handle: object, decision: ApprovalDecision) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update("decide", decision)  # type: ignore[attr-defined]
    return str(caught.value.cause)


async def test_an_approved_edit_is_what_gets_sent_and_the_trace_shows_it(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        assert request.locked == ["to"]
        # what no edit may do: redirect the email, break the schema, edit a rejection
        assert "to cannot be edited" in await refused(
            handle, edit(request, "alice", to="mallory@example.com")
        )
        assert "subject" in await refused(handle, edit(request, "alice", subject=""))
        with pytest.raises(ValidationError, match="reject without one"):
            ApprovalDecision.model_validate(
                edit(request, "alice").model_dump() | {"approve": False}
            )
        receipt = await handle.execute_update(
            "decide", edit(request, "alice", body=FIXED), result_type=DecisionReceipt
        )
        result = await handle.result()
        history = await readable_history(handle)

    assert receipt.status == "approved" and receipt.args_digest != request.args_digest
    (action,) = result.actions
    assert action.outcome == "done" and action.args_digest == receipt.args_digest
    (outcome,) = result.approvals
    assert outcome.arguments is not None and outcome.arguments["body"] == FIXED
    (edited,) = outcome.edits
    assert edited.by == "alice" and edited.fields == ["body"]
    assert edited.before_digest == request.args_digest
    (sent,) = outbox_messages(config)
    text = mail_text(sent)
    assert "parcel leaves today" in text and DRAFT.strip() not in text

    trace = build_trace(history)
    (approval,) = trace.approvals
    assert approval.original_arguments is not None
    assert approval.original_arguments["body"] == DRAFT.strip()
    assert approval.arguments["body"] == FIXED
    counted = [d for d in approval.decisions if d.counted]
    assert [d.edited for d in counted] == [["body"]]
    rendered = render_text(trace)
    assert "edited body:" in rendered
    assert "+Sorry for the delay: your parcel leaves today." in rendered
    assert "-We are sorry for the delay; a refund of the express fee is on its way." in rendered


async def test_an_edit_resets_earlier_approvals_and_the_acting_worker_checks_it(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two of the group must approve, signed: an edit by one needs the other's approval of
    the edit, and the privileged worker counts both signatures over the edited arguments.
    """
    monkeypatch.setenv("STEWARD_KEYS_DIR", str(tmp_path / "keys"))
    keys = people(tmp_path / "keys", "alice", "demo-approver")
    strict = with_identity(config, keys)
    strict = with_send_approval(strict, group="support-leads", required=2, signed=True)
    queue_happy_path(fake_model)
    async with running_workers(client, strict, task_queue):
        handle = await start_run(
            client, strict, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        await decide(client, request.id, "demo-approver", approve=True)  # the original
        _, receipt = await decide(
            client, request.id, "alice", approve=True, arguments=request.arguments | {"body": FIXED}
        )
        assert receipt.status == "awaiting_more" and receipt.approved_by == ["alice"]
        # the first approval was for arguments nobody will send: it must be given again,
        # and a digest of the old arguments no longer matches
        with pytest.raises(RunError, match="argument digest does not match"):
            await decide(
                client, request.id, "demo-approver", approve=True, digest=request.args_digest
            )
        _, done = await decide(client, request.id, "demo-approver", approve=True)
        result = await handle.result()

    assert done.status == "approved" and done.approved_by == ["alice", "demo-approver"]
    (action,) = result.actions
    assert action.outcome == "done", action.reason
    (sent,) = outbox_messages(strict)
    assert "parcel leaves today" in mail_text(sent)


async def test_steward_approve_edit_opens_the_editor(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An "editor" that replaces the body, as a person would in $EDITOR.
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import json, sys\n"
        "path = sys.argv[-1]\n"
        "args = json.load(open(path))\n"
        f"args['body'] = {FIXED!r}\n"
        "json.dump(args, open(path, 'w'))\n"
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.delenv("VISUAL", raising=False)
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        address = client.service_client.config.target_host
        outcome = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["approve", request.id, "--as", "alice", "--edit"],
            env={"TEMPORAL_ADDRESS": address},
        )
        assert outcome.exit_code == 0, outcome.output
        assert "edited: send_email now waits on digest" in outcome.output
        result = await handle.result()

    assert result.status == "completed"
    (approved,) = result.approvals
    assert approved.arguments is not None and approved.arguments["body"] == FIXED
    (sent,) = outbox_messages(config)
    assert "parcel leaves today" in mail_text(sent)
