"""Helpers for the eval tests: run a suite on in-process eval workers, against the fake."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client

from activities.llm import LLMActivities
from evals.cli import EvalOptions, eval_request
from evals.models import EvalRequest, EvalResult
from evals.runner import start_eval
from evals.suite import Suite
from evals.worker import eval_workers
from steward.config import StewardConfig
from steward.models import ToolInvocation

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "evals" / "suites"
BASELINES = REPO / "evals" / "baselines"
VERDICT = '{"score": 4, "reason": "polite and promises nothing"}'


def request_for(
    suite: Suite,
    config: StewardConfig,
    task_queue: str,
    *,
    concurrency: int | None = None,
    cases: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> EvalRequest:
    """The EvalWorkflow input for a suite, as `steward eval` would build it."""
    options = EvalOptions(
        targets=[],
        queue=task_queue,
        concurrency=concurrency,
        cases=list(cases),
        tags=list(tags),
    )
    return eval_request(suite, config, options)


async def run_request(
    client: Client,
    config: StewardConfig,
    request: EvalRequest,
    task_queue: str,
    *,
    recorded: list[ToolInvocation] | None = None,
) -> EvalResult:
    """Run an eval to its end on eval workers in this process (model calls: the fake)."""
    async with eval_workers(
        client,
        config,
        task_queue=task_queue,
        llm=LLMActivities(config.tiers, allow_paid=False),
        recorded=recorded,
    ):
        handle, _ = await start_eval(client, request, task_queue=task_queue)
        return await handle.result()
