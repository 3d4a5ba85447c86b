"""Signed approvals: an HMAC, by the approver's own key, over exactly what they decided.

The message binds the request id, the digest of the arguments, the approver and the
verdict, so a signature cannot be moved to another request, other arguments, another
person or the opposite answer. `steward approve` signs with the key in the approver's own
environment; the privileged worker, which alone holds every approver's key, verifies.
The workflow only ever sees the signature, never a key.
"""

from __future__ import annotations

import hashlib
import hmac

from steward.models import ApprovalDecision


def message(decision: ApprovalDecision) -> bytes:
    """What a signature covers."""
    verdict = "approve" if decision.approve else "reject"
    return "|".join(
        (
            "steward-approval-v1",
            decision.request_id,
            decision.args_digest,
            decision.approver,
            verdict,
        )
    ).encode()


def sign(key: bytes, decision: ApprovalDecision) -> str:
    """The signature of `decision` by `key` (hex)."""
    return hmac.new(key, message(decision), hashlib.sha256).hexdigest()


def verify(key: bytes, decision: ApprovalDecision) -> bool:
    """Whether `decision.signature` was made by `key` over this very decision."""
    return hmac.compare_digest(sign(key, decision), decision.signature)
