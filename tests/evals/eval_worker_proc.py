"""An eval worker in its own process, for the test that kills it mid-eval.

The real eval workers (sandboxed tools, scoring, the EvalWorkflow); the model is the
fake, answering from a script file and logging every call to a JSONL file, so the test
can count model calls across the killed process and its replacement.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from activities.llm import LLMActivities
from evals.worker import build_eval_workers
from steward.client import connect
from steward.config import load_config
from tests.support.fake_model import FakeModel, install_fake_model


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--calls-log", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    config = load_config(args.config)
    install_fake_model(FakeModel.from_script(Path(args.script), calls_log=Path(args.calls_log)))
    client = await connect()
    workers = build_eval_workers(
        client,
        config,
        task_queue=args.queue,
        llm=LLMActivities(config.tiers, allow_paid=False),
        # a replacement worker picks up the dead one's workflows within a second
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
    )
    await asyncio.gather(*(worker.run() for worker in workers))


if __name__ == "__main__":
    asyncio.run(main())
