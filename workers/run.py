"""Run Steward's workers in this process until SIGINT/SIGTERM, then drain and stop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from steward import devserver, queues
from steward.client import ENVIRONMENT_VARIABLE, connect
from steward.config import load_config
from workers.build import Role, build_workers, default_activities
from workers.telemetry import client_interceptors, tracer_provider, worker_interceptors


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
    activities = default_activities(config)
    provider = tracer_provider(f"steward-worker-{role}", devserver.state_dir() / "spans.jsonl")
    tracer = provider.get_tracer("steward")
    client = await connect(config, interceptors=client_interceptors(tracer))
    workers = build_workers(
        client,
        activities,
        task_queue=task_queue,
        role=role,
        interceptors=worker_interceptors(tracer),
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
    provider.shutdown()


def main(argv: list[str] | None = None) -> None:
    """Parse --role/--queue/--config/--env and serve."""
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
    asyncio.run(serve(args.role, args.queue, args.config, args.env))
