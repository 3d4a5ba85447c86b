"""Render a trace for people (a terminal tree) and for programs (JSON).

Both views come from the same timeline: every model call, tool call, approval, stray
signal or update, timer and child workflow, in history order, each as a headline and a
few detail lines. The HTML view (`steward.trace.html`) reuses them, so the three never
disagree about what happened.
"""

from __future__ import annotations

import json
from typing import Any

from steward.trace.events import preview, span
from steward.trace.model import (
    ActivityRun,
    ApprovalTrace,
    ChildTrace,
    FailureTrace,
    MessageTrace,
    ModelCall,
    TimerTrace,
    ToolCallTrace,
    Trace,
)

Item = (
    ModelCall
    | ToolCallTrace
    | ApprovalTrace
    | MessageTrace
    | TimerTrace
    | ChildTrace
    | ActivityRun
    | FailureTrace
)


def timeline(trace: Trace) -> list[tuple[int, Item]]:
    """Everything that happened, by the event that shows it first."""
    items: list[tuple[int, Item]] = [(c.activity.scheduled_event_id, c) for c in trace.model_calls]
    items += [(t.event_id, t) for t in trace.tool_calls]
    items += [(a.requested_event_id, a) for a in trace.approvals]
    items += [(m.event_id, m) for m in trace.messages if m.approval_id is None]
    items += [(t.event_id, t) for t in trace.timers if not t.purpose]
    items += [(c.initiated_event_id, c) for c in trace.children]
    items += [(a.scheduled_event_id, a) for a in trace.activities]
    items += [(f.event_id, f) for f in trace.failures if f.where == "workflow task"]
    return sorted(items, key=lambda pair: pair[0])


def failed(item: Item) -> bool:
    """Whether an item went wrong (the HTML view opens these)."""
    if isinstance(item, ModelCall):
        return item.activity.state in ("failed", "timed_out")
    if isinstance(item, ToolCallTrace):
        return item.outcome not in ("done", "running")
    if isinstance(item, ApprovalTrace):
        return item.status in ("rejected", "timed_out")
    if isinstance(item, ChildTrace):
        return item.handoff_failed or item.state in ("failed", "timed_out", "terminated")
    return isinstance(item, FailureTrace)


def describe(item: Item) -> tuple[str, list[str]]:
    """A headline and detail lines for one timeline item."""
    if isinstance(item, ModelCall):
        return _model(item)
    if isinstance(item, ToolCallTrace):
        return _tool(item)
    if isinstance(item, ApprovalTrace):
        return _approval(item)
    if isinstance(item, MessageTrace):
        head = f"{item.kind} {item.name} from {item.sender or '?'}: {item.outcome}"
        return head, [f"payload: {item.summary}"]
    if isinstance(item, TimerTrace):
        return f"timer {item.timer_id} for {span(item.seconds)}: {item.state}", []
    if isinstance(item, ChildTrace):
        return _child(item)
    if isinstance(item, ActivityRun):
        return f"activity {item.activity_type}: {item.state}{_took(item)}", _attempt_lines(item)
    return f"{item.where} failed: {item.error.type}", [item.error.message]


def render_text(trace: Trace) -> str:
    """The trace as a terminal tree, ending with the diagnosis when the run went wrong."""
    lines = header(trace)
    items = timeline(trace)
    for index, (event_id, item) in enumerate(items):
        last = index == len(items) - 1
        head, details = describe(item)
        lines.append(f"{'└─' if last else '├─'} [{event_id}] {head}")
        lines.extend(f"{'   ' if last else '│  '}   {line}" for line in details)
    lines.append("")
    lines.extend(footer(trace))
    return "\n".join(lines) + "\n"


def render_json(trace: Trace) -> str:
    """The trace as JSON; `Trace.model_validate_json` reads it back."""
    return trace.model_dump_json(indent=2)


