"""Costs across runs: the pure grouping, and real runs' ledgers read back through visibility."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import typer
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from steward.cli import app
from steward.cli.costs import format_cost, parse_duration, render_table
from steward.config import StewardConfig
from steward.costs import RunCost, collect, runs_query, summarize, totals
from steward.models import Ledger, LLMResult, RunResult, Usage
from steward.runs import decide, start_run
from tests.support.fake_model import FakeModel
from tests.support.stack import running_workers, wait_for_approval
from tests.workflows.test_agent import SEND

REPO = Path(__file__).resolve().parent.parent
DAY = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
runner = CliRunner()


def spent(
    *calls: tuple[str, int, int, float | None],
    attempts: int = 1,
    tool_seconds: float = 0.0,
    review_seconds: float = 0.0,
    fallbacks: int = 0,
) -> Ledger:
    """A ledger built the way workflows build it: one add_call per (tier, in, out, cost)."""
    ledger = Ledger(tool_seconds=tool_seconds, review_seconds=review_seconds, fallbacks=fallbacks)
    for tier, input_tokens, output_tokens, cost in calls:
        ledger.add_call(
            LLMResult(
                text="",
                model=f"m/{tier}",
                tier=tier,
                usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost),
                latency_ms=1.0,
                attempt=attempts,
            )
        )
    return ledger


def a_run(
    target: str,
    ledger: Ledger | None,
    *,
    started: datetime = DAY,
    status: str = "completed",
) -> RunCost:
    return RunCost(
        workflow_id=f"{target}-{uuid.uuid4().hex[:6]}",
        run_id=uuid.uuid4().hex,
        target=target,
        started_at=started,
        status=status,
        ledger=ledger,
    )


# --- summarize: pure -----------------------------------------------------------------


def test_by_agent_sums_each_agent_and_puts_the_costliest_first() -> None:
    runs = [
        a_run("helpdesk", spent(("fast", 100, 10, 0.001), attempts=2, tool_seconds=1.5)),
        a_run("helpdesk", spent(("strong", 300, 40, 0.004), ("strong", 500, 50, 0.006))),
        a_run("support-reply", spent(("fast", 50, 5, 0.02), review_seconds=60.0, fallbacks=1)),
    ]
    rows = summarize(runs, "agent")

    assert [row.key for row in rows] == ["support-reply", "helpdesk"]
    helpdesk = rows[1]
    assert (helpdesk.runs, helpdesk.model_calls) == (2, 3)
    assert (helpdesk.input_tokens, helpdesk.output_tokens, helpdesk.tokens) == (900, 100, 1000)
    assert helpdesk.cost_usd == pytest.approx(0.011)
    assert helpdesk.unpriced_calls == 0 and helpdesk.cost_complete
    assert (helpdesk.retries, helpdesk.tool_seconds, helpdesk.max_context_tokens) == (1, 1.5, 500)
    support = rows[0]
    assert (support.review_seconds, support.fallbacks, support.retries) == (60.0, 1, 0)

    total = totals(runs)
    assert (total.key, total.runs, total.model_calls) == ("total", 3, 4)
    assert total.cost_usd == pytest.approx(0.031)
    assert format_cost(total) == "$0.0310"


def test_all_unpriced_calls_make_the_cost_unknown_never_zero() -> None:
    runs = [a_run("helpdesk", spent(("fast", 10, 1, None), ("strong", 20, 2, None)))]
    (row,) = summarize(runs, "agent")
    assert row.cost_usd is None and row.unpriced_calls == 2
    assert format_cost(row) == "unknown"
    assert totals(runs).cost_usd is None
    assert "unknown" in render_table("agent", [row], totals(runs))


def test_partly_priced_calls_show_the_known_cost_as_a_lower_bound() -> None:
    runs = [a_run("helpdesk", spent(("fast", 10, 1, None), ("strong", 20, 2, 0.5)))]
    (row,) = summarize(runs, "agent")
    assert row.cost_usd == pytest.approx(0.5) and row.unpriced_calls == 1
    assert not row.cost_complete
    assert format_cost(row) == ">=$0.5000"


def test_a_run_without_model_calls_cost_nothing_rather_than_unknown() -> None:
    (row,) = summarize([a_run("helpdesk", Ledger(tool_seconds=2.0))], "agent")
    assert row.cost_usd == 0.0 and format_cost(row) == "$0.0000"


def test_runs_that_ended_without_a_ledger_are_counted() -> None:
    runs = [
        a_run("helpdesk", spent(("fast", 10, 1, 0.1))),
        a_run("helpdesk", None, status="failed"),
    ]
    (row,) = summarize(runs, "agent")
    assert (row.runs, row.runs_without_ledger, row.model_calls) == (2, 1, 1)
    assert totals(runs).runs_without_ledger == 1


def test_by_tier_splits_each_run_over_the_tiers_it_called() -> None:
    runs = [
        a_run("support-reply", spent(("fast", 40, 5, 0.001), ("strong", 80, 60, 0.01))),
        a_run("helpdesk", spent(("strong", 100, 10, None), tool_seconds=3.0)),
        a_run("helpdesk", None, status="terminated"),
    ]
    rows = {row.key: row for row in summarize(runs, "tier")}

    assert set(rows) == {"fast", "strong"}
    strong = rows["strong"]
    assert (strong.runs, strong.model_calls, strong.input_tokens) == (2, 2, 180)
    assert strong.cost_usd == pytest.approx(0.01) and strong.unpriced_calls == 1
    assert format_cost(strong) == ">=$0.0100"
    assert (rows["fast"].runs, rows["fast"].model_calls) == (1, 1)
    # retries, tool and review time belong to runs, not tiers: not invented per tier
    assert strong.retries is None and strong.tool_seconds is None
    assert strong.review_seconds is None and strong.max_context_tokens is None
    table = render_table("tier", list(rows.values()), totals(runs))
    assert table.splitlines()[0].split()[0] == "tier"
    # the run without a ledger is in no tier, but the totals still count it
    total = totals(runs)
    assert (total.runs, total.runs_without_ledger, total.tool_seconds) == (3, 1, 3.0)


def test_by_day_groups_by_utc_start_date_in_date_order() -> None:
    late_evening_in_brazil = datetime(2025, 3, 3, 22, 30, tzinfo=timezone(timedelta(hours=-3)))
    runs = [
        a_run("helpdesk", spent(("fast", 1, 1, 0.3)), started=DAY + timedelta(days=1)),
        a_run("helpdesk", spent(("fast", 1, 1, 0.1)), started=DAY),
        a_run("helpdesk", spent(("fast", 1, 1, 0.2)), started=late_evening_in_brazil),
    ]
    rows = summarize(runs, "day")
    assert [(row.key, row.runs) for row in rows] == [("2025-03-04", 2), ("2025-03-05", 1)]
    assert rows[0].cost_usd == pytest.approx(0.3)


def test_summarize_refuses_an_unknown_grouping() -> None:
    with pytest.raises(ValueError, match="by: expected one of agent, tier, day"):
        summarize([], "week")  # type: ignore[arg-type]


def test_table_has_a_rule_and_a_totals_line() -> None:
    runs = [a_run("helpdesk", spent(("fast", 100, 10, 0.001)))]
    lines = render_table("agent", summarize(runs, "agent"), totals(runs)).splitlines()
    assert lines[0].split()[:3] == ["agent", "runs", "calls"]
    assert set(lines[1]) == {"-"} and set(lines[-2]) == {"-"}
    assert lines[2].split()[:3] == ["helpdesk", "1", "1"]
    assert lines[-1].split()[:3] == ["total", "1", "1"]


# --- inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("24h", timedelta(hours=24)),
        ("30m", timedelta(minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "1.5h", "7 d", "0d", "7d-"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)


def test_query_selects_steward_runs_after_a_utc_instant() -> None:
    since = datetime(2025, 3, 4, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert runs_query(since) == (
        "StartTime > '2025-03-04T12:00:00.000000Z' AND StewardTarget IS NOT NULL"
        " AND ExecutionStatus != 'ContinuedAsNew' AND ParentWorkflowId IS NULL"
    )
    assert runs_query(since, "helpdesk").endswith(" AND StewardTarget = 'helpdesk'")
    with pytest.raises(ValueError, match="playbook or agent name"):
        runs_query(since, "x' OR StewardTarget IS NOT NULL OR 'y")
    with pytest.raises(ValueError, match="timezone-aware"):
        runs_query(datetime(2025, 3, 4))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "7x"], "expected a number and a unit"),
        (["--since", "0m"], "must be longer than zero"),
        (["--by", "week"], "expected one of agent, tier, day"),
        (["--agent", "it's"], "expected a playbook or agent name"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_costs_refuses_bad_options_before_connecting(args: list[str], message: str) -> None:
    # TEMPORAL_ADDRESS points nowhere: a refusal must come before any connection
    result = runner.invoke(app, ["costs", *args], env={"TEMPORAL_ADDRESS": "127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_costs_explains_itself() -> None:
    result = runner.invoke(app, ["costs", "--help"])
    assert result.exit_code == 0
    assert "Show what runs cost" in result.output and "--since" in result.output


# --- real runs -----------------------------------------------------------------------


def answer(text: str) -> str:
    return json.dumps({"action": "answer", "answer": text})


async def steward(env: WorkflowEnvironment, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "steward.cli",
        *args,
        env=os.environ | {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode() + err.decode()


async def collected(
    client: Client, agent: str, statuses: dict[str, str], timeout: float = 20
) -> dict[str, RunCost]:
    """Poll `collect` until the agent's runs are exactly these (workflow id -> status)."""
    async with asyncio.timeout(timeout):  # visibility is eventually consistent
        while True:
            runs = await collect(client, since=timedelta(minutes=10), target=agent)
            if {run.workflow_id: run.status for run in runs} == statuses:
                return {run.workflow_id: run for run in runs}
            await asyncio.sleep(0.2)


