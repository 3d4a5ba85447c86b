"""Signed approvals: a decision counts only with its approver's Ed25519 signature, checked
against the public keys in the workers' config; forged, moved, flipped and replayed
signatures are refused, and nobody who only holds public keys can sign."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from steward import signing
from steward.authority import decision_message
from steward.config import StewardConfig
from steward.models import ApprovalDecision, ApprovalRequest, RunRequest, RunResult
from steward.runs import RunError, decide, start_run
from tests.support.fake_model import FakeModel
from tests.support.identity import people, with_identity
from tests.support.stack import (
    outbox_messages,
    running_workers,
    wait_for_approval,
    wait_for_refusals,
)
from tests.workflows.test_support import TICKET, queue_happy_path


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Ed25519PrivateKey]:
    # each person's private key on "their machine": the keys directory `steward` reads
    monkeypatch.setenv("STEWARD_KEYS_DIR", str(tmp_path / "keys"))
    return people(tmp_path / "keys", "alice", "demo-approver", "mallory")


@pytest.fixture
def signed_config(config: StewardConfig, keys: dict[str, Ed25519PrivateKey]) -> StewardConfig:
    signed = with_identity(config, {k: v for k, v in keys.items() if k != "mallory"})
    data = signed.model_dump()
    data["tools"]["send_email"]["approval"] = {"group": "support-leads", "signed": True}
    return StewardConfig.model_validate(data)


def decision(
    request: ApprovalRequest, approver: str, key: Ed25519PrivateKey | None, **changes: object
) -> ApprovalDecision:
    unsigned = ApprovalDecision(
        request_id=request.id, args_digest=request.args_digest, approver=approver, approve=True
    ).model_copy(update=changes)
    if key is None:
        return unsigned
    signature = signing.sign(key, decision_message(request, unsigned))
    return unsigned.model_copy(update={"signature": signature})


async def refused(handle: object, bad: ApprovalDecision) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update("decide", bad)  # type: ignore[attr-defined]
    return str(caught.value.cause)


async def test_signed_approval_and_forgeries(
    client: Client,
    signed_config: StewardConfig,
    keys: dict[str, Ed25519PrivateKey],
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice, demo, mallory = keys["alice"], keys["demo-approver"], keys["mallory"]
    queue_happy_path(fake_model)
    queue_happy_path(fake_model)
    async with running_workers(client, signed_config, task_queue):
        first = await start_run(
            client, signed_config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(first)
        assert request.signed and request.run_id
        second = await start_run(
            client, signed_config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        other = await wait_for_approval(second)

        assert "needs a decision signed" in await refused(first, decision(request, "alice", None))
        # alice's name, another approver's key: a forged signer
        assert "is not 'alice''s" in await refused(first, decision(request, "alice", demo))
        # someone whose key the config does not list, signing as alice
        assert "is not 'alice''s" in await refused(first, decision(request, "alice", mallory))
        # a valid signature for the other run's request, moved onto this one
        moved = decision(other, "alice", alice).model_copy(update={"request_id": request.id})
        assert "is not 'alice''s" in await refused(first, moved)
        # a signature for "reject" does not approve
        flipped = decision(request, "alice", alice, approve=False).model_copy(
            update={"approve": True}
        )
        assert "is not 'alice''s" in await refused(first, flipped)
        # the same forgeries by signal are recorded, not applied
        await first.signal("decide", decision(request, "alice", demo))
        progress = await wait_for_refusals(first, 6)
        assert len(progress.pending) == 1 and outbox_messages(signed_config) == []

        # the CLI signs with the approver's own key from their machine, or says it cannot
        monkeypatch.setenv("STEWARD_KEYS_DIR", str(tmp_path / "elsewhere"))
        with pytest.raises(RunError, match="keys new alice"):
            await decide(client, request.id, "alice", approve=True)
        monkeypatch.setenv("STEWARD_KEYS_DIR", str(tmp_path / "keys"))
        _, receipt = await decide(client, request.id, "alice", approve=True)
        assert receipt is not None and getattr(receipt, "status", None) == "approved"
        result = await first.result()
        # replaying the very signature that worked is refused (by Temporal: the run is over)
        with pytest.raises((RPCError, WorkflowUpdateFailedError)):
            await first.execute_update("decide", decision(request, "alice", alice))
        await second.terminate("test done")

    assert result.status == "completed"
    assert len(outbox_messages(signed_config)) == 1


async def test_a_reused_workflow_id_is_a_new_run_with_its_own_approvals_and_effects(
    client: Client,
    signed_config: StewardConfig,
    keys: dict[str, Ed25519PrivateKey],
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    """A second run with the first one's workflow id: the first run's signed approval does
    not count in it, and its own approved email is delivered (not taken for the first's).
    """
    workflow_id = "reused-id"
    queue_happy_path(fake_model)
    queue_happy_path(fake_model)
    async with running_workers(client, signed_config, task_queue):
        first = await start_run(
            client,
            signed_config,
            "support-reply",
            TICKET,
            "dana",
            task_queue=task_queue,
            workflow_id=workflow_id,
        )
        old = await wait_for_approval(first)
        old_decision = decision(old, "alice", keys["alice"])
        await first.execute_update("decide", old_decision)
        assert (await first.result()).status == "completed"

        # any Temporal client may start the id again (Steward's own client would refuse)
        second = await client.start_workflow(
            "SupportReplyWorkflow",
            RunRequest(
                target="support-reply",
                input=TICKET.replace("Dana", "Dane"),
                principal="dana",
            ),
            id=workflow_id,
            task_queue=task_queue,
            result_type=RunResult,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        new = await wait_for_approval(second)
        assert new.id != old.id and new.run_id != old.run_id
        # the first run's decision, replayed: no such request here
        assert "no pending approval" in await refused(second, old_decision)
        # nor does its signature carry over to the new request
        carried = old_decision.model_copy(update={"request_id": new.id})
        assert "is not 'alice''s" in await refused(second, carried)
        await second.execute_update("decide", decision(new, "alice", keys["alice"]))
        assert (await second.result()).status == "completed"

    delivered = outbox_messages(signed_config)
    assert len(delivered) == 2, "the second run's approved email was delivered, not skipped"
