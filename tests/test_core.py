"""Pure core: policy, routing, config loading, tickets, payload validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from steward import policy
from steward.config import ConfigError, load_config
from steward.models import (
    MAX_INPUT_CHARS,
    AgentProfile,
    ApprovalDecision,
    RiskClass,
    RunRequest,
    ToolCall,
    ToolSpec,
    args_digest,
    idempotency_key,
)
from steward.routing import Step, choose_tier
from steward.tickets import parse_ticket
from steward.tools import default_specs

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "steward.yaml"


def profile(*tools: ToolSpec) -> AgentProfile:
    return AgentProfile(name="a", kind="agent", tools=list(tools))


def spec(risk: RiskClass, **extra: object) -> ToolSpec:
    return ToolSpec.model_validate({"name": "t", "description": "d", "risk": risk} | extra)


def call(tool: str = "t") -> ToolCall:
    return ToolCall(id="c1", tool=tool, arguments={"x": 1})


def test_policy_defaults_by_risk() -> None:
    approval = {"approval": {"approvers": ["bob"]}}
    assert isinstance(
        policy.decide(call(), profile(spec(RiskClass.READ)), policy.RunState()), policy.Allow
    )
    for risk in (RiskClass.SEND, RiskClass.PUBLISH, RiskClass.DELETE, RiskClass.PURCHASE):
        decision = policy.decide(call(), profile(spec(risk, **approval)), policy.RunState())
        assert isinstance(decision, policy.NeedsApproval), risk
        assert decision.rule.approvers == ["bob"]


def test_policy_denies_what_is_not_granted_or_has_no_approvers() -> None:
    assert isinstance(
        policy.decide(call("other"), profile(spec(RiskClass.READ)), policy.RunState()), policy.Deny
    )
    no_approvers = policy.decide(call(), profile(spec(RiskClass.SEND)), policy.RunState())
    assert isinstance(no_approvers, policy.Deny) and "no approvers" in no_approvers.reason
    denied = policy.decide(
        call(), profile(spec(RiskClass.READ, decision="deny")), policy.RunState()
    )
    assert isinstance(denied, policy.Deny)


def test_routing_override_then_consequence() -> None:
    plain = AgentProfile(name="a", kind="agent")
    assert choose_tier(Step("classify"), plain).tier == "fast"
    assert choose_tier(Step("draft", consequence="high"), plain).tier == "strong"
    routed = AgentProfile(name="a", kind="agent", tiers={"draft": "fast"})
    choice = choose_tier(Step("draft", consequence="high"), routed)
    assert choice.tier == "fast" and "routes draft" in choice.rule


def test_example_config_resolves_profiles() -> None:
    config = load_config(EXAMPLE)
    support = config.profile("support-reply", default_specs())
    (send,) = support.tools
    assert send.name == "send_email" and send.privileged and send.risk == RiskClass.SEND
    assert send.approval is not None and "demo-approver" in send.approval.approvers
    with pytest.raises(ConfigError, match="unknown playbook or agent 'nope'"):
        config.profile("nope", default_specs())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tiers: [1, 2]", "tiers: Input should be a valid dictionary"),
        ("tiers: {fast: []}", "list at least one deployment"),
        ("- a list", "expected a mapping"),
        ("tiers: {fast: [{model: m}]}\nagents: {x: {kind: robot}}", "agents.x.kind"),
        (
            "tiers: {fast: [{model: m}]}\ntools: {send_email: {approval: {group: g}}}",
            "no approver group 'g'",
        ),
        (
            "tiers: {fast: [{model: m}]}\nagents: {x: {kind: agent, tiers: {a: slow}}}",
            "unknown tier",
        ),
        ("tiers: {fast: [{model: m, api_key: sk-123}]}", "Extra inputs are not permitted"),
        ("tiers: {", "not valid YAML: line 1, column 9: expected the node content"),
        (
            "tiers: {fast: [{model: m}]}\nagents: {x: {kind: agent, collections: [hb]}}",
            "steward.yaml: agents.x.collections: unknown collection 'hb'",
        ),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "steward.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"steward\.yaml") as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)  # printed as one line


def test_run_request_refuses_empty_and_oversized_input() -> None:
    with pytest.raises(ValidationError, match="input is empty"):
        RunRequest(target="a", input="  \n", principal="p")
    with pytest.raises(ValidationError, match="the limit is 1,000,000"):
        RunRequest(target="a", input="x" * (MAX_INPUT_CHARS + 1), principal="p")


def test_decision_payload_is_strict() -> None:
    with pytest.raises(ValidationError):
        ApprovalDecision.model_validate({"request_id": "a:1", "approve": True})
    with pytest.raises(ValidationError):
        ApprovalDecision.model_validate(
            {"request_id": "a:1", "args_digest": "d", "approver": "x", "approve": True, "extra": 1}
        )


def test_digest_binds_tool_and_exact_arguments() -> None:
    assert args_digest("t", {"a": 1, "b": 2}) == args_digest("t", {"b": 2, "a": 1})
    assert args_digest("t", {"a": 1}) != args_digest("t", {"a": 2})
    assert args_digest("t", {"a": 1}) != args_digest("u", {"a": 1})


def test_idempotency_key_is_stable_and_safe() -> None:
    key = idempotency_key("support reply/..//x", "send-reply")
    assert key == idempotency_key("support reply/..//x", "send-reply")
    assert "/" not in key and " " not in key
    assert key != idempotency_key("support reply/..//x", "other")


def test_ticket_parsing() -> None:
    ticket = parse_ticket("From: A <a@example.com>\nSubject: Hi\n\nbody")
    assert (ticket.sender, ticket.subject, ticket.body) == ("a@example.com", "Hi", "body")
    for bad, message in [
        ("no headers at all", "must start with headers"),
        ("Subject: x\n\nbody", "no valid From"),
        ("From: a@example.com\n\n   ", "body is empty"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_ticket(bad)
