"""Approval notices: an email per request and stage, and an optional webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tools.email import OutboxActivities
from steward.models import ApprovalNotice, ApprovalRequest
from tests.support.stack import mail_text

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def notice(key: str = "wf.notice-1") -> ApprovalNotice:
    return ApprovalNotice(
        request=ApprovalRequest(
            id="wf:1",
            workflow_id="wf",
            tool="send_email",
            args_digest="abc123",
            arguments={"to": "x@example.com", "body": "<b>hi</b>"},
            requester="dana",
            approvers=["alice", "bob"],
            requested_at=NOW,
            deadline=NOW + timedelta(hours=1),
            required=2,
        ),
        idempotency_key=key,
        approve_command="steward approve wf:1 --as NAME",
    )


class Hook:
    """A webhook receiver on loopback answering with a scripted status."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, object], str | None]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((json.loads(body), self.headers.get("Idempotency-Key")))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()


async def test_notice_mail_and_webhook(tmp_path: Path, hook: Hook) -> None:
    outbox = OutboxActivities(
        tmp_path,
        "steward@example.com",
        contacts={"alice": "alice@example.com"},
        webhook_url=hook.url,
    )
    result = await ActivityEnvironment().run(outbox.notify_approvers, notice())
    assert result.ok and "alice@example.com" in result.output
    (mail,) = tmp_path.glob("*.eml")
    text = mail_text(mail)
    assert "To: alice@example.com, bob@steward.local" in text
    assert "2 of you must decide" in text and "steward approve wf:1 --as NAME" in text
    ((payload, key),) = hook.received
    assert key == "wf.notice-1"
    assert payload["request"]["id"] == "wf:1"  # type: ignore[index]


async def test_a_retried_notice_mails_once(tmp_path: Path) -> None:
    outbox = OutboxActivities(tmp_path, "steward@example.com")
    for _ in range(3):
        await ActivityEnvironment().run(outbox.notify_approvers, notice())
    assert len(list(tmp_path.glob("*.eml"))) == 1


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (404, False)])
async def test_webhook_failures_are_classified(
    tmp_path: Path, hook: Hook, status: int, retryable: bool
) -> None:
    hook.status = status
    outbox = OutboxActivities(tmp_path, "steward@example.com", webhook_url=hook.url)
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(outbox.notify_approvers, notice())
    assert caught.value.type == "WebhookError"
    assert caught.value.non_retryable is not retryable
    assert f"HTTP {status}" in str(caught.value)
