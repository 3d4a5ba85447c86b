"""What runs cost, across runs: find Steward runs by search attribute, read each ledger, group.

Each run keeps its own ledger (in its result once it completes, in the `progress` query
while it runs), so "why did this week cost more?" needs a client that gathers them. This
module is that client: `collect` lists the runs started within a window through the
visibility store and reads their ledgers a few at a time, with a cap on how many it reads,
so a busy namespace never turns a report into an endless scan. `summarize` and `totals` are
pure and group the ledgers by agent, model tier or day. A price litellm does not know is
counted as an unpriced call and shown as unknown, never as a cost of zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError

from steward import search_attributes as sa
from steward.codec import CodecError
from steward.models import Ledger, RunProgress, RunResult, Strict, TierSpend

DEFAULT_LIMIT = 1000
"""Most runs one report reads, so it ends in bounded time on a busy namespace."""

DEFAULT_CONCURRENCY = 10
"""Ledgers read at once: enough to be quick, few enough not to flood the frontend."""

FETCH_TIMEOUT = timedelta(seconds=10)
"""How long one result or query may take; a running run whose worker is down would
otherwise hold the report until the server gives up on the query."""

GroupBy = Literal["agent", "tier", "day"]
GROUPINGS: tuple[GroupBy, ...] = ("agent", "tier", "day")


class RunCost(Strict):
    """One run and what it spent. ledger is None when the run ended before it had one."""

    workflow_id: str
    run_id: str
    target: str = Field(description="the playbook or agent the run is of")
    started_at: datetime
    status: str = Field(
        description="the run's own status when it completed (completed, rejected, ...); "
        "otherwise the execution's (running, failed, terminated, timed_out, canceled)"
    )
    ledger: Ledger | None = None
    error: str | None = Field(default=None, description="why the ledger could not be read")


class CostRow(Strict):
    """Spend of one group of runs (an agent, a tier or a day), or of all of them.

    cost_usd is the known part of the cost. It is None when the group made model calls
    and none of them had a price: unknown, not free. The run-level columns (retries,
    fallbacks, context, tool and review time) are None in rows by tier, which they do not
    split by.
    """

    key: str
    runs: int = 0
    runs_without_ledger: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    unpriced_calls: int = 0
    retries: int | None = 0
    fallbacks: int | None = 0
    fallback_cost_usd: float | None = 0.0
    max_context_tokens: int | None = 0
    tool_seconds: float | None = 0.0
    review_seconds: float | None = 0.0

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def cost_complete(self) -> bool:
        """Whether cost_usd covers every call (no unpriced call in the group)."""
        return self.unpriced_calls == 0


# --- collecting ----------------------------------------------------------------------


def runs_query(since: datetime, target: str | None = None) -> str:
    """The visibility query for Steward runs started after `since`, optionally of one target.

    Every run Steward starts carries StewardTarget, so `IS NOT NULL` tells Steward runs from
    any other workflow in the namespace. A run that continued as new is left out: the run
    it continued into is listed in its place. So is a specialist's run started by a
    handoff (a child workflow): its spend is rolled up in its parent's ledger, and
    counting it again would count it twice. No ORDER BY: the dev server's SQLite
    visibility refuses it.
    """
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware (UTC), got a naive datetime")
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    query = (
        f"StartTime > '{stamp}' AND {sa.TARGET.name} IS NOT NULL"
        " AND ExecutionStatus != 'ContinuedAsNew' AND ParentWorkflowId IS NULL"
    )
    if target is not None:
        query += f" AND {sa.TARGET.name} = '{checked_target(target)}'"
    return query


def checked_target(target: str) -> str:
    """target, if it can be quoted in a visibility query as it is (no quote, no backslash)."""
    if not target or "'" in target or "\\" in target:
        raise ValueError(f"expected a playbook or agent name, got {target!r}")
    return target


async def collect(
    client: Client,
    *,
    since: timedelta,
    target: str | None = None,
    limit: int = DEFAULT_LIMIT,
    concurrency: int = DEFAULT_CONCURRENCY,
    now: datetime | None = None,
    fetch_timeout: timedelta = FETCH_TIMEOUT,
) -> list[RunCost]:
    """The Steward runs started within `since` before now (at most `limit`), with ledgers.

    Completed runs give their result's ledger, running ones their `progress` query's.
    Runs that ended without a result (failed, terminated, timed out, canceled) are
    returned with no ledger so a report still counts them; so are runs whose ledger
    could not be read, with the reason in `error`.
    """
    if since <= timedelta(0):
        raise ValueError(f"since: expected a positive duration, got {since}")
    if limit < 1:
        raise ValueError(f"limit: expected at least 1, got {limit}")
    if concurrency < 1:
        raise ValueError(f"concurrency: expected at least 1, got {concurrency}")
    query = runs_query((now or datetime.now(UTC)) - since, target)
    executions = [execution async for execution in client.list_workflows(query, limit=limit)]
    slots = asyncio.Semaphore(concurrency)

    async def read(execution: WorkflowExecution) -> RunCost:
        async with slots:
            return await _run_cost(client, execution, fetch_timeout)

    return sorted(
        await asyncio.gather(*(read(execution) for execution in executions)),
        key=lambda run: (run.started_at, run.workflow_id),
    )


async def _run_cost(
    client: Client, execution: WorkflowExecution, rpc_timeout: timedelta
) -> RunCost:
    handle = client.get_workflow_handle(
        execution.id, run_id=execution.run_id, result_type=RunResult
    )
    state = execution.status or WorkflowExecutionStatus.RUNNING
    cost = RunCost(
        workflow_id=execution.id,
        run_id=execution.run_id,
        target=execution.typed_search_attributes.get(sa.TARGET) or "",
        started_at=execution.start_time,
        status=state.name.lower(),
    )
    try:
        if state == WorkflowExecutionStatus.COMPLETED:
            result = await handle.result(follow_runs=False, rpc_timeout=rpc_timeout)
            cost.status = result.status
            cost.ledger = result.ledger
        elif state == WorkflowExecutionStatus.RUNNING:
            progress: RunProgress = await handle.query(
                "progress", result_type=RunProgress, rpc_timeout=rpc_timeout
            )
            cost.ledger = progress.ledger
    except (
        RPCError,
        WorkflowFailureError,
        WorkflowQueryFailedError,
        WorkflowQueryRejectedError,
        ValidationError,
        CodecError,  # a ledger encrypted with a key this ring lacks: the error names it
    ) as err:
        cost.error = f"{type(err).__name__}: {err}"
    return cost


# --- summarizing ---------------------------------------------------------------------


@dataclass
class _Sum:
    """A row being added up; turned into a CostRow once every run is in."""

    key: str
    per_run: bool = True
    runs: int = 0
    runs_without_ledger: int = 0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    retries: int = 0
    fallbacks: int = 0
    fallback_cost_usd: float = 0.0
    max_context_tokens: int = 0
    tool_seconds: float = 0.0
    review_seconds: float = 0.0
    _seen: set[str] = field(default_factory=set)

    def add_run(self, run: RunCost) -> None:
        self.runs += 1
        ledger = run.ledger
        if ledger is None:
            self.runs_without_ledger += 1
            return
        self._add_spend(ledger.model_calls, ledger)
        self.retries += ledger.retries
        self.fallbacks += ledger.fallbacks
        self.fallback_cost_usd += ledger.fallback_cost_usd
        self.max_context_tokens = max(self.max_context_tokens, *ledger.context_tokens, 0)
        self.tool_seconds += ledger.tool_seconds
        self.review_seconds += ledger.review_seconds

    def add_tier(self, run: RunCost, spend: TierSpend) -> None:
        if run.workflow_id + run.run_id not in self._seen:
            self._seen.add(run.workflow_id + run.run_id)
            self.runs += 1
        self._add_spend(spend.calls, spend)

    def _add_spend(self, calls: int, spend: Ledger | TierSpend) -> None:
        self.calls += calls
        self.input_tokens += spend.input_tokens
        self.output_tokens += spend.output_tokens
        self.cost_usd += spend.cost_usd
        self.unpriced_calls += spend.unpriced_calls

    def row(self) -> CostRow:
        unknown = self.calls > 0 and self.unpriced_calls >= self.calls
        return CostRow(
            key=self.key,
            runs=self.runs,
            runs_without_ledger=self.runs_without_ledger,
            model_calls=self.calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=None if unknown else self.cost_usd,
            unpriced_calls=self.unpriced_calls,
            retries=self.retries if self.per_run else None,
            fallbacks=self.fallbacks if self.per_run else None,
            fallback_cost_usd=self.fallback_cost_usd if self.per_run else None,
            max_context_tokens=self.max_context_tokens if self.per_run else None,
            tool_seconds=self.tool_seconds if self.per_run else None,
            review_seconds=self.review_seconds if self.per_run else None,
        )


def day_of(run: RunCost) -> str:
    """The UTC date a run started on, as YYYY-MM-DD."""
    return run.started_at.astimezone(UTC).date().isoformat()


def summarize(runs: Iterable[RunCost], by: GroupBy) -> list[CostRow]:
    """One row per agent, tier or UTC day.

    By agent and day every run counts in exactly one row. By tier a run counts in the row
    of each tier it called, and runs without a ledger are in no row (only in `totals`).
    Days are in date order; agents and tiers by known cost, then tokens, largest first.
    """
    if by not in GROUPINGS:
        raise ValueError(f"by: expected one of {', '.join(GROUPINGS)}, got {by!r}")
    sums: dict[str, _Sum] = {}

    def group(key: str) -> _Sum:
        return sums.setdefault(key, _Sum(key, per_run=by != "tier"))

    for run in runs:
        if by == "tier":
            for tier, spend in (run.ledger.by_tier if run.ledger else {}).items():
                group(tier).add_tier(run, spend)
        else:
            group(run.target if by == "agent" else day_of(run)).add_run(run)
    rows = [total.row() for total in sums.values()]
    return sorted(rows, key=_order(by))


def _order(by: GroupBy) -> Callable[[CostRow], tuple[float, int, str]]:
    if by == "day":
        return lambda row: (0.0, 0, row.key)
    return lambda row: (-(row.cost_usd or 0.0), -row.tokens, row.key)


def totals(runs: Iterable[RunCost]) -> CostRow:
    """One row over all runs, whatever the grouping."""
    total = _Sum("total")
    for run in runs:
        total.add_run(run)
    return total.row()
