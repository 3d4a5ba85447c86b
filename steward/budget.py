"""Pure budget rules: how much of a run's budget is left, and whether the next model call
would pass it.

A call's cost is only known after it is made, so "would exceed" uses the run's average
call so far as the estimate. Each approved extension adds the original limits again.
"""

from __future__ import annotations

from steward.models import Budget, Ledger


def _limits(budget: Budget, ledger: Ledger) -> list[tuple[str, float, float]]:
    """(what, spent, effective limit) for each limit the budget sets."""
    scale = 1 + ledger.budget_extensions
    limits: list[tuple[str, float, float]] = []
    if budget.max_cost_usd is not None:
        limits.append(("cost", ledger.cost_usd, budget.max_cost_usd * scale))
    if budget.max_tokens is not None:
        limits.append(("tokens", float(ledger.tokens), float(budget.max_tokens * scale)))
    if budget.max_model_calls is not None:
        limits.append(
            ("model calls", float(ledger.model_calls), float(budget.max_model_calls * scale))
        )
    return limits


def remaining_fraction(budget: Budget, ledger: Ledger) -> float | None:
    """The smallest share left of any limit (0 to 1), or None when the budget sets none."""
    shares = [max(0.0, 1 - spent / limit) for _, spent, limit in _limits(budget, ledger)]
    return min(shares) if shares else None


def next_call_exceeds(budget: Budget, ledger: Ledger) -> str | None:
    """Why the next model call would pass the budget, or None if it fits."""
    calls = ledger.model_calls
    estimate = {
        "cost": ledger.cost_usd / calls if calls else 0.0,
        "tokens": ledger.tokens / calls if calls else 0.0,
        "model calls": 1.0,
    }
    for what, spent, limit in _limits(budget, ledger):
        if spent + estimate[what] > limit:
            shown = f"${spent:.4f} of ${limit:.4f}" if what == "cost" else f"{spent:g} of {limit:g}"
            return f"the next call would pass the {what} budget ({shown} used)"
    return None
