"""An approval request as a run's gate holds it, for tests of what reads or answers one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from steward.models import ApprovalRequest

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def waiting_request(
    arguments: dict[str, Any], *, workflow_id: str = "support-reply-1", **fields: Any
) -> ApprovalRequest:
    """A send_email call of `workflow_id` waiting for alice, asked by dana (`fields` override
    any other field: approvers, required, locked, args_digest...)."""
    return ApprovalRequest.model_validate(
        {
            "id": f"{workflow_id}:abcd1234-1",
            "workflow_id": workflow_id,
            "tool": "send_email",
            "args_digest": "0123456789abcdef",
            "arguments": arguments,
            "requester": "dana",
            "approvers": ["alice"],
            "requested_at": NOW,
            "deadline": NOW,
        }
        | fields
    )
