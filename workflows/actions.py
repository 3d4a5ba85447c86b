"""How a workflow performs one tool call: registry, argument check, policy, approval, run.

Shared by the playbooks and the agent loop so every tool call, wherever it comes from,
passes the same gate. The tool is looked up in the typed registry; the model's arguments
are validated against the tool's schema before the policy sees them; the policy decides;
an approval is awaited when it says so; only then does the tool's activity run, on the
privileged queue when the tool is privileged. A `handoff` is not a tool: its arguments are
checked against the specialists granted, then `workflows.handoffs` runs each task as a
child workflow whose own tool calls pass this same gate under the specialist's grants.
`ask_human` has no activity either: once granted and allowed, the run asks its principal
and waits, durably, for the reply.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from steward import errors, handoffs, policy, queues, tools
from steward.events import ToolFinished, ToolStarted, excerpt
from steward.guardrails import Verdict, failures
from steward.models import (
    ActionRecord,
    AgentProfile,
    ApprovalRequest,
    Citation,
    ToolCall,
    ToolInvocation,
    ToolResult,
    ToolSpec,
    idempotency_key,
    problems,
)
from steward.questions import ASK_HUMAN, AskHumanArgs
from workflows.base import StewardRun
from workflows.handoffs import hand_off
from workflows.options import LEGACY_TOOL_CALL_RETRY, TOOL_CALL_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.tools.arguments import schema_problems
    from activities.tools.mcp import MCPActivities


class ToolActions:
    """Runs tool calls for one workflow run, through policy and the approval gate."""

    def __init__(self, run: StewardRun) -> None:
        self.run = run
        self.records: list[ActionRecord] = []
        self.handoffs: list[handoffs.HandoffResult] = []
        self._calls_by_tool: dict[str, int] = {}
        self._approval_id = ""
        self._edited: dict[str, Any] | None = None
        self._guard_retries: dict[str, int] = {}
        # Approvers may edit a waiting call; the edit passes the same checks as the call.
        run.gate.edit_check = self.check_edit

    @property
    def profile(self) -> AgentProfile:
        """The run's profile (with MCP tools described once the run has prepared them)."""
        return self.run.profile

    async def act(self, call: ToolCall, flags: Sequence[str] = ()) -> ActionRecord:
        """Carry out one call as far as policy and approvers allow; return what happened.

        `flags` (what a step's guardrail found) are shown with the call's approval.
        """
        self.run.events.publish(
            ToolStarted(call_id=call.id, tool=call.tool, args_digest=call.digest())
        )
        record = await self._act(call, flags)
        self._done(record)
        return record

    def refuse(self, call: ToolCall, reason: str) -> ActionRecord:
        """Record a call that cannot be carried out as the model gave it (unreadable
        arguments, say): denied, with the reason the model will read.
        """
        record = _record(call, "deny", reason, "denied")
        self._done(record)
        return record

    def _done(self, record: ActionRecord) -> None:
        self.records.append(record)
        workflow.logger.info(
            "tool %s (%s): %s, %s", record.tool, record.call_id, record.decision, record.outcome
        )
        self.run.events.publish(
            ToolFinished(
                call_id=record.call_id,
                tool=record.tool,
                decision=record.decision,
                outcome=record.outcome,
                reason=record.reason,
                output=excerpt(record.output),
            )
        )

    async def _act(self, call: ToolCall, step_flags: Sequence[str] = ()) -> ActionRecord:
        if call.tool == ASK_HUMAN:
            return await self._ask_human(call)
        if call.tool == handoffs.HANDOFF:
            return await self._hand_off(call)
        checked = _validated(call, policy.granted_tool(self.profile, call.tool))
        if isinstance(checked, str):
            return _record(call, "deny", checked, "denied")
        call = checked
        verdicts, stopped = await self._guarded(call)
        if stopped is not None:
            return stopped
        flags = [*step_flags, *(verdict.line() for verdict in failures(verdicts))]
        decision = await self._cleared(call, flags)
        if isinstance(decision, ActionRecord):
            decision.guardrails = verdicts
            return decision
        record = await self._run(call, decision)
        record.guardrails = verdicts
        return record

    async def _guarded(self, call: ToolCall) -> tuple[list[Verdict], ActionRecord | None]:
        """The guardrails' verdicts on the call's arguments, and the record of the call
        when they stop it: `block`, or `retry` (the model is told why and may call again,
        up to the guardrail's retries; then it blocks). `flag` lets it go on, flagged.
        """
        spec = policy.granted_tool(self.profile, call.tool)
        if spec is None or not spec.guardrails:
            return [], None
        verdicts: list[Verdict] = []
        stop: str | None = None
        for argument, guardrail in spec.guardrails.items():
            value = call.arguments.get(argument)
            text = value if isinstance(value, str) else json.dumps(value)
            found = await self.run.guard(
                guardrail, text, target=f"{call.tool}.{argument}", arguments=call.arguments
            )
            verdicts += found
            failed = failures(found)
            if not failed or guardrail.on_fail == "flag":
                continue
            why = "; ".join(f"{v.target}: {v.check}: {v.detail}" for v in failed)
            tries = self._guard_retries.get(call.tool, 0)
            if guardrail.on_fail == "retry" and tries < guardrail.max_retries:
                self._guard_retries[call.tool] = tries + 1
                stop = f"guardrail failed ({why}); fix it and call {call.tool} again"
            else:
                stop = f"blocked by a guardrail: {why}"
        if stop is None:
            return verdicts, None
        record = _record(call, "deny", stop, "denied")
        record.guardrails = verdicts
        return verdicts, record

    async def _run(
        self, call: ToolCall, decision: policy.Allow | policy.NeedsApproval
    ) -> ActionRecord:
        """Run a cleared call's activity (the approver's edit, if any) and record it."""
        if self._edited is not None:
            # An approver edited the call: what runs is exactly what they approved.
            call, self._edited = call.model_copy(update={"arguments": self._edited}), None
        spec = policy.granted_tool(self.profile, call.tool)
        assert spec is not None  # the policy allowed it, so it is granted
        info = workflow.info()
        self._calls_by_tool[call.tool] = self._calls_by_tool.get(call.tool, 0) + 1
        started = workflow.now()
        evidence = None
        if isinstance(decision, policy.NeedsApproval):
            evidence = self.run.gate.evidence.pop(self._approval_id, None)
        invocation = ToolInvocation(
            call=call,
            idempotency_key=idempotency_key(info.workflow_id, call.id, self.run.run_id),
            agent=self.profile.name,
            principal=self.run.principal,
            run_id=self.run.run_id,
            principal_verified=self.run.principal_verified,
            approval=evidence,
        )
        try:
            # A built-in tool's activity is named after it (steward.tools).
            result = await workflow.execute_activity(
                MCPActivities.call_mcp_tool.__name__ if spec.mcp_server else call.tool,
                invocation,
                result_type=ToolResult,
                task_queue=queues.privileged(info.task_queue)
                if spec.privileged
                else info.task_queue,
                start_to_close_timeout=timedelta(seconds=spec.timeout_seconds),
                schedule_to_close_timeout=None
                if self.run.legacy
                else timedelta(seconds=spec.retry_seconds + spec.timeout_seconds),
                retry_policy=LEGACY_TOOL_CALL_RETRY if self.run.legacy else TOOL_CALL_RETRY,
                summary=f"{call.tool} ({call.id})",
            )
        except ActivityError as err:
            if self.run.legacy:
                raise  # recorded runs failed here, and replay must too
            refused = _not_authorized(err)
            if refused is not None:
                # The worker about to act said no, by its own config: nothing was done.
                return _record(call, "deny", refused, "denied")
            # Failed for good (a bounced recipient, or retried past its window): recorded
            # as what became of the call; the playbook or the model decides what next.
            self.run.ledger.tool_seconds += (workflow.now() - started).total_seconds()
            return _record(call, decision.kind, _failed_for_good(err, spec), "failed")
        self.run.ledger.tool_seconds += (workflow.now() - started).total_seconds()
        record = _record(call, decision.kind, decision.reason, "done", result.output)
        record.citations = result.citations
        record.output_blob = result.output_blob
        return record

    async def _hand_off(self, call: ToolCall) -> ActionRecord:
        """Hand tasks to granted specialists, each a child workflow with its own grants."""
        if not self.profile.specialists:
            return _record(
                call, "deny", f"no specialists granted to {self.profile.name!r}", "denied"
            )
        try:
            args = handoffs.HandoffArgs.model_validate(call.arguments)
        except ValidationError as err:
            return _record(
                call, "deny", f"invalid arguments: {problems(err, 'arguments')}", "denied"
            )
        refused = handoffs.refused(self.profile, args)
        if refused is not None:
            return _record(call, "deny", refused, "denied")
        call = call.model_copy(update={"arguments": args.model_dump()})
        results = await hand_off(self.run, call, args)
        self.handoffs.extend(results)
        return handoffs.record(call, results)

    async def _ask_human(self, call: ToolCall) -> ActionRecord:
        """Ask the run's principal a question (if granted and the policy allows) and wait.

        The reply goes back to the model as the call's output, quoted as data like any
        tool's; no reply by the deadline is the outcome `timed_out`.
        """
        if policy.granted_tool(self.profile, ASK_HUMAN) is None:
            refused = f"tool {ASK_HUMAN!r} is not granted to {self.profile.name!r}"
            return _record(call, "deny", refused, "denied")
        try:
            args = AskHumanArgs.model_validate(call.arguments)
        except ValidationError as err:
            return _record(
                call, "deny", f"invalid arguments: {problems(err, 'arguments')}", "denied"
            )
        call = call.model_copy(update={"arguments": args.model_dump()})
        decision = await self._cleared(call)
        if isinstance(decision, ActionRecord):
            return decision
        answer = await self.run.ask_human(
            args.question, args.timeout_seconds, audience=[self.run.principal]
        )
        # Counted once asked and ended, so a question carried across continue-as-new and
        # asked again is not counted twice.
        self._calls_by_tool[ASK_HUMAN] = self._calls_by_tool.get(ASK_HUMAN, 0) + 1
        if answer.status == "timed_out":
            late = f"no reply within {args.timeout_seconds:g}s"
            return _record(call, decision.kind, late, "timed_out")
        replied = f"{answer.sender} replied"
        return _record(call, decision.kind, replied, "done", answer.text)

    async def _cleared(
        self, call: ToolCall, flags: list[str] | None = None
    ) -> policy.Allow | policy.NeedsApproval | ActionRecord:
        """The policy's go-ahead for a checked call (waiting for approval when it needs
        one, `flags` shown with it), or the record of why it does not go ahead.
        """
        decision = policy.decide(
            call, self.profile, policy.RunState(calls_by_tool=dict(self._calls_by_tool))
        )
        if isinstance(decision, policy.Deny):
            return _record(call, "deny", decision.reason, "denied")
        if isinstance(decision, policy.NeedsApproval):
            spec = policy.granted_tool(self.profile, call.tool)
            outcome = await self.run.ask(
                call, decision.rule, spec.locked if spec else (), flags or ()
            )
            if outcome.status != "approved":
                verdict = "rejected" if outcome.status == "rejected" else "timed_out"
                return _record(call, "approve", decision.reason, verdict, outcome.reason)
            self._approval_id = outcome.request_id
            self._edited = outcome.arguments
        return decision

    def check_edit(
        self, request: ApprovalRequest, arguments: dict[str, Any]
    ) -> dict[str, Any] | str:
        """An approver's edit of a waiting call, as the tool writes it; or why it is refused.

        The edited call passes what the call passed: the tool's schema, then the policy
        (an edit cannot turn a call into one the policy denies).
        """
        spec = policy.granted_tool(self.profile, request.tool)
        if spec is None:
            return "this request is not a tool call; approve or reject it"
        edited = ToolCall(id="edit", tool=request.tool, arguments=arguments)
        checked = _validated(edited, spec)
        if isinstance(checked, str) and spec.mcp_server is not None:
            # A schema validator quotes the values it refuses; a refusal names fields only.
            problems_ = checked.removeprefix("invalid arguments: ").split("; ")
            fields = sorted({line.partition(":")[0] for line in problems_})
            return f"invalid arguments: {', '.join(fields)} do not fit the tool's schema"
        if isinstance(checked, str):
            return checked
        verdict = policy.decide(
            checked, self.profile, policy.RunState(calls_by_tool=dict(self._calls_by_tool))
        )
        if isinstance(verdict, policy.Deny):
            return f"the edited call is denied: {verdict.reason}"
        return checked.arguments

    def counts(self) -> dict[str, int]:
        """Calls made per tool (for `max_calls_per_run`), to carry across continue-as-new."""
        return dict(self._calls_by_tool)

    def restore_counts(self, counts: dict[str, int]) -> None:
        """Take over the previous run's call counts, so limits hold across the chain."""
        self._calls_by_tool = dict(counts)

    def citations(self) -> list[Citation]:
        """The passages the run's searches returned, each once, in the order found."""
        found: dict[tuple[str, str, int], Citation] = {}
        for record in self.records:
            for citation in record.citations:
                found.setdefault((citation.collection, citation.source, citation.chunk), citation)
        return list(found.values())


