"""The pure rules workflow code applies to outside input, over arbitrary input.

Inside a workflow an unexpected exception is not an error message but a workflow task that
fails on every retry. So the ticket parser may only raise ValueError (the playbook turns
that into a failed run), the agent's turn parser never raises (a bad turn is told to the
model), and building prompts, schemas, tiers and budget checks from any valid profile
never raises at all.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from steward.budget import next_call_exceeds, remaining_fraction
from steward.models import AgentProfile, Budget, Ledger, TierSpend
from steward.routing import Step, choose_tier
from steward.tickets import parse_ticket
from steward.turns import parse_decision
from tests.fuzz import examples
from tests.fuzz.strategies import TICKET, budgets, json_values, profiles
from workflows.agent import decision_schema, system_prompt

headers = st.lists(
    st.one_of(
        st.builds(lambda value: f"From: {value}", st.text(max_size=60)),
        st.builds(lambda value: f"Subject: {value}", st.text(max_size=60)),
        st.builds(
            lambda k, v: f"{k}: {v}",
            st.from_regex(r"[A-Za-z-]{1,12}", fullmatch=True),
            st.text(max_size=20),
        ),
        st.text(max_size=30),
    ),
    max_size=4,
)
tickets = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda lines, gap, body: "\n".join(lines) + gap + body,
        headers,
        st.sampled_from(["\n\n", "\r\n\r\n", "\n", ""]),
        st.text(max_size=200),
    ),
    st.builds(lambda cut: TICKET[:cut], st.integers(0, len(TICKET))),
)


@examples(200)
@given(text=tickets)
@example(text='From: "\\" <@>\n\nb')
@example(text="From: =?utf-8?q?=E9?= <a@b>\nSubject: =?x?q?=FF?=\n\nbody")
@example(text="From: a@b\n\n \t\n")
def test_tickets_parse_or_raise_value_error(text: str) -> None:
    try:
        ticket = parse_ticket(text)
    except ValueError as err:
        assert str(err).strip()
        return
    assert "@" in ticket.sender and ticket.body.strip() and ticket.subject and ticket.name


turns = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.builds(
        lambda action, payload: json.dumps({"action": action, "arguments": payload}),
        st.text(max_size=12),
        json_values,
    ),
)


@examples(200)
@given(text=turns)
@example(text='{"action": "answer"}')
@example(text='{"action": "answer", "answer": NaN}')
@example(text="[" * 900 + "]" * 900)
def test_model_turns_parse_or_say_why(text: str) -> None:
    parsed = parse_decision(text)
    if isinstance(parsed, str):
        assert parsed.strip()
    else:
        action, _ = parsed
        assert isinstance(action, str)


@examples(5)
@given(depth=st.integers(min_value=1_100, max_value=100_000))
@example(depth=100_000)
def test_deeply_nested_model_turns_parse_or_say_why(depth: int) -> None:
    parsed = parse_decision('{"action": "x", "arguments": ' + "[" * depth + "]" * depth + "}")
    assert isinstance(parsed, str | tuple)


@examples(100)
@given(profile=profiles(bounded=False))
def test_prompts_and_turn_schemas_build_for_any_profile(profile: dict[str, Any]) -> None:
    agent = AgentProfile.model_validate(profile)
    schema = decision_schema(agent)
    json.dumps(schema)  # it travels in history, as JSON
    assert schema["type"] == "object" and schema["required"] == ["decision"]
    assert system_prompt(agent).strip()


ledgers = st.builds(
    lambda calls, tokens, cost, extensions: Ledger(
        model_calls=calls,
        input_tokens=tokens,
        output_tokens=tokens // 2,
        cost_usd=cost,
        budget_extensions=extensions,
        by_tier={"fast": TierSpend(calls=calls)},
    ),
    st.integers(0, 10_000),
    st.integers(0, 10**9),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.integers(0, 100),
)


@examples(150)
@given(
    profile=profiles(bounded=True, tools=False),
    budget=budgets(bounded=True),
    ledger=ledgers,
    step=st.builds(
        Step,
        st.sampled_from(["plan", "classify", "draft", "other"]),
        st.sampled_from(["low", "high"]),
        st.sampled_from(["low", "high"]),
    ),
)
def test_tiers_and_budget_checks_for_any_profile_and_ledger(
    profile: dict[str, Any], budget: dict[str, Any], ledger: Ledger, step: Step
) -> None:
    agent = AgentProfile.model_validate(profile | {"budget": budget})
    choice = choose_tier(step, agent, ledger)
    assert choice.tier and choice.rule
    left = remaining_fraction(Budget.model_validate(budget), ledger)
    assert left is None or 0 <= left <= 1
    reason = next_call_exceeds(agent.budget, ledger)
    assert reason is None or reason.strip()
