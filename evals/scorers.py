"""The deterministic scorers: each reads a run's result and its history, and gives a Score.

A scorer sees a `RunView`: the result as data (what `steward status --json` shows), the
typed result when it parses, the trace built from the run's history (tool calls with
their arguments, approvals, timings) and the failure when the workflow itself failed.
Fields are addressed by dotted paths into the result: `answer`, `details.category`,
`actions.*.outcome` (a `*` collects one field of every item). The LLM judge lives in
`evals.judge`: it needs a model call, which the workflow makes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, SchemaError
from pydantic import BaseModel

from evals.expectations import (
    ApprovalSpec,
    CitationSpec,
    ContainsSpec,
    ExactSpec,
    Expectation,
    GuardrailSpec,
    JsonSchemaSpec,
    MaxCostSpec,
    MaxLatencySpec,
    MaxModelCallsSpec,
    NotContainsSpec,
    RegexSpec,
    StatusSpec,
    ToolCalledSpec,
)
from evals.fields import MISSING, as_text, resolve
from evals.labels import label
from evals.models import Score
from steward.guardrails import Guardrail, failures, run_checks
from steward.models import RunResult
from steward.trace.events import typed
from steward.trace.model import Trace

ERROR_STATUS = "error"
"""The status a case has when its workflow failed instead of returning a result."""


@dataclass(frozen=True)
class RunView:
    """What scorers read about one run."""

    data: dict[str, Any]
    result: RunResult | None
    trace: Trace | None
    error: str = ""

    @classmethod
    def of(cls, result: dict[str, Any] | None, trace: Trace | None, error: str = "") -> RunView:
        """A view of a finished run; a failed run has no result and status `error`."""
        data = dict(result or {})
        if result is None:
            data["status"] = ERROR_STATUS
        data["error"] = error
        return cls(data=data, result=typed(RunResult, result), trace=trace, error=error)

    @property
    def status(self) -> str:
        """The run's status, or `error` when the workflow failed."""
        return str(self.data.get("status", ERROR_STATUS))


def score(spec: Expectation, view: RunView, name: str | None = None) -> Score:
    """Apply one deterministic scorer to a run."""
    scorer = _SCORERS.get(spec.kind)
    if scorer is None:
        raise ValueError(f"{spec.kind} is not a deterministic scorer")
    passed, value, detail = scorer(spec, view)
    return Score(
        name=name or label(spec),
        kind=spec.kind,
        passed=passed,
        required=spec.required,
        value=value,
        detail=detail,
    )


Verdict = tuple[bool, float | None, str]


def _field(view: RunView, field: str) -> Any:
    return resolve(view.data, field)


def _exact(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, ExactSpec)
    actual = _field(view, spec.field)
    if actual is MISSING:
        return False, None, f"{spec.field} is not in the result"
    expected = spec.value
    if isinstance(actual, str) and isinstance(expected, str):
        left, right = actual.strip(), expected.strip()
        if not spec.case_sensitive:
            left, right = left.casefold(), right.casefold()
        same = left == right
    else:
        same = actual == expected
    detail = "" if same else f"{spec.field} is {_short(actual)}, expected {_short(expected)}"
    return same, None, detail


def _contains(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, ContainsSpec)
    actual = _field(view, spec.field)
    if actual is MISSING:
        return False, None, f"{spec.field} is not in the result"
    text = _fold(as_text(actual), spec.case_sensitive)
    found = [v for v in spec.value if _fold(v, spec.case_sensitive) in text]
    missing = [v for v in spec.value if v not in found]
    passed = bool(found) if spec.mode == "any" else not missing
    detail = "" if passed else f"{spec.field} lacks {', '.join(repr(v) for v in missing)}"
    return passed, len(found) / len(spec.value), detail


def _not_contains(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, NotContainsSpec)
    actual = _field(view, spec.field)
    if actual is MISSING:
        return True, None, f"{spec.field} is not in the result"
    text = _fold(as_text(actual), spec.case_sensitive)
    found = [v for v in spec.value if _fold(v, spec.case_sensitive) in text]
    detail = f"{spec.field} contains {', '.join(repr(v) for v in found)}" if found else ""
    return not found, float(len(found)), detail


def _regex(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, RegexSpec)
    actual = _field(view, spec.field)
    if actual is MISSING:
        return False, None, f"{spec.field} is not in the result"
    try:
        pattern = re.compile(spec.pattern, re.IGNORECASE if spec.ignore_case else 0)
    except re.error as err:
        return False, None, f"invalid pattern {spec.pattern!r}: {err}"
    matched = pattern.search(as_text(actual)) is not None
    if matched == spec.match:
        return True, None, ""
    verb = "does not match" if spec.match else "matches"
    return False, None, f"{spec.field} {verb} /{spec.pattern}/"


