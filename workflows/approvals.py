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

Requests are scoped to the run (their id and signatures bind its first execution's run
id), so a decision made in an earlier run with the same workflow id never counts here.
Where the rule says so, a decision counts only with its approver's Ed25519 signature,
verified here against the public keys the workers resolved with the profile. Every
decision, accepted or refused, by signal or update, is kept (bounded) for the `decisions`
query and logged; a refused update is answered with one line that never gives away the
pending digest (the digest is there to prove the approver looked at the arguments).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeAlias

from temporalio import workflow
from temporalio.workflow import HandlerUnfinishedPolicy

from steward import errors
from steward import search_attributes as sa
from steward.authority import signature_problem
from steward.conversation import GateState
from steward.errors import Refused
from steward.models import (
    ApprovalDecision,
    ApprovalEvidence,
    ApprovalOutcome,
    ApprovalRequest,
    ApprovalRule,
    ArgumentEdit,
    DecisionReceipt,
    DecisionRecord,
    RefusedDecision,
    ToolCall,
    args_digest,
)
from workflows.gates import after_takeover, answered, keep_last, one_payload, scoped_id

MAX_REFUSALS_KEPT = 50
MAX_DECIDED_KEPT = 200
MAX_DECISIONS_KEPT = 200
MAX_REFUSED_UPDATES = 100
"""Refused `decide` updates recorded in history per run; past it, the update validator
turns them away unrecorded (logged only), so nobody can grow a run's history with them."""

Via: TypeAlias = Literal["signal", "update"]


@dataclass(frozen=True)
class _Stage:
    """One stretch of a request's wait: how long, and who decides in it."""

    seconds: float
    escalate_to: list[str] | None = None
    """The group the request escalates to at the start of this stretch (None: no change)."""
    notify: bool = True
    """Whether this stretch's approvers are told it waits for them."""


Notifier: TypeAlias = Callable[[ApprovalRequest], Awaitable[None]]
EditCheck: TypeAlias = Callable[[ApprovalRequest, dict[str, Any]], "dict[str, Any] | str"]
"""The edited arguments of a waiting call as the tool writes them, or why they are refused."""


def _no_edits(request: ApprovalRequest, arguments: dict[str, Any]) -> dict[str, Any] | str:
    return "this request cannot be edited, only approved or rejected"


async def _no_notifier(request: ApprovalRequest) -> None:
    return None


def _nothing_else_waits() -> bool:
    return False


def _nothing_to_show() -> None:
    return None


