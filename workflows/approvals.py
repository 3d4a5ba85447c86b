"""The approval gate: a tool call that needs a human waits here, durably, for a decision.

A pending request is visible by the `pending_approvals` query and by search attributes.
Decisions arrive by the `decide` signal (Temporal UI, `temporal workflow signal`, scripts)
or the `decide` update (the CLI, which wants to hear at once if it was refused). A decision
counts only if it names a pending request, carries that request's argument digest, comes
from an allowed approver who is not the requester and has not approved it already. A
rejection ends the request; approvals end it once `required` distinct approvers agreed (N
of M). At the deadline the request escalates to the next group when the rule says so,
else it times out. Anything else is refused and recorded, never applied; a malformed
signal cannot fail the workflow task. Approvers are notified when a request opens or
escalates to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeAlias

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import HandlerUnfinishedPolicy

from steward import search_attributes as sa
from steward.conversation import GateState
from steward.models import (
    ApprovalDecision,
    ApprovalOutcome,
    ApprovalRequest,
    ApprovalRule,
    DecisionReceipt,
    RefusedDecision,
    SignatureCheck,
    ToolCall,
    problems,
)

MAX_REFUSALS_KEPT = 50
MAX_DECIDED_KEPT = 200


class ContinueAsNew(Exception):
    """A wait gave way because the run continues as new; its state carries what waited."""


Notifier: TypeAlias = Callable[[ApprovalRequest], Awaitable[None]]
Verifier: TypeAlias = Callable[[ApprovalDecision], Awaitable[SignatureCheck]]


async def _no_notifier(request: ApprovalRequest) -> None:
    return None


async def _no_verifier(decision: ApprovalDecision) -> SignatureCheck:
    return SignatureCheck(valid=False, reason="this run cannot verify signed approvals")


def _nothing_else_waits() -> bool:
    return False


class ApprovalGate:
    """Pending approval requests of one run and the rules for deciding them."""

    def __init__(
        self,
        notifier: Notifier = _no_notifier,
        verifier: Verifier = _no_verifier,
        questions_open: Callable[[], bool] = _nothing_else_waits,
    ) -> None:
        self.notifier = notifier
        self.verifier = verifier
        self.questions_open = questions_open
        self.pending: dict[str, ApprovalRequest] = {}
        self.outcomes: dict[str, ApprovalOutcome] = {}
        self.refused: list[RefusedDecision] = []
        self._seq = 0
        # Decided before this run of a chain: id -> status (for "already decided").
        self._decided_before: dict[str, str] = {}
        # Requests carried from the previous run, waiting for their call to ask again.
        self._carried: dict[str, ApprovalRequest] = {}
        self.interrupt: Callable[[], bool] = _nothing_else_waits
        """While true, a waiting request stops waiting: the run is about to continue as new."""

    def snapshot(self) -> GateState:
        """The gate as the next run of the chain needs it: ids issued, requests waiting."""
        decided = {rid: outcome.status for rid, outcome in self.outcomes.items()}
        recent = dict(list((self._decided_before | decided).items())[-MAX_DECIDED_KEPT:])
        return GateState(seq=self._seq, pending=list(self.pending.values()), decided=recent)

    def restore(self, state: GateState) -> None:
        """Take over a previous run's gate; its waiting requests resume when asked again."""
        self._seq = state.seq
        self._decided_before = dict(state.decided)
        for request in state.pending:
            self.pending[request.id] = request
            self._carried[request.args_digest] = request

    def check(self, decision: ApprovalDecision) -> str | None:
        """Why this decision must be refused, or None if it may be applied."""
        request = self.pending.get(decision.request_id)
        if request is None:
            done = self.outcomes.get(decision.request_id)
            if done is not None:
                return f"approval {decision.request_id} was already decided: {done.status}"
            before = self._decided_before.get(decision.request_id)
            if before is not None:
                return f"approval {decision.request_id} was already decided: {before}"
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
        if decision.approver in request.approved_by:
            return (
                f"{decision.approver!r} already approved {request.id}; it needs "
                f"{request.required} distinct approvers"
            )
        if request.signed and not decision.signature:
            return f"{request.id} needs a decision signed with the approver's key"
        return None

    async def decide(self, decision: ApprovalDecision) -> DecisionReceipt | str:
        """Check (and for signed requests verify) a decision, then apply it; or why not."""
        reason = self.check(decision)
        if reason is not None:
            return reason
        if self.pending[decision.request_id].signed:
            verdict = await self.verifier(decision)
            if not verdict.valid:
                return verdict.reason
            reason = self.check(decision)  # another decision may have landed meanwhile
            if reason is not None:
                return reason
        return self.apply(decision)

    def apply(self, decision: ApprovalDecision) -> DecisionReceipt:
        """Record a checked decision; the waiting call wakes once the request is decided."""
        request = self.pending[decision.request_id]
        if decision.approve:
            request.approved_by.append(decision.approver)
        done = not decision.approve or len(request.approved_by) >= request.required
        if done:
            del self.pending[request.id]
            self.outcomes[request.id] = ApprovalOutcome(
                request_id=request.id,
                tool=request.tool,
                status="approved" if decision.approve else "rejected",
                approver=", ".join(request.approved_by) if decision.approve else decision.approver,
                reason=decision.reason,
                requested_at=request.requested_at,
                decided_at=workflow.now(),
            )
        status = "awaiting_more" if not done else "approved" if decision.approve else "rejected"
        return DecisionReceipt(
            request_id=request.id,
            status=status,
            approved_by=list(request.approved_by),
            required=request.required,
        )

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
        """Open a request for this exact call and wait for its decision or its deadline.

        A request carried over from the previous run for the same call is resumed instead:
        same id, same deadline, approvals so far kept. Raises ContinueAsNew when
        `interrupt` says the run must continue as new while it waits.
        """
        carried = self._carried.pop(call.digest(), None)
        if carried is not None:
            return await self._resume(carried, rule)
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
            required=rule.required,
            signed=rule.signed,
        )
        self.pending[request.id] = request
        stages = [(rule.approvers, rule.timeout_seconds)]
        if rule.escalation is not None:
            stages.append((rule.escalation.approvers, rule.escalation.timeout_seconds))
        for stage, (approvers, timeout) in enumerate(stages):
            if stage > 0:
                workflow.logger.info("approval %s escalates to %s", request.id, approvers)
                request.approvers = approvers
                request.deadline = workflow.now() + timedelta(seconds=timeout)
                request.escalated = True
            self._publish()
            await self.notifier(request)
            if await self._wait(request, timeout):
                break
        else:
            self.pending.pop(request.id, None)
            waited = sum(timeout for _, timeout in stages)
            self.outcomes[request.id] = ApprovalOutcome(
                request_id=request.id,
                tool=request.tool,
                status="timed_out",
                reason=f"no decision within {waited:g}s"
                + (" (escalated once)" if len(stages) > 1 else ""),
                requested_at=request.requested_at,
                decided_at=workflow.now(),
            )
        self._publish()
        return self.outcomes[request.id]

    async def _resume(self, request: ApprovalRequest, rule: ApprovalRule) -> ApprovalOutcome:
        """Wait out a carried request's remaining time (and its escalation, if still due)."""
        self._publish()
        remaining = max((request.deadline - workflow.now()).total_seconds(), 0.001)
        if await self._wait(request, remaining):
            self._publish()
            return self.outcomes[request.id]
        if rule.escalation is not None and not request.escalated:
            request.approvers = rule.escalation.approvers
            request.deadline = workflow.now() + timedelta(seconds=rule.escalation.timeout_seconds)
            request.escalated = True
            self._publish()
            await self.notifier(request)
            if await self._wait(request, rule.escalation.timeout_seconds):
                self._publish()
                return self.outcomes[request.id]
        self.pending.pop(request.id, None)
        self.outcomes[request.id] = ApprovalOutcome(
            request_id=request.id,
            tool=request.tool,
            status="timed_out",
            reason="no decision by the deadline"
            + (" (escalated once)" if request.escalated else ""),
            requested_at=request.requested_at,
            decided_at=workflow.now(),
        )
        self._publish()
        return self.outcomes[request.id]

    async def _wait(self, request: ApprovalRequest, seconds: float) -> bool:
        """Whether the request was decided within `seconds`."""
        try:
            await workflow.wait_condition(
                lambda: request.id in self.outcomes or self.interrupt(), timeout=seconds
            )
        except TimeoutError:
            return False
        if request.id not in self.outcomes:
            raise ContinueAsNew(f"approval {request.id} is carried to the next run")
        return True

    def _publish(self) -> None:
        waiting = list(self.pending.values())
        approvers = sorted({name for request in waiting for name in request.approvers})
        workflow.upsert_search_attributes(
            [
                sa.PENDING_APPROVALS.value_set([request.id for request in waiting]),
                sa.APPROVERS.value_set(approvers),
                sa.STATUS.value_set(
                    sa.waiting_status(
                        approvals_pending=bool(waiting), questions_open=self.questions_open()
                    )
                ),
            ]
        )