def header(trace: Trace) -> list[str]:
    """The run: what, who, how it ended."""
    run = trace.run
    took = f" in {span(run.duration_seconds)}" if run.duration_seconds is not None else ""
    outcome = f" ({run.outcome})" if run.outcome and run.outcome != run.status else ""
    lines = [
        f"{run.workflow_type} {run.workflow_id}: {run.status}{outcome}{took}",
        f"  run {run.run_id or '?'}  queue {run.task_queue or '?'}  {run.event_count} events",
    ]
    if run.agent or run.principal:
        verified = " (verified)" if run.principal_verified else ""
        lines.append(f"  agent {run.agent or '?'}, asked by {run.principal or '?'}{verified}")
    if run.config_digest:
        lines.append(f"  what it may do: resolved by the workers' config {run.config_digest}")
    if run.patches:
        lines.append(f"  patches: {', '.join(run.patches)}")
    lines.append(f"  input: {run.input_summary}")
    if run.answer_preview:
        lines.append(f"  answer: {run.answer_preview}")
    return lines


def footer(trace: Trace) -> list[str]:
    """Totals, failures and retries, notes, and the diagnosis."""
    run = trace.run
    retries = sum(max(c.activity.attempts - 1, 0) for c in trace.model_calls)
    fallbacks = sum(1 for c in trace.model_calls if c.fallback_to)
    if run.cost_usd is None:
        cost = f"unknown ({run.unpriced_calls} calls unpriced)"
    else:
        unpriced = f" + {run.unpriced_calls} calls unpriced" if run.unpriced_calls else ""
        cost = f"{money(run.cost_usd)}{unpriced}"
    waited = sum(a.waited_seconds or 0.0 for a in trace.approvals)
    lines = [
        f"model calls: {len(trace.model_calls)} ({retries} retries, {fallbacks} fallbacks), "
        f"tokens {run.input_tokens} in + {run.output_tokens} out, "
        f"cost {cost}",
        f"tool calls: {len(trace.tool_calls)}; approvals: {len(trace.approvals)}"
        + (f" (waited {span(waited)})" if trace.approvals else ""),
    ]
    handoffs = [c for c in trace.children if c.specialist]
    if handoffs:
        failed_handoffs = sum(1 for c in handoffs if c.handoff_failed)
        lines.append(
            f"handoffs: {len(handoffs)} ({failed_handoffs} failed); the specialists' model "
            "calls and cost are in their own traces, and rolled up in the run's ledger"
        )
    if trace.failures:
        lines.append("failures and retries:")
        for failure in trace.failures:
            attempt = f" attempt {failure.attempt}" if failure.attempt else ""
            final = " (final)" if failure.final else " (retried)"
            lines.append(
                f"  [{failure.event_id}] {failure.where}{attempt}{final}: {failure.error.line()}"
            )
    lines.extend(f"note: {note}" for note in trace.notes)
    if trace.diagnosis is not None:
        lines.append(f"diagnosis: {trace.diagnosis.line()}")
    return lines


def money(cost: float | None) -> str:
    """A cost in dollars, or why there is none."""
    return "unpriced" if cost is None else f"${cost:.6f}"


def _model(call: ModelCall) -> tuple[str, list[str]]:
    activity = call.activity
    if activity.state == "completed":
        usage = (
            f"{call.input_tokens}+{call.output_tokens} tokens, {money(call.cost_usd)}, "
            f"{call.latency_ms or 0:.0f} ms"
        )
    else:
        usage = activity.state.replace("_", " ").upper() if activity.closed_at else "running"
    tries = f", {activity.attempts} attempts" if activity.attempts > 1 else ""
    head = f"model {call.step}: tier {call.tier} -> {call.model}  {usage}{tries}"
    lines = [f"rule: {call.rule}"] if call.rule else []
    if call.deployment:
        lines.append(f"deployment {call.deployment} of tier {call.tier}")
    if call.fallback_from:
        lines.append(f"fallback from {call.fallback_from}")
    lines.append(f"prompt: {call.prompt_preview}")
    if call.path in ("schema", "native"):
        lines.append(
            f"constrained by: {'native tool calls' if call.path == 'native' else 'JSON schema'}"
        )
    if call.routed:
        lines.append(f"routed to: {call.routed}")
    if call.answer_preview:
        lines.append(f"answer: {call.answer_preview}")
    if call.tool_calls:
        lines.append(f"called: {', '.join(call.tool_calls)}")
    lines.extend(_attempt_lines(activity))
    if call.fallback_to:
        lines.append(f"fell back to {call.fallback_to}")
    return head, lines