class ApprovalGate:
    """Pending approval requests of one run and the rules for deciding them."""

    def __init__(
        self,
        notifier: Notifier = _no_notifier,
        questions_open: Callable[[], bool] = _nothing_else_waits,
    ) -> None:
        self.notifier = notifier
        self.questions_open = questions_open
        self.edit_check: EditCheck = _no_edits
        self.on_change: Callable[[], None] = _nothing_to_show
        """Called when what waits changes (a request opens, is decided in part, is edited)."""
        self.pending: dict[str, ApprovalRequest] = {}
        self.outcomes: dict[str, ApprovalOutcome] = {}
        self.refused: list[RefusedDecision] = []
        self.decisions: list[DecisionRecord] = []
        self.refused_updates = 0
        self.evidence: dict[str, ApprovalEvidence] = {}
        """Approved requests -> the decisions that approved them, for the acting worker."""
        self._accepted: dict[str, list[ApprovalDecision]] = {}
        self._run_id = ""
        self._public_keys: Mapping[str, str] = {}
        self._seq = 0
        # Decided before this run of a chain: id -> status (for "already decided").
        self._decided_before: dict[str, str] = {}
        # Requests carried from the previous run, waiting for their call to ask again.
        self._carried: dict[str, ApprovalRequest] = {}
        self.interrupt: Callable[[], bool] = _nothing_else_waits
        """While true, a waiting request stops waiting: the run is about to continue as new."""

    def scope(self, run_id: str, public_keys: Mapping[str, str]) -> None:
        """Bind the gate to its run (ids, signatures) and the keys decisions are checked by."""
        self._run_id = run_id
        self._public_keys = dict(public_keys)

    def snapshot(self) -> GateState:
        """The gate as the next run of the chain needs it: ids issued, requests waiting."""
        decided = {rid: outcome.status for rid, outcome in self.outcomes.items()}
        recent = dict(list((self._decided_before | decided).items())[-MAX_DECIDED_KEPT:])
        return GateState(
            seq=self._seq,
            pending=list(self.pending.values()),
            decided=recent,
            accepted={rid: self._accepted.get(rid, []) for rid in self.pending},
            decisions=self.decisions,
        )

    def restore(self, state: GateState) -> None:
        """Take over a previous run's gate; its waiting requests resume when asked again."""
        self._seq = state.seq
        self._decided_before = dict(state.decided)
        self.decisions = list(state.decisions)
        for request in state.pending:
            self.pending[request.id] = request
            # The call asks again with its own arguments, whatever an approver edited.
            asked = request.original_arguments or request.arguments
            self._carried[args_digest(request.tool, asked)] = request
            self._accepted[request.id] = list(state.accepted.get(request.id, []))

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
            # Never say which digest would have matched: it proves the approver read the call.
            return (
                f"the argument digest does not match {request.id}: the arguments you "
                "reviewed are not the ones waiting; read them again (`steward pending`)"
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
        if decision.arguments is not None and decision.arguments != request.arguments:
            problem = self._edit_problem(request, decision.arguments)
            if problem is not None:
                return problem
        if request.signed:
            return signature_problem(request, decision, self._public_keys)
        return None

    def _edit_problem(self, request: ApprovalRequest, arguments: dict[str, Any]) -> str | None:
        """Why an approver's edit of the waiting call cannot be approved, or None."""
        locked = [
            name for name in request.locked if arguments.get(name) != request.arguments.get(name)
        ]
        if locked:
            return f"edit refused: {', '.join(locked)} cannot be edited ({request.tool} locks it)"
        checked = self.edit_check(request, arguments)
        if isinstance(checked, str):
            return f"edit refused: {checked}"
        if checked != arguments:
            changed = sorted(
                k for k in {*checked, *arguments} if checked.get(k) != arguments.get(k)
            )
            return (
                f"edit refused: send the arguments as {request.tool} writes them "
                f"(they differ in {', '.join(changed)})"
            )
        return None

    def decide(self, decision: ApprovalDecision, via: Via) -> DecisionReceipt | str:
        """Check a decision (its signature too, where required), then apply and record it;
        or record and return why not.
        """
        reason = self.check(decision)
        if reason is not None:
            self.refuse(decision.request_id, decision.approver, reason, via, decision)
            return reason
        receipt = self.apply(decision)
        self.record(decision, via, accepted=True, reason=decision.reason)
        return receipt

    def apply(self, decision: ApprovalDecision) -> DecisionReceipt:
        """Record a checked decision; the waiting call wakes once the request is decided."""
        request = self.pending[decision.request_id]
        if decision.arguments is not None and decision.arguments != request.arguments:
            self._edit(request, decision)
        if decision.approve:
            request.approved_by.append(decision.approver)
            self._accepted.setdefault(request.id, []).append(decision)
        done = not decision.approve or len(request.approved_by) >= request.required
        if done:
            del self.pending[request.id]
            accepted = self._accepted.pop(request.id, [])
            if decision.approve:
                self.evidence[request.id] = ApprovalEvidence(
                    request_id=request.id,
                    workflow_id=request.workflow_id,
                    run_id=request.run_id,
                    tool=request.tool,
                    args_digest=request.args_digest,
                    requester=request.requester,
                    decisions=accepted,
                )
            self.outcomes[request.id] = ApprovalOutcome(
                request_id=request.id,
                tool=request.tool,
                status="approved" if decision.approve else "rejected",
                approver=", ".join(request.approved_by) if decision.approve else decision.approver,
                reason=decision.reason,
                requested_at=request.requested_at,
                decided_at=workflow.now(),
                arguments=request.arguments if request.edits and decision.approve else None,
                edits=request.edits,
            )
        self.on_change()
        status = "awaiting_more" if not done else "approved" if decision.approve else "rejected"
        return DecisionReceipt(
            request_id=request.id,
            status=status,
            approved_by=list(request.approved_by),
            required=request.required,
            args_digest=request.args_digest,
        )

    def _edit(self, request: ApprovalRequest, decision: ApprovalDecision) -> None:
        """Put the approver's edit in place: new arguments and digest; approvals given for
        the old arguments no longer count.
        """
        assert decision.arguments is not None
        old, new = request.arguments, decision.arguments
        before = request.args_digest
        request.original_arguments = request.original_arguments or dict(old)
        request.arguments = dict(new)
        request.args_digest = args_digest(request.tool, new)
        request.edits.append(
            ArgumentEdit(
                by=decision.approver,
                at=workflow.now(),
                before_digest=before,
                after_digest=request.args_digest,
                fields=sorted(k for k in {*old, *new} if old.get(k) != new.get(k)),
            )
        )
        request.approved_by = []
        self._accepted[request.id] = []
        workflow.logger.info(
            "approval %s: %s edited %s", request.id, decision.approver, request.edits[-1].fields
        )

    def refuse(
        self,
        request_id: str,
        approver: str,
        reason: str,
        via: Via,
        decision: ApprovalDecision | None = None,
    ) -> None:
        """Keep a refused decision for the queries and the logs (bounded)."""
        refused = RefusedDecision(
            request_id=request_id, approver=approver, reason=reason, at=workflow.now()
        )
        keep_last(self.refused, refused, MAX_REFUSALS_KEPT)
        if via == "update":
            self.refused_updates += 1
        if decision is None:
            self._keep(
                DecisionRecord(
                    request_id=request_id,
                    approver=approver,
                    approve=None,
                    via=via,
                    accepted=False,
                    reason=reason,
                    at=workflow.now(),
                )
            )
        else:
            self.record(decision, via, accepted=False, reason=reason)

    def record(self, decision: ApprovalDecision, via: Via, *, accepted: bool, reason: str) -> None:
        """Keep a decision as received, for the `decisions` query and the worker log."""
        self._keep(
            DecisionRecord(
                request_id=decision.request_id,
                approver=decision.approver,
                approve=decision.approve,
                via=via,
                accepted=accepted,
                reason=reason,
                signed=bool(decision.signature),
                at=workflow.now(),
            )
        )

    def _keep(self, record: DecisionRecord) -> None:
        verdict = {True: "approve", False: "reject", None: "unreadable"}[record.approve]
        if record.accepted:
            workflow.logger.info(
                "decision accepted: %s %s by %s (%s)",
                verdict,
                record.request_id,
                record.approver,
                record.via,
            )
        else:
            workflow.logger.warning(
                "decision refused: %s %s by %s (%s): %s",
                verdict,
                record.request_id,
                record.approver,
                record.via,
                record.reason,
            )
        keep_last(self.decisions, record, MAX_DECISIONS_KEPT)

    async def request(
        self,
        call: ToolCall,
        rule: ApprovalRule,
        requester: str,
        locked: Sequence[str] = (),
        flags: Sequence[str] = (),
    ) -> ApprovalOutcome:
        """Open a request for this exact call and wait for its decision or its deadline.

        A request carried over from the previous run for the same call is resumed instead:
        same id, same deadline, approvals so far kept. Raises ContinueAsNew when
        `interrupt` says the run must continue as new while it waits.
        """
        carried = self._carried.pop(call.digest(), None)
        if carried is not None:
            return await self._resume(carried, rule)
        self._seq += 1
        now = workflow.now()
        request = ApprovalRequest(
            id=scoped_id(self._run_id, str(self._seq)),
            run_id=self._run_id,
            workflow_id=workflow.info().workflow_id,
            tool=call.tool,
            args_digest=call.digest(),
            arguments=call.arguments,
            requester=requester,
            approvers=rule.approvers,
            requested_at=now,
            deadline=now + timedelta(seconds=rule.timeout_seconds),
            required=rule.required,
            signed=rule.signed,
            locked=list(locked),
            flags=list(flags),
        )
        self.pending[request.id] = request
        stages = [_Stage(rule.timeout_seconds)]
        if rule.escalation is not None:
            escalation = rule.escalation
            stages.append(_Stage(escalation.timeout_seconds, escalation.approvers))
        waited = sum(stage.seconds for stage in stages)
        return await self._decided(request, stages, f"no decision within {waited:g}s")

    async def _resume(self, request: ApprovalRequest, rule: ApprovalRule) -> ApprovalOutcome:
        """Wait out a carried request's remaining time (and its escalation, if still due);
        its approvers were told when it opened.
        """
        remaining = max((request.deadline - workflow.now()).total_seconds(), 0.001)
        stages = [_Stage(remaining, notify=False)]
        if rule.escalation is not None and not request.escalated:
            escalation = rule.escalation
            stages.append(_Stage(escalation.timeout_seconds, escalation.approvers))
        return await self._decided(request, stages, "no decision by the deadline")

    async def _decided(
        self, request: ApprovalRequest, stages: list[_Stage], timed_out: str
    ) -> ApprovalOutcome:
        """Wait for the request's decision through each stage (the first group, then the
        group it escalates to); at the last deadline it times out, saying `timed_out`.
        """
        for stage in stages:
            if stage.escalate_to is not None:
                workflow.logger.info("approval %s escalates to %s", request.id, stage.escalate_to)
                request.approvers = stage.escalate_to
                request.deadline = workflow.now() + timedelta(seconds=stage.seconds)
                request.escalated = True
            self._publish()
            if stage.notify:
                await self.notifier(request)
            decided = await answered(
                lambda: request.id in self.outcomes,
                self.interrupt,
                stage.seconds,
                f"approval deadline: {request.tool}",
                f"approval {request.id} is carried to the next run",
            )
            if decided:
                self._publish()
                return self.outcomes[request.id]
        self.pending.pop(request.id, None)
        self.outcomes[request.id] = ApprovalOutcome(
            request_id=request.id,
            tool=request.tool,
            status="timed_out",
            reason=timed_out + (" (escalated once)" if request.escalated else ""),
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
                sa.STATUS.value_set(
                    sa.waiting_status(
                        approvals_pending=bool(waiting), questions_open=self.questions_open()
                    )
                ),
            ]
        )
        self.on_change()


