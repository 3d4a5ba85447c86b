"""A Steward worker in its own process, for tests that kill it or read its logs.

It runs the real workers and activities; the model is the fake, answering from a script
file and logging every call to a JSONL file so the test can count calls across processes.
`--send-delay` holds the send_email activity after it has delivered and before it reports,
which is the window in which a crash could make a naive tool send twice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from temporalio import activity

from activities.llm import LLMActivities
from activities.tools.email import OutboxActivities
from activities.tools.smtp import SmtpTransport
from steward.client import connect
from steward.config import load_config
from steward.models import ToolInvocation, ToolResult
from tests.support.fake_model import FakeModel, install_fake_model
from workers.build import (
    Activities,
    authority,
    build_workers,
    file_activities,
    http_activities,
    retrieval_activities,
)


class SlowOutbox(OutboxActivities):
    """The real outbox, pausing after delivery."""

    def __init__(
        self, outbox: Path, sender: str, delay: float, smtp: SmtpTransport | None = None
    ) -> None:
        super().__init__(outbox, sender, smtp=smtp)
        self.delay = delay

    @activity.defn(name="send_email")
    async def send_email(self, invocation: ToolInvocation) -> ToolResult:
        result = await super().send_email(invocation)
        logging.getLogger("worker_proc").info("delivered; holding %.1fs", self.delay)
        await asyncio.sleep(self.delay)
        return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--calls-log", required=True)
    parser.add_argument("--send-delay", type=float, default=0.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    config = load_config(args.config)
    install_fake_model(FakeModel.from_script(Path(args.script), calls_log=Path(args.calls_log)))
    smtp = SmtpTransport(config.smtp) if config.smtp is not None else None
    outbox = SlowOutbox(Path(config.outbox), config.sender, args.send_delay, smtp)
    activities = Activities(
        llm=LLMActivities(config.tiers, allow_paid=False),
        outbox=outbox,
        authority=authority(config),
        files=file_activities(config),
        http=http_activities(config),
        retrieval=retrieval_activities(config, environ={}),
    )
    client = await connect()
    workers = build_workers(client, activities, task_queue=args.queue, role="all")
    await asyncio.gather(*(worker.run() for worker in workers))


if __name__ == "__main__":
    asyncio.run(main())
