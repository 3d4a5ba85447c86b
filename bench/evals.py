"""`make bench`, evals: a suite's wall time at concurrency 1 and 10, against its case times.

The suite is BENCH_EVAL_CASES support tickets run by a real EvalWorkflow on eval workers
(sandboxed send, scripted approval, scoring from history), with the fake model answering
every call after BENCH_EVAL_LATENCY seconds. The sum of case times is what running the
cases one after another costs (each child run from start to end, approval included); the
wall time at concurrency 10 shows how much of it the eval overlaps. The server is a
persisted dev server with Steward's tuning, its worker in this process.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.llm import LLMActivities
from bench import steward_plugin
from evals.models import EvalRequest, EvalResult, scripted_queue
from evals.runner import start_eval
from evals.suite import Suite, resolve_cases
from evals.worker import eval_workers
from steward import devserver
from steward import search_attributes as sa
from steward.config import StewardConfig, load_config
from tests.support.fake_model import FakeModel, install_fake_model

CASES = int(os.environ.get("BENCH_EVAL_CASES", "20"))
LATENCY = float(os.environ.get("BENCH_EVAL_LATENCY", "0.1"))
LEVELS = (1, 10)
ANSWER = '{"category": "shipping", "urgency": "high"}'  # a valid classification and draft


def bench_config(scratch: Path) -> StewardConfig:
    base = load_config("examples/steward.yaml")
    return StewardConfig.model_validate(
        base.model_dump()
        | {
            "tiers": {name: [{"model": "fake/bench-eval"}] for name in base.tiers},
            "outbox": str(scratch / "outbox"),
            "retrieval": base.retrieval.model_dump() | {"store": str(scratch / "qdrant")},
            # the runner is measured, not retrieval (its own section): draft ungrounded
            "agents": {
                name: agent.model_dump()
                | {"collections": [], "tools": [t for t in agent.tools if t != "search_docs"]}
                # the fake's scripted answer is the reply: the playbook writes it
                | ({"draft": "write"} if agent.kind == "playbook" else {})
                for name, agent in base.agents.items()
            },
        }
    )


def bench_request(config: StewardConfig, queue: str, concurrency: int, label: str) -> EvalRequest:
    ticket = Path("examples/tickets/late-delivery.txt").read_text(encoding="utf-8")
    suite = Suite.model_validate(
        {
            "suite": f"bench-{label}",
            "target": "support-reply",
            "cases": [
                {"id": f"case-{i}", "input": ticket, "expect": [{"status": "completed"}]}
                for i in range(CASES)
            ],
        }
    )
    return EvalRequest(
        suite=suite.suite,
        cases=resolve_cases(suite, config, suite.cases),
        concurrency=concurrency,
        scripted_queue=scripted_queue(queue),
    )


async def run_level(
    env: WorkflowEnvironment, config: StewardConfig, fake: FakeModel, concurrency: int
) -> tuple[float, EvalResult]:
    queue = f"bench-eval-{uuid.uuid4().hex[:8]}"
    for _ in range(2 * CASES):
        fake.queue(ANSWER)
    request = bench_request(config, queue, concurrency, uuid.uuid4().hex[:6])
    async with eval_workers(
        env.client, config, task_queue=queue, llm=LLMActivities(config.tiers, allow_paid=False)
    ):
        started = time.perf_counter()
        handle, _ = await start_eval(env.client, request, task_queue=queue)
        result = await handle.result()
        wall = time.perf_counter() - started
    failed = [o.id for o in result.outcomes if not o.passed]
    assert not failed, f"bench cases failed: {failed}"
    return wall, result


async def main(scratch: Path) -> None:
    """Measure and print the eval section of the benchmark."""
    fake = install_fake_model(FakeModel(latency=LATENCY))
    config = bench_config(scratch)
    env = await WorkflowEnvironment.start_local(
        plugins=[steward_plugin()],
        dev_server_existing_path=str(devserver.temporal_binary()),
        search_attributes=sa.ALL,
        dev_server_extra_args=[
            *devserver.tuning_args(),
            *("--db-filename", str(scratch / "evals.db")),
        ],
        dev_server_log_level="error",
    )
    try:
        rows = [(level, *await run_level(env, config, fake, level)) for level in LEVELS]
    finally:
        await env.shutdown()
    print(
        f"\neval suite: {CASES} support cases (2 model calls at {LATENCY * 1000:.0f} ms each, "
        "a scripted approval, a sandboxed send, scoring from history), fake model"
    )
    for level, wall, result in rows:
        case_seconds = sum((o.latency_seconds or 0.0) + o.review_seconds for o in result.outcomes)
        print(
            f"  concurrency {level:>2}: wall {wall:6.2f} s, sum of case times "
            f"{case_seconds:6.2f} s ({case_seconds / wall:.1f}x overlapped), "
            f"{wall / CASES * 1000:.0f} ms per case"
        )
