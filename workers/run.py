"""Run Steward's workers in this process until SIGINT/SIGTERM, then drain and stop.

A worker that cannot start says why in one line, as every `steward` command does
(`steward.exits`): exit 2 for a config to fix (an unknown tool, invalid YAML, a namespace
the server lacks), exit 1 when Temporal cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from steward import devserver, queues
from steward.client import ENVIRONMENT_VARIABLE, connect, require_namespace
from steward.config import load_config
from steward.exits import explain
from workers.build import Role, build_workers, default_activities
from workers.telemetry import interceptors, tracer_provider


async def serve(
    role: Role = "all",
    task_queue: str = queues.DEFAULT,
    config_path: str | None = None,
    environment: str | None = None,
) -> None:
    """Connect, build the workers for `role`, and run them until a stop signal.

    With `environment`, its overrides apply and the workers serve its namespace.
    """
    config = load_config(config_path, environment=environment)
    activities = default_activities(config, role=role)
    provider = tracer_provider(f"steward-worker-{role}", devserver.state_dir() / "spans.jsonl")
    try:
        tracer = provider.get_tracer("steward")
        client = await connect(config, interceptors=interceptors(tracer))
        await require_namespace(client)
        workers = build_workers(
            client,
            activities,
            task_queue=task_queue,
            role=role,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger("steward").info(
            "worker up: role=%s queue=%s namespace=%s pid=%d",
            role,
            task_queue,
            client.namespace,
            os.getpid(),
        )
        async with asyncio.TaskGroup() as group:
            for worker in workers:
                group.create_task(worker.run())
            await stop.wait()
            for worker in workers:
                group.create_task(worker.shutdown())
    finally:
        if activities.retrieval is not None:
            # Flushes an embedded store's collections and ends an index build it started.
            activities.retrieval.store.close()
        # Also when the workers never started (no server, say): its exporter has a thread.
        provider.shutdown()


def main(argv: list[str] | None = None) -> None:
    """Parse --role/--queue/--config/--env and serve; a failure a person can fix exits
    with one line on stderr and its exit code, anything else with its traceback.
    """
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--role", choices=["default", "privileged", "all"], default="all")
    parser.add_argument("--queue", default=os.environ.get("STEWARD_TASK_QUEUE", queues.DEFAULT))
    parser.add_argument("--config", default=os.environ.get("STEWARD_CONFIG"))
    parser.add_argument(
        "--env",
        default=os.environ.get(ENVIRONMENT_VARIABLE) or None,
        help="environment from steward.yaml: its overrides, its namespace",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(args.role, args.queue, args.config, args.env))
    except Exception as err:
        explained = explain(err)
        if explained is None:
            raise
        print(f"error: {explained.line}", file=sys.stderr)
        raise SystemExit(explained.code) from None
