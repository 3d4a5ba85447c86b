"""Pure model-layer rules: tier routing, budgets, the ledger."""

from __future__ import annotations

import pytest

from steward.budget import next_call_exceeds, remaining_fraction
from steward.models import AgentProfile, Budget, Ledger, LLMResult, Usage
from steward.routing import Step, choose_tier

TIERS = ["fast", "strong", "careful"]


def profile(**changes: object) -> AgentProfile:
    return AgentProfile.model_validate(
        {"name": "a", "kind": "agent", "tier_order": TIERS} | changes
    )


def spent(cost: float = 0.0, tokens: int = 0, calls: int = 0, extensions: int = 0) -> Ledger:
    return Ledger(
        cost_usd=cost, input_tokens=tokens, model_calls=calls, budget_extensions=extensions
    )


@pytest.mark.parametrize(
    ("step", "agent", "ledger", "tier", "rule"),
    [
        (Step("classify"), profile(), None, "fast", "low difficulty"),
        (Step("plan", difficulty="high"), profile(), None, "strong", "difficulty high"),
        (Step("draft", consequence="high"), profile(), None, "careful", "consequence high"),
        # consequence forces the strongest tier even when the budget is nearly spent
        (
            Step("draft", consequence="high"),
            profile(budget={"max_cost_usd": 1.0}),
            spent(cost=0.95),
            "careful",
            "consequence high",
        ),
        # a nearly spent budget forces the cheapest tier for a hard step
        (
            Step("plan", difficulty="high"),
            profile(budget={"max_cost_usd": 1.0}),
            spent(cost=0.9),
            "fast",
            "budget nearly spent (10% left)",
        ),
        (
            Step("plan", difficulty="high"),
            profile(budget={"max_model_calls": 10}),
            spent(calls=9),
            "fast",
            "budget nearly spent",
        ),
        # plenty left: the budget does not interfere
        (
            Step("plan", difficulty="high"),
            profile(budget={"max_cost_usd": 1.0}),
            spent(cost=0.1),
            "strong",
            "difficulty high",
        ),
        # a per-agent override beats every rule
        (
            Step("draft", consequence="high"),
            profile(tiers={"draft": "fast"}),
            None,
            "fast",
            "routes draft to fast",
        ),
        # a profile from before tiers were ordered keeps the original two-tier behaviour
        (
            Step("plan", difficulty="high"),
            AgentProfile(name="a", kind="agent"),
            None,
            "strong",
            "difficulty",
        ),
        (Step("x"), profile(tier_order=["only"]), None, "only", "low difficulty"),
        (Step("x", difficulty="high"), profile(tier_order=["only"]), None, "only", "difficulty"),
    ],
)
def test_routing_table(
    step: Step, agent: AgentProfile, ledger: Ledger | None, tier: str, rule: str
) -> None:
    choice = choose_tier(step, agent, ledger)
    assert choice.tier == tier
    assert rule in choice.rule


def test_budget_estimates_the_next_call_from_the_average() -> None:
    budget = Budget(max_cost_usd=1.0)
    assert next_call_exceeds(budget, spent(cost=0.5, calls=1)) is None
    reason = next_call_exceeds(budget, spent(cost=0.6, calls=1))
    assert reason is not None and "cost budget ($0.6000 of $1.0000 used)" in reason
    assert next_call_exceeds(Budget(max_model_calls=2), spent(calls=2)) == (
        "the next call would pass the model calls budget (2 of 2 used)"
    )
    assert next_call_exceeds(Budget(max_tokens=100), spent(tokens=60, calls=1)) is not None
    assert next_call_exceeds(Budget(), spent(cost=1e9, tokens=10**9, calls=10**6)) is None


def test_an_extension_adds_the_original_limits_again() -> None:
    budget = Budget(max_model_calls=2)
    assert next_call_exceeds(budget, spent(calls=2, extensions=1)) is None
    assert next_call_exceeds(budget, spent(calls=4, extensions=1)) is not None
    assert remaining_fraction(budget, spent(calls=1)) == 0.5
    assert remaining_fraction(Budget(), spent(calls=1)) is None


def result(tier: str, cost: float | None, *, attempt: int = 1, deployment: int = 0) -> LLMResult:
    return LLMResult(
        text="x",
        model="m",
        tier=tier,
        usage=Usage(input_tokens=100, output_tokens=10, cost_usd=cost),
        latency_ms=1.0,
        attempt=attempt,
        deployment=deployment,
    )


def test_ledger_splits_cost_by_tier_retries_fallbacks_and_context() -> None:
    ledger = Ledger()
    ledger.add_call(result("fast", 0.001))
    ledger.add_call(result("strong", 0.01, attempt=3))
    ledger.add_call(result("strong", 0.02, deployment=1))
    ledger.add_call(result("strong", None))
    assert ledger.model_calls == 4
    assert ledger.cost_usd == pytest.approx(0.031)
    assert ledger.unpriced_calls == 1  # unknown stays unknown, not zero
    assert ledger.by_tier["strong"].calls == 3
    assert ledger.by_tier["strong"].cost_usd == pytest.approx(0.03)
    assert ledger.by_tier["strong"].unpriced_calls == 1
    assert ledger.retries == 2
    assert ledger.fallback_cost_usd == pytest.approx(0.02)
    assert ledger.context_tokens == [100, 100, 100, 100]
    assert ledger.tokens == 440
