"""Approvals in a history: when each request opened, who was told, who decided, what was
refused, and whether it escalated or timed out.

The approval gate leaves these traces: the `StewardPendingApprovals` search attribute
gains a request id when the request opens and loses it when it closes; a
`notify_approvers` activity carries the full request (tool, arguments, digest, approvers,
how many must agree); a timer started while it waits is its deadline, and a fired timer
followed by another is an escalation; `decide` signals and updates carry the decisions.
An update that completed was counted (its validator refused the others before they
reached history). A signal is judged here by the gate's own rules, in order, so the trace
shows which one counted and why the others did not; the run's result, when there is one,
says how each request ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio.api.history.v1 import HistoryEvent

from steward import search_attributes as sa
from steward.approval_view import edited_fields
from steward.models import (
    ApprovalDecision,
    ApprovalNotice,
    ApprovalOutcome,
    DecisionReceipt,
    RunResult,
)
from steward.trace.events import error_info, event_time, first, preview, span, typed
from steward.trace.model import ActivityRun, ApprovalTrace, DecisionTrace, MessageTrace, TimerTrace

DECIDE = "decide"
"""The signal and update that carry approval decisions."""

_NEVER = 1 << 62


class ApprovalLog:
    """Approval requests, deadlines, notices and decision messages, collected in one pass."""

    def __init__(self) -> None:
        self.opened: dict[str, ApprovalTrace] = {}
        self.closed: dict[str, tuple[int, datetime]] = {}
        self.closed_in: dict[str, int] = {}  # request -> workflow task that closed it
        self.notices: dict[int, str] = {}  # notify activity (scheduled event) -> request
        self.messages: list[MessageTrace] = []
        self._pending: list[str] = []
        self._approvers: list[str] = []
        self._stages: dict[str, list[tuple[int, list[str]]]] = {}
        self._timers: dict[str, list[TimerTrace]] = {}
        self._decisions: dict[int, ApprovalDecision | None] = {}
        self._updates: dict[str, MessageTrace] = {}
        self._answers: dict[int, str] = {}  # update event -> the request it counted for
        self._update_failures: dict[int, str] = {}

    def search_attributes(self, event: HistoryEvent, values: dict[str, Any], task: int) -> None:
        """An upsert: requests appearing opened here, disappearing closed here."""
        approvers = values.get(sa.APPROVERS.name)
        if isinstance(approvers, list):
            self._approvers = [str(name) for name in approvers]
        ids = values.get(sa.PENDING_APPROVALS.name)
        if not isinstance(ids, list):
            return
        ids = [str(i) for i in ids]
        at = event_time(event.event_time)
        for request_id in ids:
            if request_id not in self.opened:
                self.opened[request_id] = ApprovalTrace(
                    request_id=request_id,
                    approvers=self._approvers,
                    requested_at=at,
                    requested_event_id=event.event_id,
                )
                self._stages[request_id] = [(event.event_id, self._approvers)]
            elif len(ids) == 1 and self._stages[request_id][-1][1] != self._approvers:
                self._stages[request_id].append((event.event_id, self._approvers))
        for request_id in self._pending:
            if request_id not in ids:
                self.closed[request_id] = (event.event_id, at)
                self.closed_in[request_id] = task
        self._pending = ids

    def notice(self, scheduled: int, value: Any) -> bool:
        """A `notify_approvers` input: the request in full. True if it was one."""
        notice = typed(ApprovalNotice, value)
        approval = self.opened.get(notice.request.id) if notice else None
        if notice is None or approval is None:
            return False
        request = notice.request
        approval.tool, approval.arguments = request.tool, request.arguments
        approval.args_digest, approval.requester = request.args_digest, request.requester
        approval.required = request.required
        approval.flags = request.flags
        stages = self._stages[request.id]
        if not request.escalated:
            approval.approvers = request.approvers
            stages[0] = (stages[0][0], request.approvers)
        elif stages[-1][1] != request.approvers:
            stages.append((scheduled, request.approvers))
        self.notices[scheduled] = request.id
        return True

    def timer_started(self, timer: TimerTrace) -> None:
        """A timer started while a request waits is its deadline (or its escalated one)."""
        if not self._pending:
            return
        request_id = self._pending[-1]
        timers = self._timers.setdefault(request_id, [])
        timers.append(timer)
        timer.purpose = f"{'escalated ' if len(timers) > 1 else ''}deadline of {request_id}"

    def signal(self, event: HistoryEvent) -> None:
        """WORKFLOW_EXECUTION_SIGNALED."""
        attrs = event.workflow_execution_signaled_event_attributes
        value = first(attrs.input)
        self._message("signal", attrs.signal_name, event, attrs.identity, value, "received")

    def update_accepted(self, event: HistoryEvent) -> None:
        """WORKFLOW_EXECUTION_UPDATE_ACCEPTED: the validator let it through."""
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        value = first(request.input.args)
        message = self._message(
            "update", request.input.name, event, request.meta.identity, value, "accepted"
        )
        self._updates[request.meta.update_id] = message

    def update_completed(self, event: HistoryEvent) -> None:
        """WORKFLOW_EXECUTION_UPDATE_COMPLETED: what the handler answered or raised."""
        attrs = event.workflow_execution_update_completed_event_attributes
        message = self._updates.get(attrs.meta.update_id)
        if message is None:
            return
        if attrs.outcome.HasField("failure"):
            error = error_info(attrs.outcome.failure)
            message.outcome = f"failed: {error.line()}"
            self._update_failures[message.event_id] = error.message
            return
        value = first(attrs.outcome.success)
        message.outcome = f"completed: {preview(value, 120)}"
        answer = typed(DecisionReceipt, value) or typed(ApprovalOutcome, value)
        if answer is not None:
            self._answers[message.event_id] = answer.request_id

    def resolve(
        self, result: RunResult | None, principal: str, runs: dict[int, ActivityRun]
    ) -> tuple[list[ApprovalTrace], list[MessageTrace]]:
        """Every request with its decisions and end; every message with its outcome."""
        recorded = {a.request_id: a for a in (result.approvals if result else [])}
        for approval in self.opened.values():
            self._resolve(approval, recorded.get(approval.request_id), principal)
            approval.notifications = [
                runs[s] for s, r in self.notices.items() if r == approval.request_id and s in runs
            ]
        for message in self.messages:
            if message.event_id in self._decisions and message.approval_id is None:
                decision = self._decisions[message.event_id]
                reason = self._update_failures.get(message.event_id) or (
                    f"no pending approval with id {decision.request_id!r}"
                    if decision
                    else "malformed decision"
                )
                message.outcome = f"refused: {reason}"
        return list(self.opened.values()), self.messages

    def _message(
        self,
        kind: Literal["signal", "update"],
        name: str,
        event: HistoryEvent,
        sender: str,
        value: Any,
        outcome: str,
    ) -> MessageTrace:
        message = MessageTrace(
            kind=kind,
            name=name,
            event_id=event.event_id,
            at=event_time(event.event_time),
            sender=sender,
            summary=preview(value, 160),
            outcome=outcome,
        )
        self.messages.append(message)
        if name == DECIDE:
            self._decisions[event.event_id] = typed(ApprovalDecision, value)
        return message

    def _resolve(
        self, approval: ApprovalTrace, recorded: ApprovalOutcome | None, principal: str
    ) -> None:
        request_id = approval.request_id
        closed = self.closed.get(request_id)
        timers = self._timers.get(request_id, [])
        stages = self._stages.get(request_id, [])
        if timers:
            last = timers[-1]
            approval.deadline = last.started_at + timedelta(seconds=last.seconds)
        for index, timer in enumerate(timers[:-1]):
            to = stages[index + 1][1] if index + 1 < len(stages) else ["?"]
            approval.escalations.append(
                f"no decision within {span(timer.seconds)}: escalated to {', '.join(to)} "
                f"(event {timer.closed_event_id})"
            )
        deciding = self._judge(approval, closed[0] if closed else _NEVER, principal)
        if recorded is not None:
            approval.status, approval.tool = recorded.status, recorded.tool
            approval.approver, approval.reason = recorded.approver, recorded.reason
            approval.requested_at, approval.decided_at = recorded.requested_at, recorded.decided_at
        elif deciding is not None:
            counted = [d for d in approval.decisions if d.counted]
            final = counted[-1]
            approval.status = "approved" if final.approve else "rejected"
            approval.approver = (
                ", ".join(d.approver for d in counted if d.approve)
                if final.approve
                else final.approver
            )
            approval.reason, approval.decided_at = final.reason, deciding.at
        elif closed is not None and timers and timers[-1].state == "fired":
            approval.status, approval.decided_at = "timed_out", timers[-1].closed_at
            approval.reason = f"no decision within {sum(t.seconds for t in timers):g}s"
        if approval.status == "timed_out":
            approval.via = "timeout"
            fired = [t.closed_event_id for t in timers if t.state == "fired"]
            approval.decided_event_id = fired[-1] if fired else closed[0] if closed else None
        elif deciding is not None:
            approval.via, approval.decided_event_id = deciding.kind, deciding.event_id
        elif approval.status != "pending" and closed is not None:
            approval.decided_event_id = closed[0]
        if approval.decided_at is not None:
            approval.waited_seconds = (approval.decided_at - approval.requested_at).total_seconds()

    def _judge(self, approval: ApprovalTrace, end: int, principal: str) -> MessageTrace | None:
        """Go through the decisions naming this request as the gate did.

        Returns the one that ended it (a rejection, or the approval that made enough).
        """
        request_id = approval.request_id
        mine = [
            (m, d)
            for m in self.messages
            if (d := self._decisions.get(m.event_id)) is not None and d.request_id == request_id
        ]
        if approval.args_digest is None:  # an update the gate answered shows the digest
            answered = [d for m, d in mine if self._answers.get(m.event_id) == request_id]
            approval.args_digest = answered[0].args_digest if answered else None
        approved_by: list[str] = []
        ended: MessageTrace | None = None
        for message, decision in mine:
            entry = DecisionTrace(
                event_id=message.event_id,
                via=message.kind,
                approver=decision.approver,
                approve=decision.approve,
                reason=decision.reason,
            )
            if message.kind == "update":
                entry.refused = self._update_failures.get(message.event_id, "")
            else:
                entry.refused = self._gate_refusal(
                    decision, message.event_id, approval, end, ended, approved_by, principal
                )
            entry.counted = not entry.refused
            if entry.counted and ended is None:
                edit = decision.arguments
                if edit is not None and edit != approval.arguments:
                    # The gate put the edit in place: approvals before it no longer count.
                    entry.edited = sorted(
                        k
                        for k in {*edit, *approval.arguments}
                        if edit.get(k) != approval.arguments.get(k)
                    )
                    entry.diff = argument_diff(approval.arguments, edit)
                    approval.original_arguments = approval.original_arguments or approval.arguments
                    approval.arguments = dict(edit)
                    approval.args_digest = decision.digest_approved(approval.tool or "")
                    approved_by = []
                if decision.approve:
                    approved_by.append(decision.approver)
                if not decision.approve or len(approved_by) >= approval.required:
                    ended = message
            approval.decisions.append(entry)
            message.approval_id = request_id
            message.outcome = f"refused: {entry.refused}" if entry.refused else "counted"
        if ended is not None:
            ended.outcome = f"counted; decided {request_id}"
        return ended

    def _gate_refusal(
        self,
        decision: ApprovalDecision,
        event_id: int,
        approval: ApprovalTrace,
        end: int,
        ended: MessageTrace | None,
        approved_by: list[str],
        principal: str,
    ) -> str:
        if ended is not None or event_id > end:
            return f"approval {approval.request_id} was already decided"
        if approval.args_digest and decision.args_digest != approval.args_digest:
            return "its digest does not match the pending call"
        if decision.approver == (approval.requester or principal):
            return f"{decision.approver!r} requested this action and cannot approve it"
        stages = [a for at, a in self._stages.get(approval.request_id, []) if at <= event_id]
        allowed = stages[-1] if stages else approval.approvers
        if allowed and decision.approver not in allowed:
            return f"{decision.approver!r} is not an allowed approver"
        if decision.approver in approved_by:
            return f"{decision.approver!r} already approved it"
        return ""


def argument_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What an edit changed, as a unified diff of the arguments, one field at a time."""
    lines: list[str] = []
    for name, hunks in edited_fields(before, after):
        lines += [f"--- {name} (asked)", f"+++ {name} (approved)", *hunks]
    return "".join(f"{line}\n" for line in lines)
