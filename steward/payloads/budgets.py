"""Budgets and the ledger: the limits on one run's model use, and what the run has spent.

A run input may only lower the configured budget (`BudgetCap`). The ledger splits spend
the way a team asks why a run cost more: model calls by tier, retries, fallbacks, context
growth, tool time and review time. The rules that check a budget are `steward.budget`.
"""

from __future__ import annotations

from pydantic import Field

from steward.bounds import CallLimit, CostLimit, OnExceed, TokenLimit
from steward.payloads.approvals import ApprovalRule
from steward.payloads.models import LLMResult
from steward.strict import Strict


class BudgetCap(Strict):
    """Limits a run input may set: they only ever lower the configured budget."""

    max_cost_usd: CostLimit | None = None
    max_tokens: TokenLimit | None = None
    max_model_calls: CallLimit | None = None


class Budget(BudgetCap):
    """Limits on one run's model use, and what happens when a call would pass them."""

    on_exceed: OnExceed = "stop"
    approval: ApprovalRule | None = Field(
        default=None, description="who may extend the budget, when on_exceed is approve"
    )

    def capped(self, cap: BudgetCap | None) -> Budget:
        """The budget with each limit lowered to the cap's, where the cap sets one."""
        if cap is None:
            return self
        lowered = self.model_copy()
        for name in BudgetCap.model_fields:
            limit, ceiling = getattr(self, name), getattr(cap, name)
            if ceiling is not None:
                setattr(lowered, name, ceiling if limit is None else min(limit, ceiling))
        return lowered


class TierSpend(Strict):
    """Model use on one tier."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0


class Ledger(Strict):
    """What a run has spent, split the way a team asks "why did this cost more?".

    Pure bookkeeping: workflows add to it from activity results and workflow time, so it
    is rebuilt identically on replay and never double counts.
    """

    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = Field(default=0, description="calls whose price litellm does not know")
    by_tier: dict[str, TierSpend] = Field(default_factory=dict)
    retries: int = Field(default=0, description="failed attempts before calls that succeeded")
    fallbacks: int = Field(default=0, description="deployments given up on within a tier")
    fallback_cost_usd: float = Field(default=0.0, description="cost of calls served by a fallback")
    context_tokens: list[int] = Field(
        default_factory=list, description="prompt tokens of each call, in order: context growth"
    )
    tool_seconds: float = 0.0
    review_seconds: float = Field(
        default=0.0, description="time spent waiting for approvals and answers to questions"
    )
    budget_extensions: int = 0

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add_call(self, result: LLMResult) -> None:
        """Count one successful model call (and the failed attempts before it)."""
        cost = result.usage.cost_usd
        tier = self.by_tier.setdefault(result.tier, TierSpend())
        for spend in (self, tier):
            spend.input_tokens += result.usage.input_tokens
            spend.output_tokens += result.usage.output_tokens
            if cost is None:
                spend.unpriced_calls += 1
            else:
                spend.cost_usd += cost
        self.model_calls += 1
        tier.calls += 1
        self.retries += result.attempt - 1
        if result.deployment > 0 and cost is not None:
            self.fallback_cost_usd += cost
        self.context_tokens.append(result.usage.input_tokens)

    def absorb(self, other: Ledger) -> None:
        """Add what another run spent (a specialist's, on a handoff) to this ledger.

        Budget extensions stay with the run that was granted them.
        """
        self.model_calls += other.model_calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.unpriced_calls += other.unpriced_calls
        for name, spend in other.by_tier.items():
            tier = self.by_tier.setdefault(name, TierSpend())
            tier.calls += spend.calls
            tier.input_tokens += spend.input_tokens
            tier.output_tokens += spend.output_tokens
            tier.cost_usd += spend.cost_usd
            tier.unpriced_calls += spend.unpriced_calls
        self.retries += other.retries
        self.fallbacks += other.fallbacks
        self.fallback_cost_usd += other.fallback_cost_usd
        self.context_tokens.extend(other.context_tokens)
        self.tool_seconds += other.tool_seconds
        self.review_seconds += other.review_seconds