class ApprovalHandlers:
    """Signal, update and query handlers for a workflow that owns an `ApprovalGate`.

    Workflows inherit this; Temporal registers inherited handlers.
    """

    gate: ApprovalGate
    taken_over: bool
    """Whether the run holds what its chain carried (`workflows.gates.before_takeover`)."""

    # Both handlers take their arguments as sent, however many: the SDK calls a handler with
    # one argument per payload, and a payload count that does not fit its signature would
    # raise before any of this code runs, failing the workflow task on every retry.

    # Handlers are async so recorded histories replay as they ran; they await only a
    # continued run's takeover of its chain (`workflows.gates.after_takeover`).
    @workflow.signal(name="decide", unfinished_policy=HandlerUnfinishedPolicy.ABANDON)
    async def decide_signal(self, *sent: object) -> None:
        """A decision sent as a signal: checked, then applied or refused (never raised)."""
        decision = _decision(sent)
        if isinstance(decision, str):
            self.gate.refuse("?", "?", decision, "signal")
            return
        await after_takeover(lambda: self.taken_over)
        self.gate.decide(decision, "signal")

    @workflow.update(name="decide", unfinished_policy=HandlerUnfinishedPolicy.ABANDON)
    async def decide_update(self, *sent: object) -> DecisionReceipt:
        """A decision sent as an update: a refusal is recorded and answered in one line."""
        decision = _decision(sent)  # replay skips validators: check again
        if isinstance(decision, str):
            raise Refused(decision, errors.MALFORMED_DECISION)
        await after_takeover(lambda: self.taken_over)
        result = self.gate.decide(decision, "update")
        if isinstance(result, str):
            raise Refused(result, errors.DECISION_REFUSED)
        return result

    @decide_update.validator
    def _check_decision(self, *sent: object) -> None:
        """Turn away, unrecorded, what cannot be a decision, and refusals past the cap;
        a well-formed decision goes on to the handler, which records even a refusal.
        """
        decision = _decision(sent)
        if isinstance(decision, str):
            workflow.logger.warning("decide update turned away: %s", decision)
            raise Refused(decision, errors.MALFORMED_DECISION)
        reason = self.gate.check(decision)
        if reason is not None and self.gate.refused_updates >= MAX_REFUSED_UPDATES:
            workflow.logger.warning("decide update turned away (not recorded): %s", reason)
            raise Refused(
                f"{reason} (this run has refused {MAX_REFUSED_UPDATES} decisions already; "
                "this one is not recorded)",
                errors.DECISION_REFUSED,
            )

    @workflow.query(name="pending_approvals")
    def pending_approvals(self) -> list[ApprovalRequest]:
        """Approval requests still waiting for a decision."""
        return list(self.gate.pending.values())

    @workflow.query(name="decisions")
    def decision_records(self) -> list[DecisionRecord]:
        """Every decision this run received (the newest 200), accepted or refused, and why."""
        return list(self.gate.decisions)


def _decision(sent: tuple[object, ...]) -> ApprovalDecision | str:
    """The one decision a `decide` signal or update carries, or what is wrong with it."""
    return one_payload(sent, ApprovalDecision, "decision")