class ApprovalHandlers:
    """Signal, update and query handlers for a workflow that owns an `ApprovalGate`.

    Workflows inherit this; Temporal registers inherited handlers.
    """

    gate: ApprovalGate

    # Both handlers take their arguments as sent, however many: the SDK calls a handler with
    # one argument per payload, and a payload count that does not fit its signature would
    # raise before any of this code runs, failing the workflow task on every retry.

    # A verification still running when the run ends is moot: abandon it quietly.
    @workflow.signal(name="decide", unfinished_policy=HandlerUnfinishedPolicy.ABANDON)
    async def decide_signal(self, *sent: object) -> None:
        """A decision sent as a signal: checked, then applied or refused (never raised)."""
        decision = _decision(sent)
        if isinstance(decision, str):
            self.gate.refuse("?", "?", decision)
            return
        result = await self.gate.decide(decision)
        if isinstance(result, str):
            self.gate.refuse(decision.request_id, decision.approver, result)

    @workflow.update(name="decide", unfinished_policy=HandlerUnfinishedPolicy.ABANDON)
    async def decide_update(self, *sent: object) -> DecisionReceipt:
        """A decision sent as an update: a refusal is answered to the sender at once."""
        decision = _decision(sent)  # replay skips validators: check again
        if isinstance(decision, str):
            raise ApplicationError(decision, type="MalformedDecision")
        result = await self.gate.decide(decision)
        if isinstance(result, str):
            self.gate.refuse(decision.request_id, decision.approver, result)
            raise ApplicationError(result, type="DecisionRefused")
        return result

    @decide_update.validator
    def _check_decision(self, *sent: object) -> None:
        decision = _decision(sent)
        reason = decision if isinstance(decision, str) else self.gate.check(decision)
        if reason is not None:
            raise ValueError(reason)

    @workflow.query(name="pending_approvals")
    def pending_approvals(self) -> list[ApprovalRequest]:
        """Approval requests still waiting for a decision."""
        return list(self.gate.pending.values())


def _decision(sent: tuple[object, ...]) -> ApprovalDecision | str:
    """The one decision a `decide` signal or update carries, or what is wrong with it.

    The SDK has decoded each payload as plain JSON (null and bytes included); validating
    here, not in the SDK, is what lets a bad payload be refused instead of raised.
    """
    if len(sent) != 1:
        return f"malformed decision: decision: expected one JSON object, got {len(sent)} arguments"
    try:
        return ApprovalDecision.model_validate(sent[0])
    except ValidationError as err:
        return f"malformed decision: {problems(err, 'decision')}"
