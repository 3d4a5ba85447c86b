"""Cost drift: the component of cost per run that grew is the one flagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from steward.costs import RunCost
from steward.drift import drift
from steward.models import Ledger

START = datetime(2026, 11, 1, tzinfo=UTC)


def run(day: int, context: int, *, review: float = 10.0, cost: float = 0.01) -> RunCost:
    return RunCost(
        workflow_id=f"helpdesk-{day}",
        run_id="r",
        target="helpdesk",
        started_at=START + timedelta(days=day),
        status="completed",
        ledger=Ledger(
            model_calls=2, cost_usd=cost, context_tokens=[context, context], review_seconds=review
        ),
    )


def test_growing_context_is_flagged() -> None:
    runs = [run(day, 500) for day in range(4)] + [run(day, 1400) for day in range(4, 8)]
    report = drift(runs, "helpdesk")
    assert (report.earlier_runs, report.later_runs) == (4, 4)
    assert report.flagged == "context (prompt tokens/call)"
    context = next(c for c in report.components if c.name.startswith("context"))
    assert context.growth is not None and round(context.growth, 2) == 1.8


def test_review_drag_outgrowing_context_is_flagged_instead() -> None:
    runs = [run(day, 500, review=10) for day in range(3)]
    runs += [run(day, 600, review=60) for day in range(3, 6)]
    assert drift(runs, "helpdesk").flagged == "review drag (s)"


def test_steady_costs_flag_nothing_and_few_runs_say_so() -> None:
    steady = [run(day, 500) for day in range(6)]
    assert drift(steady, "helpdesk").flagged is None
    assert drift(steady, "helpdesk").note == "no component grew"
    assert drift(steady[:3], "helpdesk").note == "too few runs to compare"
    assert drift(steady, "other").note == "too few runs to compare"


def test_runs_without_a_ledger_are_left_out() -> None:
    runs = [run(day, 500) for day in range(4)]
    runs.append(runs[0].model_copy(update={"workflow_id": "x", "ledger": None}))
    assert drift(runs, "helpdesk").earlier_runs == 2


def test_cli_drift_rejects_bad_window() -> None:
    from steward.cli import app

    result = CliRunner().invoke(app, ["costs", "--drift", "--since", "soon"])
    assert result.exit_code == 2


def test_cli_drift_prints_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from steward import costs as costs_module
    from steward.cli import app
    from steward.cli import costs as cli_costs

    runs = [run(day, 500) for day in range(3)] + [run(day, 2000) for day in range(3, 6)]

    async def no_client() -> None:
        return None

    async def fake_collect(client: object, **_: object) -> list[RunCost]:
        return runs

    monkeypatch.setattr(cli_costs, "connect", no_client)
    monkeypatch.setattr(costs_module, "collect", fake_collect)
    result = CliRunner().invoke(app, ["costs", "--drift", "--agent", "helpdesk"])
    assert result.exit_code == 0, result.output
    assert "helpdesk: 3 earlier vs 3 later runs" in result.output
    assert "context (prompt tokens/call)" in result.output
    assert "<- grew the most" in result.output
