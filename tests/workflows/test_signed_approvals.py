"""Signed approvals: a decision counts only with a valid signature by its approver's key,
checked on the privileged worker; forged, moved and replayed signatures are refused."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from steward import signing
from steward.config import StewardConfig
from steward.models import ApprovalDecision, ApprovalRequest
from steward.runs import RunError, decide, start_run
from tests.support.fake_model import FakeModel
from tests.support.stack import (
    outbox_messages,
    running_workers,
    wait_for_approval,
    wait_for_refusals,
)
from tests.workflows.test_support import TICKET, queue_happy_path

ALICE_KEY = "alice-key-6f1b0c2d9e"
DEMO_KEY = "demo-key-1a7c3e5f0b"


@pytest.fixture
def signed_config(config: StewardConfig, monkeypatch: pytest.MonkeyPatch) -> StewardConfig:
    # the privileged worker holds every approver's key; approvers hold only their own
    monkeypatch.setenv("KEY_ALICE", ALICE_KEY)
    monkeypatch.setenv("KEY_DEMO", DEMO_KEY)
    data = config.model_dump()
    data["tools"]["send_email"]["approval"] = {"group": "support-leads", "signed": True}
    data["approver_keys"] = {"alice": "KEY_ALICE", "demo-approver": "KEY_DEMO"}
    return StewardConfig.model_validate(data)


def decision(
    request: ApprovalRequest, approver: str, key: str | None, **changes: object
) -> ApprovalDecision:
    unsigned = ApprovalDecision(
        request_id=request.id, args_digest=request.args_digest, approver=approver, approve=True
    ).model_copy(update=changes)
    if key is None:
        return unsigned
    return unsigned.model_copy(update={"signature": signing.sign(key.encode(), unsigned)})


async def refused(handle: object, bad: ApprovalDecision) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update("decide", bad)  # type: ignore[attr-defined]
    return str(caught.value.cause)


async def test_signed_approval_and_forgeries(
    client: Client,
    signed_config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue_happy_path(fake_model)
    queue_happy_path(fake_model)
    async with running_workers(client, signed_config, task_queue):
        first = await start_run(
            client, signed_config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(first)
        assert request.signed
        second = await start_run(
            client, signed_config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        other = await wait_for_approval(second)

        assert "needs a decision signed" in await refused(first, decision(request, "alice", None))
        # alice's name, the demo approver's key: a forged signer
        assert "is not 'alice''s" in await refused(first, decision(request, "alice", DEMO_KEY))
        # a valid signature for the other run's request, moved onto this one
        moved = decision(other, "alice", ALICE_KEY).model_copy(update={"request_id": request.id})
        assert "is not 'alice''s" in await refused(first, moved)
        # a signature for "reject" does not approve
        flipped = decision(request, "alice", ALICE_KEY, approve=False).model_copy(
            update={"approve": True}
        )
        assert "is not 'alice''s" in await refused(first, flipped)
        # the same forgeries by signal are recorded, not applied
        await first.signal("decide", decision(request, "alice", DEMO_KEY))
        progress = await wait_for_refusals(first, 1)
        assert len(progress.pending) == 1 and outbox_messages(signed_config) == []

        # the CLI path signs with the approver's own key from their environment
        monkeypatch.delenv("STEWARD_APPROVAL_KEY", raising=False)
        with pytest.raises(RunError, match="STEWARD_APPROVAL_KEY"):
            await decide(client, request.id, "alice", approve=True)
        monkeypatch.setenv("STEWARD_APPROVAL_KEY", ALICE_KEY)
        _, receipt = await decide(client, request.id, "alice", approve=True)
        assert receipt is not None and receipt.status == "approved"
        result = await first.result()
        # replaying the very signature that worked is refused (here by Temporal itself: the
        # run is over; while a run goes on, the gate says "already decided")
        with pytest.raises((RPCError, WorkflowUpdateFailedError)):
            await first.execute_update("decide", decision(request, "alice", ALICE_KEY))
        await second.terminate("test done")
        history = (await first.fetch_history()).to_json()

    assert result.status == "completed"
    assert len(outbox_messages(signed_config)) == 1
    assert ALICE_KEY not in history and DEMO_KEY not in history