def _validated(call: ToolCall, spec: ToolSpec | None) -> ToolCall | str:
    """The call with its arguments checked against the tool's schema, or why they fail.

    Built-in tools validate with their pydantic model (and get its normalised values); an
    MCP tool with the JSON schema its server gave when the run started. A tool that is
    neither registered nor a granted MCP tool does not exist for this agent.
    """
    if spec is not None and spec.mcp_server is not None:
        failures = schema_problems(spec.input_schema or {"type": "object"}, call.arguments)
        return f"invalid arguments: {'; '.join(failures)}" if failures else call
    entry = tools.find(call.tool)
    if entry is None or entry.provider is None:
        return f"no tool named {call.tool!r}"
    try:
        arguments = entry.normalized(call.arguments)
    except ValidationError as err:
        return f"invalid arguments: {problems(err, 'arguments')}"
    return call.model_copy(update={"arguments": arguments})


def _failed_for_good(err: ActivityError, spec: ToolSpec) -> str:
    """Why a tool call failed for good, in one line: its last error, and the retry window
    when that is what ran out.
    """
    cause: BaseException | None = err.cause
    window = ""
    if isinstance(cause, TimeoutError):
        window = f"still failing after retrying for {spec.retry_seconds:g}s"
        cause = cause.cause if cause.cause is not None else cause
    if isinstance(cause, ApplicationError):
        said = f"{cause.type}: {cause.message}" if cause.type else cause.message
    else:
        said = str(cause or err)
    return f"{window}: {said}" if window else said


def _not_authorized(err: ActivityError) -> str | None:
    """The acting worker's refusal, if that is why the tool activity failed."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == errors.NOT_AUTHORIZED:
        return cause.message
    return None


def _record(
    call: ToolCall, decision: str, reason: str, outcome: str, output: str = ""
) -> ActionRecord:
    return ActionRecord.model_validate(
        {
            "call_id": call.id,
            "tool": call.tool,
            "args_digest": call.digest(),
            "decision": decision,
            "reason": reason,
            "outcome": outcome,
            "output": output,
        }
    )
