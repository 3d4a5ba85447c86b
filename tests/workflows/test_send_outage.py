"""An approved email outlives an outage of its mail server: nothing approved is lost.

The SMTP server (aiosmtpd on loopback) refuses connections from before the approval until
well past the seconds a tool used to be retried for, then comes back. The send keeps
retrying with backoff inside its window (hours for email), `steward status` shows it
retrying and why meanwhile, and exactly one message arrives.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from temporalio.client import Client

from activities.tools.email import OutboxActivities
from activities.tools.smtp import SmtpTransport
from steward.config import StewardConfig
from steward.runs import decide, start_run, status
from tests.support.fake_model import FakeModel
from tests.support.smtp_server import free_port, smtp_server
from tests.support.stack import activities_for_tests, running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

OUTAGE_SECONDS = 18
"""Longer than the five attempts (1+2+4+8 s of backoff) a send used to get."""


async def test_an_approved_send_waits_out_the_mail_server_and_is_delivered_once(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    port = free_port()
    data = config.model_dump()
    data["smtp"] = {"host": "127.0.0.1", "port": port, "starttls": False, "timeout_seconds": 2}
    with_smtp = StewardConfig.model_validate(data)
    assert with_smtp.smtp is not None
    activities = activities_for_tests(with_smtp)
    activities.outbox = OutboxActivities(
        Path(with_smtp.outbox), with_smtp.sender, smtp=SmtpTransport(with_smtp.smtp, {})
    )
    queue_happy_path(fake_model)
    async with running_workers(client, with_smtp, task_queue, activities):
        handle = await start_run(
            client, with_smtp, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        down_since = time.monotonic()
        await decide(client, request.id, "alice", approve=True)

        # While the server is down, the run says it is retrying the send, and why.
        async with asyncio.timeout(15):
            while True:
                report = await status(client, handle.id)
                retrying = [a for a in report.activities if a.activity == "send_email"]
                if retrying and retrying[0].attempt >= 3:
                    break
                await asyncio.sleep(0.5)
        assert report.execution == "running"
        assert "SmtpUnavailable" in retrying[0].last_failure
        assert f"127.0.0.1:{port} unreachable" in retrying[0].last_failure

        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
        with smtp_server(port=port) as (inbox, _):
            async with asyncio.timeout(60):
                result = await handle.result()

    assert result.status == "completed"
    (action,) = result.actions
    assert action.outcome == "done" and f"127.0.0.1:{port}" in action.output
    assert len(inbox.received) == 1
    assert inbox.received[0].recipients == ["dana.whitfield@example.com"]
