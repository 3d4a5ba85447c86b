"""`steward costs`: what runs spent over a window, by agent, model tier or day.

Costs drift without a clear cause unless someone can ask "which agent, which tier, since
when?" in one command. This one reads the ledgers of recent runs (see `steward.costs`) and
prints them as a table with totals, or as JSON for scripts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

import typer

from steward import costs
from steward.cli.common import run
from steward.client import connect

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """`7d`, `24h`, `30m`, `90s`, `2w` (or a sum like `1d12h`) as a timedelta."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise typer.BadParameter(
            f"expected a number and a unit (s, m, h, d or w), like 7d, 24h or 30m; got {text!r}",
            param_hint="--since",
        )
    duration = sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in parts), timedelta())
    if duration <= timedelta(0):
        raise typer.BadParameter(f"must be longer than zero; got {text!r}", param_hint="--since")
    return duration


def costs_command(
    by: Annotated[
        str, typer.Option(help="group runs by agent, model tier or UTC day: agent|tier|day")
    ] = "agent",
    since: Annotated[str, typer.Option(help="how far back runs started: e.g. 7d, 24h, 30m")] = "7d",
    agent: Annotated[str | None, typer.Option(help="only runs of this playbook or agent")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    limit: Annotated[
        int, typer.Option(min=1, help="read at most this many runs (newest listed first)")
    ] = costs.DEFAULT_LIMIT,
    show_drift: Annotated[
        bool,
        typer.Option(
            "--drift",
            help="compare each agent's earlier and later runs and flag the part that grew",
        ),
    ] = False,
) -> None:
    """Show what runs cost: model calls, tokens, cost, retries, tool and review time."""
    if by not in costs.GROUPINGS:
        raise typer.BadParameter(
            f"expected one of {', '.join(costs.GROUPINGS)}; got {by!r}", param_hint="--by"
        )
    grouping: costs.GroupBy = by
    window = parse_duration(since)
    if agent is not None:
        try:
            costs.checked_target(agent)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--agent") from None

    async def go() -> list[costs.RunCost]:
        client = await connect()
        return await costs.collect(client, since=window, target=agent, limit=limit)

    runs = run(go())
    if show_drift:
        _print_drift(runs, agent, as_json=as_json)
        return
    rows = costs.summarize(runs, grouping)
    total = costs.totals(runs)
    unread = [r for r in runs if r.error is not None]
    if as_json:
        report = {
            "by": grouping,
            "since": since,
            "agent": agent,
            "limit": limit,
            "truncated": len(runs) >= limit,
            "rows": [row.model_dump(mode="json") for row in rows],
            "total": total.model_dump(mode="json"),
            "unread": [
                {"workflow_id": r.workflow_id, "status": r.status, "error": r.error} for r in unread
            ],
        }
        typer.echo(json.dumps(report, indent=2))
        return
    if not runs:
        typer.echo(f"no Steward runs started in the last {since}")
        return
    typer.echo(render_table(grouping, rows, total))
    without = total.runs_without_ledger - len(unread)
    if without:
        typer.echo(f"{without} run(s) ended before they had a ledger (failed, terminated)")
    for r in unread:
        typer.echo(f"ledger not read: {r.workflow_id} ({r.status}): {r.error}")
    if any(row.unpriced_calls for row in (*rows, total)):
        typer.echo("unpriced: calls whose price litellm does not know; their cost is unknown")
    if len(runs) >= limit:
        typer.echo(f"read the first {limit} runs only; raise --limit or narrow --since")


def _print_drift(runs: Sequence[costs.RunCost], agent: str | None, *, as_json: bool) -> None:
    from steward.drift import drift

    targets = [agent] if agent else sorted({r.target for r in runs})
    reports = [drift(runs, target) for target in targets]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "agent": d.target,
                        "earlier_runs": d.earlier_runs,
                        "later_runs": d.later_runs,
                        "flagged": d.flagged,
                        "note": d.note,
                        "components": [
                            {
                                "name": c.name,
                                "earlier": c.earlier,
                                "later": c.later,
                                "growth": c.growth,
                            }
                            for c in d.components
                        ],
                    }
                    for d in reports
                ],
                indent=2,
            )
        )
        return
    if not reports:
        typer.echo("no Steward runs in the window")
    for d in reports:
        typer.echo(
            f"{d.target}: {d.earlier_runs} earlier vs {d.later_runs} later runs (per-run averages)"
        )
        for c in d.components:
            change = "new" if c.growth is None else f"{c.growth:+.0%}"
            mark = "  <- grew the most" if c.name == d.flagged else ""
            typer.echo(f"  {c.name:<30} {c.earlier:>12.4f} {c.later:>12.4f} {change:>7}{mark}")
        typer.echo(f"  {d.note}")


_COLUMNS = (
    "runs",
    "calls",
    "in tok",
    "out tok",
    "cost usd",
    "unpriced",
    "retries",
    "fallbacks",
    "max ctx",
    "tool s",
    "review s",
)


def render_table(by: str, rows: Sequence[costs.CostRow], total: costs.CostRow) -> str:
    """Plain-text columns: one line per group, a rule, then the totals."""
    lines = [[by, *_COLUMNS], *(_cells(row) for row in rows), _cells(total)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]

    def fmt(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    rule = "-" * len(fmt(lines[0]))
    return "\n".join(
        [fmt(lines[0]), rule, *(fmt(line) for line in lines[1:-1]), rule, fmt(lines[-1])]
    )


def _cells(row: costs.CostRow) -> list[str]:
    return [
        row.key,
        str(row.runs),
        str(row.model_calls),
        str(row.input_tokens),
        str(row.output_tokens),
        format_cost(row),
        str(row.unpriced_calls),
        _opt(row.retries),
        _opt(row.fallbacks),
        _opt(row.max_context_tokens),
        _opt(row.tool_seconds),
        _opt(row.review_seconds),
    ]


def format_cost(row: costs.CostRow) -> str:
    """`$0.0123`; `>=$0.0123` when some calls are unpriced; `unknown` when all are."""
    if row.cost_usd is None:
        return "unknown"
    amount = f"${row.cost_usd:.4f}"
    return amount if row.cost_complete else f">={amount}"


def _opt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)