def _json_schema(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, JsonSchemaSpec)
    actual = _field(view, spec.field)
    if actual is MISSING:
        return False, None, f"{spec.field} is not in the result"
    if isinstance(actual, str):
        try:
            actual = json.loads(actual)
        except ValueError as err:
            return False, None, f"{spec.field} is not JSON: {err}"
    try:
        validator = Draft202012Validator(spec.expected)
        problems = [
            f"{'.'.join(str(p) for p in e.absolute_path) or spec.field}: {e.message}"
            for e in validator.iter_errors(actual)
        ]
    except SchemaError as err:
        return False, None, f"the expected schema is invalid: {err.message}"
    return not problems, None, "; ".join(problems[:3])


def _status(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, StatusSpec)
    passed = view.status in spec.value
    detail = "" if passed else f"status {view.status}, expected {' or '.join(spec.value)}"
    if not passed and view.error:
        detail += f" ({view.error[:200]})"
    return passed, None, detail


def _tool_called(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, ToolCalledSpec)
    calls = _tool_calls(view)
    named = [c for c in calls if c["tool"] == spec.tool]
    if spec.outcome is not None:
        named = [c for c in named if c["outcome"] == spec.outcome]
    matching = [c for c in named if not _arg_problems(spec, c["arguments"])]
    if spec.called:
        if matching:
            return True, float(len(matching)), ""
        if named:
            why = _arg_problems(spec, named[0]["arguments"])
            return False, 0.0, f"{spec.tool} was called, but {'; '.join(why)}"
        seen = ", ".join(sorted({c["tool"] for c in calls})) or "none"
        outcome = f" with outcome {spec.outcome}" if spec.outcome else ""
        return False, 0.0, f"{spec.tool} was not called{outcome} (tools called: {seen})"
    if matching:
        return False, float(len(matching)), f"{spec.tool} was called {len(matching)} time(s)"
    return True, 0.0, ""


def _tool_calls(view: RunView) -> list[dict[str, Any]]:
    """Tool calls from history (with arguments), else from the result's actions."""
    if view.trace is not None and (view.trace.tool_calls or view.result is None):
        return [
            {"tool": c.tool, "outcome": c.outcome, "arguments": c.arguments}
            for c in view.trace.tool_calls
        ]
    actions = view.result.actions if view.result is not None else []
    return [{"tool": a.tool, "outcome": a.outcome, "arguments": {}} for a in actions]


def _arg_problems(spec: ToolCalledSpec, arguments: dict[str, Any]) -> list[str]:
    problems = []
    for name, matcher in spec.args.items():
        value = arguments.get(name, MISSING)
        if value is MISSING:
            problems.append(f"it has no argument {name!r}")
            continue
        text = as_text(value)
        if matcher.check_equals and value != matcher.equals:
            problems.append(f"{name} is {_short(value)}, not {_short(matcher.equals)}")
        if matcher.contains is not None and matcher.contains.casefold() not in text.casefold():
            problems.append(f"{name} lacks {matcher.contains!r}")
        if matcher.not_contains is not None and (
            matcher.not_contains.casefold() in text.casefold()
        ):
            problems.append(f"{name} contains {matcher.not_contains!r}")
        if matcher.regex is not None and re.search(matcher.regex, text) is None:
            problems.append(f"{name} does not match /{matcher.regex}/")
    return problems


def _approval(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, ApprovalSpec)
    requests: list[tuple[str, str]] = []
    if view.trace is not None:
        requests = [(a.tool or "?", a.status) for a in view.trace.approvals]
    elif view.result is not None:
        requests = [(a.tool, a.status) for a in view.result.approvals]
    found = [
        (tool, status)
        for tool, status in requests
        if (spec.tool is None or tool == spec.tool)
        and (spec.status is None or status == spec.status)
    ]
    what = f"approval of {spec.tool}" if spec.tool else "approval"
    if spec.status:
        what += f" ending {spec.status}"
    if spec.requested:
        if found:
            return True, float(len(found)), ""
        asked = ", ".join(f"{t} ({s})" for t, s in requests) or "none"
        return False, 0.0, f"no {what} was requested (requests: {asked})"
    if found:
        tool, status = found[0]
        return False, float(len(found)), f"{what} was requested: {tool} ({status})"
    return True, 0.0, ""


