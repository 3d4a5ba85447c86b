"""Verifying signed approvals, on the privileged worker: the only process with the keys.

Each approver's key is named in steward.yaml (`approver_keys: {alice: ENV_VAR}`) and read
from this worker's environment when the worker starts. The check says only valid or not,
and why; no key ever leaves this process.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import activity

from steward import signing
from steward.models import ApprovalDecision, SignatureCheck


class ApprovalKeys:
    """Approvers' signing keys, by approver name."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys = dict(keys)

    @activity.defn(name="verify_approval")
    async def verify_approval(self, decision: ApprovalDecision) -> SignatureCheck:
        """Check a decision's signature against its approver's key."""
        key = self._keys.get(decision.approver)
        if key is None:
            return SignatureCheck(valid=False, reason=f"no signing key for {decision.approver!r}")
        if not decision.signature:
            return SignatureCheck(valid=False, reason="the decision is not signed")
        if not signing.verify(key, decision):
            return SignatureCheck(
                valid=False,
                reason=f"the signature is not {decision.approver!r}'s for this decision",
            )
        return SignatureCheck(valid=True)
