"""Cost drift: whether an agent's cost per run has grown, and which part of it grew.

Pure: takes the runs `steward.costs.collect` found, splits the window into an earlier and
a later half by start time, and compares the per-run average of each component a team
can act on: model spend on first choices, retries, fallbacks, context (prompt tokens per
call), tool time and review drag. The component whose per-run average grew the most is
flagged, so "costs rose" comes with a likely cause.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from steward.costs import RunCost
from steward.models import Ledger

MIN_RUNS_PER_HALF = 2
"""Fewer runs than this in either half and there is nothing to compare."""

GROWTH_FLAG = 0.2
"""A component whose per-run average grew by more than this share is flagged."""

COMPONENTS: dict[str, Callable[[Ledger], float]] = {
    "model calls ($)": lambda ledger: ledger.cost_usd - ledger.fallback_cost_usd,
    "retries (attempts)": lambda ledger: float(ledger.retries),
    "fallbacks": lambda ledger: float(ledger.fallbacks),
    "context (prompt tokens/call)": lambda ledger: (
        sum(ledger.context_tokens) / len(ledger.context_tokens) if ledger.context_tokens else 0.0
    ),
    "tool time (s)": lambda ledger: ledger.tool_seconds,
    "review drag (s)": lambda ledger: ledger.review_seconds,
}


@dataclass(frozen=True)
class Component:
    """One component's per-run average in each half, and its growth (None: from zero)."""

    name: str
    earlier: float
    later: float

    @property
    def growth(self) -> float | None:
        """later/earlier - 1; None when the earlier half had none of it."""
        if self.earlier == 0:
            return None if self.later > 0 else 0.0
        return self.later / self.earlier - 1


@dataclass(frozen=True)
class Drift:
    """The comparison of one agent's earlier and later runs."""

    target: str
    earlier_runs: int
    later_runs: int
    components: list[Component]
    flagged: str | None
    note: str


def drift(runs: Sequence[RunCost], target: str) -> Drift:
    """Compare the earlier and later halves of `target`'s runs that have a ledger."""
    measured = sorted(
        (run for run in runs if run.target == target and run.ledger is not None),
        key=lambda run: run.started_at,
    )
    middle = len(measured) // 2
    earlier, later = measured[:middle], measured[middle:]
    if len(earlier) < MIN_RUNS_PER_HALF:
        return Drift(target, len(earlier), len(later), [], None, "too few runs to compare")
    components = [
        Component(name, _average(earlier, measure), _average(later, measure))
        for name, measure in COMPONENTS.items()
    ]
    grown = [c for c in components if c.later > c.earlier and (c.growth or 1.0) > GROWTH_FLAG]
    if not grown:
        return Drift(target, len(earlier), len(later), components, None, "no component grew")
    worst = max(grown, key=lambda c: c.growth if c.growth is not None else float("inf"))
    return Drift(
        target, len(earlier), len(later), components, worst.name, f"{worst.name} grew the most"
    )


def _average(runs: Sequence[RunCost], measure: Callable[[Ledger], float]) -> float:
    return sum(measure(run.ledger) for run in runs if run.ledger is not None) / len(runs)