def citations_of(view: RunView) -> list[Any]:
    """The result's citations, whether or not this build's RunResult has the field."""
    cited = getattr(view.result, "citations", None)
    if cited is None:
        cited = view.data.get("citations")
    return list(cited) if isinstance(cited, list | tuple) else []


def _citation(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, CitationSpec)
    cited = citations_of(view)
    if spec.source is not None:
        cited = [c for c in cited if spec.source.casefold() in _source(c).casefold()]
    enough = len(cited) >= spec.min_count
    if spec.present == enough:
        return True, float(len(cited)), ""
    if not spec.present:
        return False, float(len(cited)), f"the result cites {len(cited)} source(s)"
    where = f" from {spec.source!r}" if spec.source else ""
    if "citations" not in view.data and view.result is not None:
        return False, 0.0, "the result has no citations field (no retrieval in this build)"
    return False, float(len(cited)), f"{len(cited)} citation(s){where}, expected {spec.min_count}+"


def _source(citation: Any) -> str:
    if isinstance(citation, BaseModel):
        citation = citation.model_dump()
    if isinstance(citation, dict):
        return f"{citation.get('source', '')} {citation.get('heading', '')}"
    return str(getattr(citation, "source", citation))


def _max_cost(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, MaxCostSpec)
    cost, unpriced = cost_of(view)
    if unpriced and not spec.allow_unpriced:
        return False, cost, f"{unpriced} call(s) have no known price"
    passed = cost <= spec.usd
    detail = "" if passed else f"${cost:.6f} > ${spec.usd:.6f}"
    return passed, cost, detail


def cost_of(view: RunView) -> tuple[float, int]:
    """(USD spent on models, calls without a price): the ledger's, or history's for a run
    that failed before it could report one.
    """
    if view.result is not None:
        return view.result.ledger.cost_usd, view.result.ledger.unpriced_calls
    calls = (
        [c for c in view.trace.model_calls if c.activity.state == "completed"] if view.trace else []
    )
    return (
        sum(c.cost_usd or 0.0 for c in calls),
        sum(1 for c in calls if c.cost_usd is None),
    )


def _max_latency(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, MaxLatencySpec)
    took = latency_of(view, include_review=spec.include_review)
    if took is None:
        return False, None, "the run's history has no end"
    passed = took <= spec.seconds
    return passed, took, "" if passed else f"{took:.2f}s > {spec.seconds:g}s"


def latency_of(view: RunView, *, include_review: bool = False) -> float | None:
    """Seconds from the run's start to its end in history, approval waits excluded."""
    if view.trace is None or view.trace.run.duration_seconds is None:
        return None
    took = view.trace.run.duration_seconds
    if not include_review and view.result is not None:
        took = max(0.0, took - view.result.ledger.review_seconds)
    return took


def model_calls_of(view: RunView) -> int:
    """Model calls the run made: its ledger's count, or the history's when it failed."""
    if view.result is not None:
        return view.result.ledger.model_calls
    if view.trace is not None:
        return sum(1 for c in view.trace.model_calls if c.activity.state == "completed")
    return 0


def _max_model_calls(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, MaxModelCallsSpec)
    calls = model_calls_of(view)
    passed = calls <= spec.calls
    return passed, float(calls), "" if passed else f"{calls} calls > {spec.calls}"


def _guardrail(spec: Any, view: RunView) -> Verdict:
    assert isinstance(spec, GuardrailSpec)
    value = _field(view, spec.field)
    if value is MISSING:
        return False, None, f"{spec.field} is missing"
    verdicts = run_checks(Guardrail(checks=spec.checks), as_text(value), target=spec.field)
    failed = failures(verdicts)
    passed = len(verdicts) - len(failed)
    if failed:
        return False, passed / len(verdicts), "; ".join(f"{v.check}: {v.detail}" for v in failed)
    return True, 1.0, f"{len(verdicts)} checks passed"


def _fold(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if isinstance(value, str) else as_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SCORERS: dict[str, Callable[[Any, RunView], Verdict]] = {
    "exact": _exact,
    "contains": _contains,
    "not_contains": _not_contains,
    "regex": _regex,
    "json_schema": _json_schema,
    "status": _status,
    "tool_called": _tool_called,
    "approval_requested": _approval,
    "citation": _citation,
    "max_cost": _max_cost,
    "max_latency": _max_latency,
    "max_model_calls": _max_model_calls,
    "guardrail": _guardrail,
}
