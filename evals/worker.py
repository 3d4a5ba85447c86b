"""The eval worker: Steward's workflows with a real model, and tools that only record.

It serves two pairs of queues. On the eval queue (`steward-eval` and its privileged twin)
runs use the configured model tiers and read what they read (retrieval), but every tool
is the sandbox: nothing is sent, written, published or fetched, and approval notices go to
the eval instead of to people. On the scripted queue, runs get their model answers,
retrieval results and tool results from their case's script: no model at all.

The real tool activities are never built here, so an eval worker cannot send a real
message whatever a suite asks. Its authority is a sandbox's: it honours a run's eval
options (one tier, short approval deadlines) and needs no signatures, since nothing acts.
`steward eval` runs one in its own process unless told not to; `python -m evals.worker`
runs one on its own (for a shared server).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.evals import (
    EvalActivities,
    SandboxTools,
    ScriptedModel,
    ScriptedRetrieval,
    Scripts,
)
from evals.models import EVAL_QUEUE, scripted_queue
from steward.config import StewardConfig
from steward.models import ToolInvocation
from workers.build import (
    ALL_WORKFLOWS,
    Activities,
    authority,
    build_workers,
    mcp_activities,
    model_activities,
    privileged_tools,
    retrieval_activities,
)


def eval_activities(
    config: StewardConfig,
    llm: Any,
    *,
    retrieval: Any = None,
    recorded: list[ToolInvocation] | None = None,
) -> Activities:
    """Real model and retrieval, sandboxed tools, and scoring."""
    mcp = mcp_activities(config) if config.mcp_servers else None
    tools = SandboxTools(mcp=mcp, recorded=recorded, allow_hosts=config.http.allow_hosts)
    return Activities(
        llm=llm,
        outbox=tools,
        authority=authority(config, sandbox=True),
        files=tools,
        http=tools,
        mcp=tools,
        retrieval=retrieval if retrieval is not None else retrieval_activities(config),
        evals=EvalActivities(),
        privileged_tools=privileged_tools(config),
    )


def scripted_activities(
    config: StewardConfig, *, recorded: list[ToolInvocation] | None = None
) -> Activities:
    """Everything a scripted run calls answered from its script."""
    scripts = Scripts()
    tools = SandboxTools(scripts=scripts, recorded=recorded)
    return Activities(
        llm=ScriptedModel(scripts),
        outbox=tools,
        authority=authority(config, sandbox=True),
        files=tools,
        http=tools,
        mcp=tools,
        retrieval=ScriptedRetrieval(scripts, tools),
        privileged_tools=privileged_tools(config),
    )


def build_eval_workers(
    client: Client,
    config: StewardConfig,
    *,
    task_queue: str = EVAL_QUEUE,
    llm: Any = None,
    retrieval: Any = None,
    recorded: list[ToolInvocation] | None = None,
    **options: Any,
) -> list[Worker]:
    """Workers for the eval queue and the scripted queue (each with its privileged twin).

    `recorded`, when given, collects every tool invocation the sandbox saw (for tests).
    """
    live = eval_activities(
        config, llm or model_activities(config), retrieval=retrieval, recorded=recorded
    )
    return [
        *build_workers(client, live, task_queue=task_queue, workflows=ALL_WORKFLOWS, **options),
        *build_workers(
            client,
            scripted_activities(config, recorded=recorded),
            task_queue=scripted_queue(task_queue),
            workflows=ALL_WORKFLOWS,
            **options,
        ),
    ]


@asynccontextmanager
async def eval_workers(
    client: Client, config: StewardConfig, *, retrieval: Any = None, **kwargs: Any
) -> AsyncIterator[list[Worker]]:
    """The eval workers running for the duration of the block.

    Retrieval built here has its store closed at the end: an embedded store stays locked
    by this process until then, even for the next eval in the same process.
    """
    owned = retrieval is None
    retrieval = retrieval if retrieval is not None else retrieval_activities(config)
    workers = build_eval_workers(client, config, retrieval=retrieval, **kwargs)
    try:
        async with AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            yield workers
    finally:
        if owned:
            retrieval.store.close()


async def serve(task_queue: str, config_path: str | None) -> None:
    """Run the eval workers until SIGINT or SIGTERM."""
    from steward.client import connect, load_settings

    config = load_settings(config_path)
    client = await connect(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with eval_workers(client, config, task_queue=task_queue):
        logging.getLogger("steward").info(
            "eval worker up: queue=%s pid=%d", task_queue, os.getpid()
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """`python -m evals.worker [--queue Q] [--config FILE]`."""
    parser = argparse.ArgumentParser(prog="python -m evals.worker", description=__doc__)
    parser.add_argument("--queue", default=EVAL_QUEUE)
    parser.add_argument("--config", default=os.environ.get("STEWARD_CONFIG"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args.queue, args.config))


if __name__ == "__main__":
    main()