async def test_costs_of_real_runs_through_visibility_and_the_cli(
    env: WorkflowEnvironment,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    # a private agent name, so runs of other tests on the session server stay out of it
    agent = f"helpdesk-{uuid.uuid4().hex[:8]}"
    config = config.model_copy(
        update={"agents": config.agents | {agent: config.agents["helpdesk"]}}
    )
    async with running_workers(client, config, task_queue):

        async def start(task: str) -> WorkflowHandle[object, RunResult]:
            return await start_run(client, config, agent, task, "dana", task_queue=task_queue)

        fake_model.queue(answer("ok"), input_tokens=100, output_tokens=20)
        first = await start("say ok")
        assert (await first.result()).status == "completed"
        fake_model.queue(answer("fine"), input_tokens=200, output_tokens=30)
        second = await start("say fine")
        await second.result()
        failed = await start("nothing is queued, so the model call fails for good")
        with pytest.raises(WorkflowFailureError):
            await failed.result()
        fake_model.queue(
            json.dumps({"action": "send_email", "arguments": SEND}),
            input_tokens=50,
            output_tokens=10,
        )
        fake_model.queue(answer("not sent"), input_tokens=60, output_tokens=5)
        waiting = await start("tell ops the backup finished")
        request = await wait_for_approval(waiting)

        runs = await collected(
            client,
            agent,
            {
                first.id: "completed",
                second.id: "completed",
                failed.id: "failed",
                waiting.id: "running",
            },
        )
        one = runs[first.id].ledger
        assert one is not None
        assert (one.model_calls, one.input_tokens, one.output_tokens) == (1, 100, 20)
        assert (one.unpriced_calls, one.context_tokens) == (1, [100])
        # a running run's ledger comes from its progress query
        so_far = runs[waiting.id].ledger
        assert so_far is not None and (so_far.model_calls, so_far.input_tokens) == (1, 50)
        # a run that failed before finishing has no ledger, and that is not a read error
        assert runs[failed.id].ledger is None and runs[failed.id].error is None

        code, out = await steward(env, "costs", "--agent", agent, "--since", "1h", "--json")
        assert code == 0, out
        report = json.loads(out)
        (row,) = report["rows"]
        assert (row["key"], row["runs"], row["runs_without_ledger"]) == (agent, 4, 1)
        assert (row["model_calls"], row["input_tokens"]) == (3, 350)

        await decide(client, request.id, "alice", approve=False, reason="not now")
        assert (await waiting.result()).status == "completed"
        runs = await collected(
            client,
            agent,
            {
                first.id: "completed",
                second.id: "completed",
                failed.id: "failed",
                waiting.id: "completed",
            },
        )
        done = runs[waiting.id].ledger
        assert done is not None and done.model_calls == 2 and done.review_seconds > 0

        (mine,) = summarize(runs.values(), "agent")
        assert (mine.runs, mine.runs_without_ledger, mine.model_calls) == (4, 1, 4)
        assert (mine.input_tokens, mine.output_tokens) == (410, 65)
        # the fake model has no price: unknown, not $0
        assert mine.cost_usd is None and mine.unpriced_calls == 4
        assert mine.review_seconds == done.review_seconds
        (tier,) = summarize(runs.values(), "tier")
        assert tier.key in config.tiers and (tier.runs, tier.model_calls) == (3, 4)

        code, out = await steward(env, "costs", "--agent", agent, "--json")
        assert code == 0, out
        report = json.loads(out)
        assert report["rows"] == [mine.model_dump(mode="json")]
        assert report["total"] == totals(runs.values()).model_dump(mode="json")
        assert report["truncated"] is False and report["unread"] == []

        code, out = await steward(env, "costs", "--agent", agent, "--by", "tier")
        assert code == 0, out
        assert tier.key in out and "unknown" in out and "total" in out
        assert "1 run(s) ended before they had a ledger" in out

        code, out = await steward(env, "costs", "--agent", "nobody-ran-this")
        assert code == 0, out
        assert "no Steward runs" in out


async def test_a_ledger_that_cannot_be_read_is_reported_with_its_reason(
    client: Client, config: StewardConfig, task_queue: str
) -> None:
    # no worker polls this queue, so nothing can answer the run's progress query
    agent = f"helpdesk-{uuid.uuid4().hex[:8]}"
    config = config.model_copy(
        update={"agents": config.agents | {agent: config.agents["helpdesk"]}}
    )
    handle = await start_run(client, config, agent, "hello", "dana", task_queue=task_queue)
    try:
        async with asyncio.timeout(20):
            while not (
                runs := await collect(
                    client,
                    since=timedelta(minutes=10),
                    target=agent,
                    fetch_timeout=timedelta(seconds=1),
                )
            ):
                await asyncio.sleep(0.2)
    finally:
        await handle.terminate("test over")
    (run,) = runs
    assert (run.workflow_id, run.status, run.ledger) == (handle.id, "running", None)
    assert run.error and "RPCError" in run.error
    assert totals(runs).runs_without_ledger == 1
