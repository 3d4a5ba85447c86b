"""Scripted approvals: how an eval answers an approval request of one of its runs.

Pure, for `EvalWorkflow`. A case lists one step per approval notice, in order (the last
repeats): approve (as the call is, or an edit of it: `arguments`), reject, or let it time
out, optionally after a reviewer's delay. The
decisions go to the run as ordinary `decide` signals, so the run's approval gate checks
them exactly as it checks a person's: the digest must match, the approver must be allowed
and must not be the requester, and N-of-M rules need N distinct approvers.
"""

from __future__ import annotations

from evals.models import ApprovalStep
from steward.models import ApprovalDecision, ApprovalRequest, args_digest

APPROVE_BY_DEFAULT = ApprovalStep(decision="approve")


def step_for(steps: list[ApprovalStep], index: int) -> ApprovalStep:
    """The step answering the `index`-th notice (0-based): the last one repeats."""
    if not steps:
        return APPROVE_BY_DEFAULT
    return steps[min(index, len(steps) - 1)]


def decisions_for(request: ApprovalRequest, step: ApprovalStep) -> list[ApprovalDecision]:
    """The decisions that carry out `step` on `request` (none for a timeout)."""
    if step.decision == "timeout":
        return []
    eligible = [
        name
        for name in request.approvers
        if name != request.requester and name not in request.approved_by
    ]
    if step.approver is not None:
        eligible = [step.approver, *(name for name in eligible if name != step.approver)]
    needed = 1 if step.decision == "reject" else max(1, request.required - len(request.approved_by))
    reason = step.reason or f"scripted {step.decision} (eval)"
    edit = step.arguments if step.arguments not in (None, request.arguments) else None
    if edit is not None:
        # The edit resets approvals given before it: the editor and the rest approve it.
        needed = max(1, request.required)
    decisions = [
        ApprovalDecision(
            request_id=request.id,
            args_digest=request.args_digest,
            approver=name,
            approve=step.decision == "approve",
            reason=reason,
        )
        for name in eligible[:needed]
    ]
    if edit is None or not decisions:
        return decisions
    edited = args_digest(request.tool, edit)
    first, *rest = decisions
    return [
        first.model_copy(update={"arguments": edit}),
        *(decision.model_copy(update={"args_digest": edited}) for decision in rest),
    ]
