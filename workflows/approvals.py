"""The approval gate: a tool call that needs a human waits here, durably, for a decision.

A pending request is visible by the `pending_approvals` query and by search attributes.
Decisions arrive by the `decide` signal (Temporal UI, `temporal workflow signal`, scripts)
or the `decide` update (the CLI, which wants to hear at once if it was refused). A decision
counts only if it names a pending request, carries that request's argument digest, comes
from an allowed approver who is not the requester, and is the first for that request.
Anything else is refused and recorded, never applied; a malformed signal cannot fail the
workflow task.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from steward import search_attributes as sa
from steward.models import (
    ApprovalDecision,
    ApprovalOutcome,
    ApprovalRequest,
    ApprovalRule,
    RefusedDecision,
    ToolCall,
)

MAX_REFUSALS_KEPT = 50


class ApprovalGate:
    """Pending approval requests of one run and the rules for deciding them."""

    def __init__(self) -> None:
        self.pending: dict[str, ApprovalRequest] = {}
        self.outcomes: dict[str, ApprovalOutcome] = {}
        self.refused: list[RefusedDecision] = []
        self._seq = 0

    def check(self, decision: ApprovalDecision) -> str | None:
        """Why this decision must be refused, or None if it may be applied."""
        request = self.pending.get(decision.request_id)
        if request is None:
            done = self.outcomes.get(decision.request_id)
            if done is not None:
                return f"approval {decision.request_id} was already decided: {done.status}"
            return f"no pending approval with id {decision.request_id!r}"
        if decision.args_digest != request.args_digest:
            return (
                f"digest {decision.args_digest!r} does not match the pending call "
                f"({request.args_digest}): the arguments you saw are not the ones waiting"
            )
        if decision.approver == request.requester:
            return f"{decision.approver!r} requested this action and cannot approve it"
        if decision.approver not in request.approvers:
            return (
                f"{decision.approver!r} is not an allowed approver "
                f"(allowed: {', '.join(request.approvers)})"
            )
        return None

    def apply(self, decision: ApprovalDecision) -> ApprovalOutcome:
        """Record a checked decision; the waiting tool call wakes up."""
        request = self.pending.pop(decision.request_id)
        outcome = ApprovalOutcome(
            request_id=request.id,
            tool=request.tool,
            status="approved" if decision.approve else "rejected",
            approver=decision.approver,
            reason=decision.reason,
            requested_at=request.requested_at,
            decided_at=workflow.now(),
        )
        self.outcomes[request.id] = outcome
        return outcome

    def refuse(self, request_id: str, approver: str, reason: str) -> None:
        """Keep a refused decision for the query and the logs (bounded)."""
        workflow.logger.warning("approval decision refused: %s", reason)
        self.refused.append(
            RefusedDecision(
                request_id=request_id, approver=approver, reason=reason, at=workflow.now()
            )
        )
        del self.refused[:-MAX_REFUSALS_KEPT]

    async def request(self, call: ToolCall, rule: ApprovalRule, requester: str) -> ApprovalOutcome:
        """Open a request for this exact call and wait for its decision or its deadline."""
        self._seq += 1
        info = workflow.info()
        now = workflow.now()
        request = ApprovalRequest(
            id=f"{info.workflow_id}:{self._seq}",
            workflow_id=info.workflow_id,
            tool=call.tool,
            args_digest=call.digest(),
            arguments=call.arguments,
            requester=requester,
            approvers=rule.approvers,
            requested_at=now,
            deadline=now + timedelta(seconds=rule.timeout_seconds),
        )
        self.pending[request.id] = request
        self._publish()
        try:
            await workflow.wait_condition(
                lambda: request.id in self.outcomes, timeout=rule.timeout_seconds
            )
        except TimeoutError:
            self.pending.pop(request.id, None)
            self.outcomes[request.id] = ApprovalOutcome(
                request_id=request.id,
                tool=request.tool,
                status="timed_out",
                reason=f"no decision within {rule.timeout_seconds:g}s",
                requested_at=request.requested_at,
                decided_at=workflow.now(),
            )
        self._publish()
        return self.outcomes[request.id]

    def _publish(self) -> None:
        waiting = list(self.pending.values())
        approvers = sorted({name for request in waiting for name in request.approvers})
        workflow.upsert_search_attributes(
            [
                sa.PENDING_APPROVALS.value_set([request.id for request in waiting]),
                sa.APPROVERS.value_set(approvers),
                sa.STATUS.value_set(sa.AWAITING_APPROVAL if waiting else "running"),
            ]
        )


class ApprovalHandlers:
    """Signal, update and query handlers for a workflow that owns an `ApprovalGate`.

    Workflows inherit this; Temporal registers inherited handlers.
    """

    gate: ApprovalGate

    @workflow.signal(name="decide")
    def decide_signal(self, raw: RawValue) -> None:
        """A decision sent as a signal: checked, then applied or refused (never raised)."""
        try:
            decision = workflow.payload_converter().from_payload(raw.payload, ApprovalDecision)
        except (ValidationError, ValueError, TypeError) as err:
            self.gate.refuse("?", "?", f"malformed decision: {_first_line(err)}")
            return
        reason = self.gate.check(decision)
        if reason is not None:
            self.gate.refuse(decision.request_id, decision.approver, reason)
            return
        self.gate.apply(decision)

    @workflow.update(name="decide")
    def decide_update(self, decision: ApprovalDecision) -> ApprovalOutcome:
        """A decision sent as an update: a refusal is answered to the sender at once."""
        reason = self.gate.check(decision)  # the validator checked; replay skips validators
        if reason is not None:
            raise ApplicationError(reason, type="DecisionRefused")
        return self.gate.apply(decision)

    @decide_update.validator
    def _check_decision(self, decision: ApprovalDecision) -> None:
        reason = self.gate.check(decision)
        if reason is not None:
            raise ValueError(reason)

    @workflow.query(name="pending_approvals")
    def pending_approvals(self) -> list[ApprovalRequest]:
        """Approval requests still waiting for a decision."""
        return list(self.gate.pending.values())


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
