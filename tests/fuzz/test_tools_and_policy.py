"""Tool arguments of any shape, and the policy and approval gate over any valid-typed input.

A model can propose any arguments; the workflow checks them against the tool's schema
(`workflows.actions._validated`), the activity checks them again (`parse_arguments`), and
for an MCP tool against the server's JSON schema (`schema_problems`). Each check accepts
or refuses with `field: problem`, and the two built-in checks agree. The policy and the
gate must answer every call and every decision with a reason, never an exception.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.tools.arguments import MAX_PROBLEM_CHARS, parse_arguments, schema_problems
from steward import policy
from steward.models import (
    AgentProfile,
    ApprovalDecision,
    ApprovalRequest,
    ToolCall,
    ToolInvocation,
    ToolSpec,
)
from steward.tools import CATALOGUE, activity_tools
from tests.fuzz import examples
from tests.fuzz.strategies import (
    DECISION,
    Location,
    json_schemas,
    json_values,
    mutated,
    nasty_values,
    plain_json,
    profiles,
    related,
    tool_specs,
)
from workflows.actions import _validated
from workflows.approvals import ApprovalGate

VALID_ARGUMENTS = {
    "send_email": {"to": "ops@example.com", "subject": "Backup", "body": "The backup finished."},
    "write_file": {"path": "notes/summary.md", "content": "Summary\n"},
    "publish_file": {"path": "site/index.html", "content": "<p>hello</p>"},
    "http_get": {"url": "https://example.com/page?q=1"},
    "search_docs": {"query": "refund timing", "collection": "handbook"},
}
TOOLS = sorted(t.name for t in activity_tools())
KNOWN = sorted(set(TOOLS) & set(VALID_ARGUMENTS))

arguments = st.dictionaries(st.text(max_size=12), nasty_values, max_size=4)


def invocation(tool: str, args: dict[str, Any]) -> ToolInvocation:
    return ToolInvocation(
        call=ToolCall(id="call-1", tool=tool, arguments=args),
        idempotency_key="fuzz.0123456789abcdef",
        agent="helpdesk",
        principal="dana",
    )


def check_registered(tool: str, args: dict[str, Any], changes: list[Location] | None) -> None:
    """The workflow's and the activity's checks agree, and a refusal names its fields."""
    assume(plain_json(args))  # Infinity/NaN never reach a tool: see the test below
    checked = _validated(ToolCall(id="call-1", tool=tool, arguments=args), CATALOGUE[tool].spec)
    model = CATALOGUE[tool].arguments
    try:
        parsed = parse_arguments(model, invocation(tool, args))
    except ApplicationError as err:
        assert err.type == "InvalidToolArguments" and err.non_retryable
        assert err.message.startswith(f"{tool} arguments invalid: ")
        assert isinstance(checked, str), "the activity refused what the workflow accepted"
        assert checked.startswith("invalid arguments: ")
        assert checked.removeprefix("invalid arguments: ") == err.message.split(": ", 1)[1]
        if changes is not None:
            try:
                model.model_validate(args)
            except ValidationError as refused:
                for error in refused.errors():
                    assert related(tuple(error["loc"]), changes), (error["loc"], changes)
        return
    assert isinstance(checked, ToolCall), (
        f"the workflow refused what the activity accepts: {checked}"
    )
    assert checked.arguments == parsed.model_dump()


@examples(200)
@given(tool=st.sampled_from(TOOLS), args=arguments)
@example(tool="http_get", args={"url": "http://[::1"})
@example(tool="http_get", args={"url": "http://example.com:99999/"})
@example(tool="http_get", args={"url": "https://user:secret@example.com/"})
@example(tool="write_file", args={"path": "a/../../b", "content": ""})
@example(tool="write_file", args={"path": "C:\\x", "content": ""})
@example(tool="send_email", args={"to": "a@b", "subject": "s", "body": "\x00"})
def test_any_arguments_are_checked_or_refused_by_field(tool: str, args: dict[str, Any]) -> None:
    check_registered(tool, args, changes=None)


@examples(200)
@given(data=st.data(), tool=st.sampled_from(KNOWN))
def test_changed_arguments_are_refused_where_they_were_changed(
    data: st.DataObject, tool: str
) -> None:
    changed, changes = data.draw(mutated(st.just(VALID_ARGUMENTS[tool])))
    if isinstance(changed, dict):
        check_registered(tool, changed, changes)


def test_the_valid_examples_are_valid() -> None:
    for tool in KNOWN:
        assert isinstance(
            _validated(
                ToolCall(id="c", tool=tool, arguments=VALID_ARGUMENTS[tool]), CATALOGUE[tool].spec
            ),
            ToolCall,
        )


@examples(100)
@given(schema=json_schemas, args=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
@example(schema={"$ref": "#"}, args={})
@example(schema={"$ref": "#/nowhere"}, args={})
@example(schema={"$dynamicRef": "#x"}, args={})
@example(schema={"type": 5}, args={})
@example(schema={"properties": 3}, args={"a": 1})
@example(schema={"type": "object", "properties": {"a": {"pattern": "("}}}, args={"a": "x"})
@example(schema={"type": "object", "properties": {"a": {"maxLength": 3}}}, args={"a": "x" * 10_000})
def test_mcp_arguments_are_checked_against_any_schema(
    schema: dict[str, Any], args: dict[str, Any]
) -> None:
    problems = schema_problems(schema, args)
    for problem in problems:
        where, _, what = problem.partition(": ")
        assert where and what.strip(), problem
        assert len(problem) <= 2 * MAX_PROBLEM_CHARS, problem
    assert schema_problems(schema, args) == problems  # deterministic: workflows replay it


def test_schema_problems_accepts_what_fits_and_names_what_does_not() -> None:
    schema = {
        "type": "object",
        "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["text"],
        "additionalProperties": False,
    }
    assert schema_problems(schema, {"text": "hi", "n": 2}) == []
    assert schema_problems(schema, {"text": 5}) == ["text: 5 is not of type 'string'"]
    assert schema_problems(schema, {}) == ["arguments: 'text' is a required property"]
    assert schema_problems({"$ref": "#"}, {}) == [
        "the tool's input schema: it refers to itself without end"
    ]
    (broken,) = schema_problems({"type": 5}, {})
    assert broken.startswith("the tool's input schema (at type): not a valid JSON schema: ")
    (nowhere,) = schema_problems({"$ref": "#/nowhere"}, {})
    assert nowhere.startswith("the tool's input schema: a reference in it resolves nowhere")


@examples(100)
@given(schema=json_schemas, args=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
@example(schema={"$ref": "#"}, args={})
@example(schema={"type": 5}, args={})
def test_the_workflow_refuses_mcp_arguments_for_any_schema(
    schema: dict[str, Any], args: dict[str, Any]
) -> None:
    assume(plain_json(args) and plain_json(schema))
    spec = ToolSpec(
        name="notes.add", description="", risk="write", mcp_server="notes", input_schema=schema
    )
    checked = _validated(ToolCall(id="c", tool="notes.add", arguments=args), spec)
    assert isinstance(checked, ToolCall) or checked.startswith("invalid arguments: ")


@examples(50)
@given(
    args=st.dictionaries(st.text(max_size=8), json_values, max_size=3).filter(
        lambda args: not plain_json(args)
    )
)
def test_arguments_that_are_not_plain_json_never_make_a_call(args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Infinity and NaN are not JSON numbers"):
        ToolCall(id="c", tool="http_get", arguments=args)


@examples(100)
@given(
    profile=profiles(bounded=False),
    name=st.one_of(st.sampled_from(TOOLS), st.text(max_size=12)),
    args=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    made=st.dictionaries(st.text(max_size=12), st.integers(min_value=0, max_value=10**6)),
    data=st.data(),
)
def test_the_policy_decides_every_call_with_a_reason(
    profile: dict[str, Any],
    name: str,
    args: dict[str, Any],
    made: dict[str, int],
    data: st.DataObject,
) -> None:
    agent = AgentProfile.model_validate(profile)
    granted = [tool.name for tool in agent.tools]
    pick_granted = data.draw(st.booleans())
    if granted and pick_granted:
        name = data.draw(st.sampled_from(granted))  # mostly decide granted tools
        made = made | {name: data.draw(st.integers(0, 6))}
    assume(plain_json(args))
    call = ToolCall(id="c", tool=name, arguments=args)
    decision = policy.decide(call, agent, policy.RunState(calls_by_tool=made))
    assert isinstance(decision, policy.Allow | policy.NeedsApproval | policy.Deny)
    assert decision.reason.strip()
    spec = policy.granted_tool(agent, name)
    if spec is None:
        assert isinstance(decision, policy.Deny) and "not granted" in decision.reason
    elif spec.max_calls_per_run is not None and made.get(name, 0) >= spec.max_calls_per_run:
        assert isinstance(decision, policy.Deny)
    if isinstance(decision, policy.NeedsApproval):
        assert spec is not None and decision.rule == spec.approval


PENDING = ApprovalRequest(
    id=DECISION["request_id"],
    workflow_id="support-reply-1a2b3c4d5e",
    tool="send_email",
    args_digest=DECISION["args_digest"],
    arguments={"to": "ops@example.com"},
    requester="dana",
    approvers=["demo-approver", "alice"],
    requested_at=datetime(2030, 1, 1, tzinfo=UTC),
    deadline=datetime(2030, 1, 2, tzinfo=UTC),
    required=2,
    approved_by=["alice"],
)


@examples(200)
@given(changed=mutated(st.just(DECISION)), signed=st.booleans())
def test_the_gate_answers_every_decision_with_a_reason_or_lets_it_count(
    changed: tuple[Any, list[Location]], signed: bool
) -> None:
    try:
        decision = ApprovalDecision.model_validate(changed[0])
    except ValidationError:
        return  # the handlers refuse it before the gate sees it
    gate = ApprovalGate()
    gate.pending[PENDING.id] = PENDING.model_copy(update={"signed": signed}, deep=True)
    reason = gate.check(decision)
    counts = (
        decision.request_id == PENDING.id
        and decision.args_digest == PENDING.args_digest
        and decision.approver in PENDING.approvers
        and decision.approver not in (PENDING.requester, *PENDING.approved_by)
        # this bare gate knows no public key (no signature verifies) and takes no edit
        and not signed
        and decision.arguments in (None, PENDING.arguments)
    )
    assert (reason is None) == counts, reason
    assert reason is None or reason.strip()


def test_tool_specs_strategy_makes_valid_specs() -> None:
    @examples(50)
    @given(spec=tool_specs(bounded=False))
    def valid(spec: dict[str, Any]) -> None:
        ToolSpec.model_validate(spec)

    valid()