def _child(child: ChildTrace) -> tuple[str, list[str]]:
    lines = [f"error: {child.error.line()}"] if child.error else []
    if child.specialist is None:
        return f"child workflow {child.workflow_type} {child.workflow_id}: {child.state}", lines
    ended = f" ({child.outcome})" if child.outcome and child.outcome != child.state else ""
    head = (
        f"handoff to {child.specialist}: child {child.workflow_type} {child.workflow_id}: "
        f"{child.state}{ended}"
    )
    if child.answer_preview:
        lines.append(f"answer: {child.answer_preview}")
    lines.append(f"its own trace: steward trace {child.workflow_id}")
    return head, lines


def _tool(tool: ToolCallTrace) -> tuple[str, list[str]]:
    took = _took(tool.activity) if tool.activity else ""
    decision = tool.decision or "?"
    head = f"tool {tool.tool} ({tool.call_id}): policy {decision} -> {tool.outcome}{took}"
    inferred = ""
    if tool.decision_source == "inferred":
        inferred = " (inferred: the run recorded no actions)"
    lines = [f"reason: {tool.reason}{inferred}" if tool.reason else f"reason: ?{inferred}"]
    if tool.arguments:
        lines.append(f"arguments: {preview(_args(tool.arguments))}")
    if tool.approval_id:
        lines.append(f"approval: {tool.approval_id}")
    lines.extend(f"guardrail {verdict}" for verdict in tool.guardrails)
    if tool.output:
        lines.append(f"{'result' if tool.outcome == 'done' else 'note'}: {preview(tool.output)}")
    if tool.activity is not None:
        lines.extend(_attempt_lines(tool.activity))
        lines.append(f"queue {tool.activity.task_queue}, idempotency key {tool.idempotency_key}")
    return head, lines


def _approval(approval: ApprovalTrace) -> tuple[str, list[str]]:
    tool = approval.tool or "?"
    if approval.status == "pending":
        state = f"pending since {approval.requested_at:%Y-%m-%d %H:%M:%S} UTC"
    elif approval.status == "timed_out":
        state = f"timed out after {span(approval.waited_seconds)}"
    else:
        state = f"{approval.status} by {approval.approver} after {span(approval.waited_seconds)}"
    needs = f"{approval.required} of " if approval.required > 1 else "one of "
    lines = [f"approvers: {needs}{', '.join(approval.approvers) or '?'}"]
    if approval.requester:
        lines.append(f"requested by {approval.requester}, arguments digest {approval.args_digest}")
    if approval.arguments:
        lines.append(f"arguments: {preview(_args(approval.arguments))}")
    lines.extend(f"flagged: {flag}" for flag in approval.flags)
    lines.extend(
        f"notified approvers (event {n.scheduled_event_id}): {n.state}{_took(n)}"
        for n in approval.notifications
    )
    lines.extend(approval.escalations)
    if approval.deadline is not None:
        lines.append(f"deadline: {approval.deadline:%Y-%m-%d %H:%M:%S} UTC")
    for decision in approval.decisions:
        verdict = "approve" if decision.approve else "reject"
        said = f" ({decision.reason})" if decision.reason else ""
        counted = "counted" if decision.counted else f"refused: {decision.refused}"
        lines.append(
            f"{decision.via} from {decision.approver} (event {decision.event_id}): "
            f"{verdict}{said}, {counted}"
        )
        if decision.edited:
            lines.append(f"  edited {', '.join(decision.edited)}:")
            lines.extend(f"    {line}" for line in decision.diff.splitlines())
    if approval.via:
        where = f" (event {approval.decided_event_id})" if approval.decided_event_id else ""
        lines.append(f"decided by {approval.via}{where}")
    if approval.reason and not any(d.counted for d in approval.decisions):
        lines.append(f"reason: {approval.reason}")
    return f"approval {approval.request_id} for {tool}: {state}", lines


def _attempt_lines(activity: ActivityRun) -> list[str]:
    lines = [f"attempt {a.attempt} failed: {a.error.line()}" for a in activity.failed_attempts]
    if activity.retry_state and activity.state != "completed":
        lines.append(f"gave up: {activity.retry_state.replace('_', ' ')}")
    return lines


def _took(activity: ActivityRun | None) -> str:
    if activity is None or activity.duration_ms is None:
        return ""
    return f" in {span(activity.duration_ms / 1000)}"


def _args(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, default=str)
