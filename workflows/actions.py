"""How a workflow performs one tool call: registry, argument check, policy, approval, run.

Shared by the playbooks and the agent loop so every tool call, wherever it comes from,
passes the same gate. The tool is looked up in the typed registry; the model's arguments
are validated against the tool's schema before the policy sees them; the policy decides;
an approval is awaited when it says so; only then does the tool's activity run, on the
privileged queue when the tool is privileged.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow

from steward import policy, queues
from steward.models import (
    ActionRecord,
    AgentProfile,
    Citation,
    ToolCall,
    ToolInvocation,
    ToolSpec,
    idempotency_key,
    problems,
)
from workflows.base import StewardRun
from workflows.options import TOOL_CALL_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.tools import REGISTRY
    from activities.tools.arguments import schema_problems
    from activities.tools.mcp import MCPActivities


class ToolActions:
    """Runs tool calls for one workflow run, through policy and the approval gate."""

    def __init__(self, run: StewardRun) -> None:
        self.run = run
        self.records: list[ActionRecord] = []
        self._calls_by_tool: dict[str, int] = {}

    @property
    def profile(self) -> AgentProfile:
        """The run's profile (with MCP tools described once the run has prepared them)."""
        return self.run.profile

    async def act(self, call: ToolCall) -> ActionRecord:
        """Carry out one call as far as policy and approvers allow; return what happened."""
        record = await self._act(call)
        self.records.append(record)
        workflow.logger.info(
            "tool %s (%s): %s, %s", call.tool, call.id, record.decision, record.outcome
        )
        return record

    async def _act(self, call: ToolCall) -> ActionRecord:
        checked = _validated(call, policy.granted_tool(self.profile, call.tool))
        if isinstance(checked, str):
            return _record(call, "deny", checked, "denied")
        call = checked
        decision = policy.decide(
            call, self.profile, policy.RunState(calls_by_tool=dict(self._calls_by_tool))
        )
        if isinstance(decision, policy.Deny):
            return _record(call, "deny", decision.reason, "denied")
        if isinstance(decision, policy.NeedsApproval):
            outcome = await self.run.ask(call, decision.rule)
            if outcome.status != "approved":
                verdict = "rejected" if outcome.status == "rejected" else "timed_out"
                return _record(call, "approve", decision.reason, verdict, outcome.reason)
        spec = policy.granted_tool(self.profile, call.tool)
        assert spec is not None  # the policy allowed it, so it is granted
        info = workflow.info()
        self._calls_by_tool[call.tool] = self._calls_by_tool.get(call.tool, 0) + 1
        started = workflow.now()
        activity = MCPActivities.call_mcp_tool if spec.mcp_server else REGISTRY[call.tool].activity
        result = await workflow.execute_activity_method(
            activity,
            ToolInvocation(
                call=call,
                idempotency_key=idempotency_key(info.workflow_id, call.id),
                agent=self.profile.name,
                principal=self.run.principal,
            ),
            task_queue=queues.privileged(info.task_queue) if spec.privileged else info.task_queue,
            start_to_close_timeout=timedelta(seconds=spec.timeout_seconds),
            retry_policy=TOOL_CALL_RETRY,
        )
        self.run.ledger.tool_seconds += (workflow.now() - started).total_seconds()
        record = _record(call, decision.kind, decision.reason, "done", result.output)
        record.citations = result.citations
        return record

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
    definition = REGISTRY.get(call.tool)
    if definition is None:
        return f"no tool named {call.tool!r}"
    try:
        arguments = definition.args_model.model_validate(call.arguments).model_dump()
    except ValidationError as err:
        return f"invalid arguments: {problems(err, 'arguments')}"
    return call.model_copy(update={"arguments": arguments})


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
