"""Scripted approvals (`evals.approvals`): the decisions an eval sends for one notice."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evals.approvals import decisions_for
from evals.models import ApprovalStep
from steward.models import ApprovalRequest, args_digest
from tests.support.approvals import waiting_request

ARGUMENTS = {"to": "dana@example.com", "subject": "Your parcel", "body": "It left today."}
EDIT = ARGUMENTS | {"body": "It left this morning."}


def request(required: int) -> ApprovalRequest:
    return waiting_request(
        ARGUMENTS,
        args_digest=args_digest("send_email", ARGUMENTS),
        approvers=["dana", "alice", "bob", "carol"],
        required=required,
    )


def test_an_edit_is_sent_once_and_the_others_approve_the_edited_call() -> None:
    waiting = request(required=2)
    first, second = decisions_for(waiting, ApprovalStep(decision="approve", arguments=EDIT))
    # the requester never approves; the editor sends the edit against the waiting digest
    assert (first.approver, first.arguments, first.args_digest) == (
        "alice",
        EDIT,
        waiting.args_digest,
    )
    assert (second.approver, second.arguments) == ("bob", None)
    assert second.args_digest == args_digest("send_email", EDIT) != waiting.args_digest


def test_an_approval_without_an_edit_is_unchanged() -> None:
    for step in (
        ApprovalStep(decision="approve"),
        ApprovalStep(decision="approve", arguments=ARGUMENTS),
    ):
        (only,) = decisions_for(request(required=1), step)
        assert only.arguments is None and only.args_digest == request(1).args_digest


def test_an_edit_goes_with_an_approval_only() -> None:
    with pytest.raises(ValidationError, match="decision approve only"):
        ApprovalStep(decision="reject", arguments=EDIT)
