"""Recorded runs as regression cases: `steward eval --from-history WORKFLOW_ID...`.

A run's history holds its input (with the profile in force), every model answer, every
retrieval and tool result, and every approval decision. A case built from it runs the
workflow again, today's code, from the same input, with a `Script` that answers each model
call, search and tool call as recorded and approvals answered as they were; no model is
called. Its expectations are what the recorded run ended with: status, answer, details,
the actions taken and the model steps made. A change to the orchestration that changes
any of these fails the case; one that does not, passes, whatever the model would say now.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import WorkflowHistory

from evals.expectations import ExactSpec, Expectation, StatusSpec
from evals.models import ApprovalStep
from evals.script import Script, ScriptedAnswer, ScriptedError, ScriptedSearch, ScriptedTool
from evals.suite import Suite, SuiteCase, SuiteError
from steward.models import (
    AgentProfile,
    LegacyRunRequest,
    LLMRequest,
    LLMResult,
    MCPToolList,
    MCPToolsRequest,
    RunRequest,
    RunResult,
    ToolInvocation,
    ToolResult,
)
from steward.trace import build_trace
from steward.trace.events import error_info, first, kind, resolved_run, typed
from steward.trace.model import ApprovalTrace

_NOT_AN_ID = re.compile(r"[^A-Za-z0-9._-]")


def case_from_history(history: WorkflowHistory) -> SuiteCase:
    """A regression case that re-runs this recorded run with its recorded answers."""
    if not history.events or kind(history.events[0]) != "WORKFLOW_EXECUTION_STARTED":
        raise SuiteError(f"{history.workflow_id}: the history does not start with the run")
    started = history.events[0].workflow_execution_started_event_attributes
    given = first(started.input)
    if kind(history.events[-1]) == "WORKFLOW_EXECUTION_CONTINUED_AS_NEW" or (
        isinstance(given, dict) and given.get("resume")
    ):
        raise SuiteError(
            f"{history.workflow_id}: this run is one of a chain that continued as new; a "
            "case re-runs one whole run, so record a run that ended in one history"
        )
    if any(kind(event) == "START_CHILD_WORKFLOW_EXECUTION_INITIATED" for event in history.events):
        raise SuiteError(
            f"{history.workflow_id}: this run handed work to specialists, whose answers are in "
            "their own histories; a case re-runs one history, so record a run without handoffs"
        )
    request: RunRequest | LegacyRunRequest | None = typed(RunRequest, given) or typed(
        LegacyRunRequest, given
    )
    if request is None:
        raise SuiteError(
            f"{history.workflow_id} is a {started.workflow_type.name}, not a playbook or "
            "agent run (its input is not a RunRequest)"
        )
    trace = build_trace(history)
    if trace.run.status == "running":
        raise SuiteError(f"{history.workflow_id} is still running; record it once it ends")
    result = _result(history)
    expect: list[Expectation] = [
        StatusSpec(value=[result.status if result is not None else "error"]),
    ]
    if result is not None:
        expect += [
            ExactSpec(field="answer", value=result.answer),
            ExactSpec(field="details", value=result.details),
            ExactSpec(field="actions.*.tool", value=[a.tool for a in result.actions]),
            ExactSpec(field="actions.*.outcome", value=[a.outcome for a in result.actions]),
            ExactSpec(field="model_calls.*.step", value=[c.step for c in result.model_calls]),
            ExactSpec(field="approvals.*.status", value=[a.status for a in result.approvals]),
        ]
        cited = getattr(result, "citations", None)
        if cited:
            expect.append(ExactSpec(field="citations.*.source", value=[c.source for c in cited]))
    return SuiteCase(
        id=_case_id(history.workflow_id),
        request=request,
        profile=_resolved_profile(history) if isinstance(request, RunRequest) else None,
        tags=["from-history", started.workflow_type.name],
        approvals=_approvals(trace.approvals),
        expect=expect,
        script=script_from_history(history),
    )


def _resolved_profile(history: WorkflowHistory) -> AgentProfile | None:
    resolved = resolved_run(history.events)
    return resolved.profile if resolved is not None else None


def script_from_history(history: WorkflowHistory) -> Script:
    """Every model answer, search, MCP description and tool result the run recorded."""
    inputs: dict[int, tuple[str, Any]] = {}
    script = Script(source=f"history:{history.workflow_id}")
    for event in history.events:
        name = kind(event)
        if name == "ACTIVITY_TASK_SCHEDULED":
            attrs = event.activity_task_scheduled_event_attributes
            inputs[event.event_id] = (attrs.activity_type.name, first(attrs.input))
        elif name == "ACTIVITY_TASK_COMPLETED":
            attrs_done = event.activity_task_completed_event_attributes
            activity, given = inputs.get(attrs_done.scheduled_event_id, ("", None))
            _completed(script, activity, given, first(attrs_done.result))
        elif name == "ACTIVITY_TASK_FAILED":
            attrs_failed = event.activity_task_failed_event_attributes
            activity, given = inputs.get(attrs_failed.scheduled_event_id, ("", None))
            error = error_info(attrs_failed.failure)
            _failed(script, activity, given, ScriptedError(type=error.type, message=error.message))
    return script


def _completed(script: Script, activity: str, given: Any, value: Any) -> None:
    if (request := typed(LLMRequest, given)) is not None:
        answer = typed(LLMResult, value)
        if answer is not None:
            script.model.append(
                ScriptedAnswer(
                    step=request.step,
                    deployment=request.deployment,
                    text=answer.text,
                    model=answer.model,
                    input_tokens=answer.usage.input_tokens,
                    output_tokens=answer.usage.output_tokens,
                    cost_usd=answer.usage.cost_usd,
                    latency_ms=answer.latency_ms,
                    attempt=answer.attempt,
                    tool_calls=answer.tool_calls,
                    path=answer.path,
                )
            )
    elif (invocation := typed(ToolInvocation, given)) is not None:
        output = typed(ToolResult, value)
        if output is not None:
            citations = value.get("citations", []) if isinstance(value, dict) else []
            script.tools.append(
                ScriptedTool(
                    call_id=invocation.call.id,
                    tool=invocation.call.tool,
                    output=output.output,
                    ok=output.ok,
                    citations=citations,
                )
            )
    elif (described := typed(MCPToolsRequest, given)) is not None:
        listed = typed(MCPToolList, value)
        if listed is not None:
            script.mcp[described.server] = listed
    elif activity == "retrieve" and isinstance(given, dict) and isinstance(value, dict):
        script.searches.append(
            ScriptedSearch(
                collection=str(given.get("collection", "")),
                query=str(given.get("query", "")),
                chunks=list(value.get("chunks", [])),
                embedder=str(value.get("embedder", "recorded")),
            )
        )


def _failed(script: Script, activity: str, given: Any, error: ScriptedError) -> None:
    if (request := typed(LLMRequest, given)) is not None:
        script.model.append(
            ScriptedAnswer(step=request.step, deployment=request.deployment, error=error)
        )
    elif (invocation := typed(ToolInvocation, given)) is not None:
        script.tools.append(
            ScriptedTool(call_id=invocation.call.id, tool=invocation.call.tool, error=error)
        )
    elif activity == "retrieve" and isinstance(given, dict):
        script.searches.append(
            ScriptedSearch(
                collection=str(given.get("collection", "")),
                query=str(given.get("query", "")),
                error=error,
            )
        )


def _result(history: WorkflowHistory) -> RunResult | None:
    last = history.events[-1]
    if kind(last) != "WORKFLOW_EXECUTION_COMPLETED":
        return None
    value = first(last.workflow_execution_completed_event_attributes.result)
    return typed(RunResult, value)


def _approvals(approvals: list[ApprovalTrace]) -> list[ApprovalStep]:
    """One step per notice the run sent: a timeout per escalation, then how it ended."""
    steps: list[ApprovalStep] = []
    for approval in approvals:
        steps += [ApprovalStep(decision="timeout") for _ in approval.escalations]
        if approval.status == "approved":
            named = (
                approval.approver if approval.approver and "," not in approval.approver else None
            )
            # An approver's edit is replayed as that edit (what was approved, and sent).
            edit = approval.arguments if approval.original_arguments is not None else None
            steps.append(ApprovalStep(decision="approve", approver=named, arguments=edit))
        elif approval.status == "rejected":
            steps.append(
                ApprovalStep(decision="reject", approver=approval.approver, reason=approval.reason)
            )
        else:
            steps.append(ApprovalStep(decision="timeout"))
    return steps or [ApprovalStep(decision="approve")]


def _case_id(workflow_id: str) -> str:
    cleaned = _NOT_AN_ID.sub("-", workflow_id).strip("-._") or "recorded"
    return cleaned[:80]


def suite_from_histories(histories: list[WorkflowHistory], name: str = "from-history") -> Suite:
    """A suite of regression cases, one per recorded run."""
    if not histories:
        raise SuiteError("give at least one workflow id or history file")
    cases = [case_from_history(history) for history in histories]
    seen: set[str] = set()
    for case in cases:
        while case.id in seen:
            case.id = f"{case.id[:77]}-{len(seen)}"
        seen.add(case.id)
    return Suite(
        suite=name,
        description="Recorded runs re-run with their recorded model, retrieval and tool results.",
        cases=cases,
    )


def save_suite(suite: Suite, path: Path) -> None:
    """Write a suite as YAML that `steward eval FILE` runs again."""
    data = suite.model_dump(mode="json", exclude_defaults=True)
    for case, dumped in zip(suite.cases, data["cases"], strict=True):
        # `kind` has a default in each scorer's model, but it is what tells them apart.
        dumped["expect"] = [
            {"kind": spec.kind, **spec.model_dump(mode="json", exclude_defaults=True)}
            for spec in case.expect
        ]
        if case.profile is not None:
            # Whole: a guardrail check's `kind` is its default, yet what tells checks apart.
            dumped["profile"] = case.profile.model_dump(mode="json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Regression cases recorded by `steward eval --from-history`; each re-runs a\n"
        "# recorded run with its recorded model answers and tool results (no model call).\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
