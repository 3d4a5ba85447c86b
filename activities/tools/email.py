"""The send_email tool: delivers a message to the local outbox, exactly once per call.

Each message is a `.eml` file named by the call's idempotency key. It is written to a
temporary file and then hard-linked into place, which either creates the message or finds
it already there: a retried or re-run activity never delivers twice.
"""

from __future__ import annotations

import os
import tempfile
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from steward.models import SendEmailArgs, ToolInvocation, ToolResult


class OutboxActivities:
    """Email delivery into a directory (the local outbox)."""

    def __init__(self, outbox: Path, sender: str) -> None:
        self.outbox = outbox
        self.sender = sender

    def message_path(self, idempotency_key: str) -> Path:
        """Where the message for this key lands."""
        return self.outbox / f"{idempotency_key.replace(':', '_')}.eml"

    @activity.defn(name="send_email")
    async def send_email(self, invocation: ToolInvocation) -> ToolResult:
        """Write the message once; report where it is and whether it was already there."""
        args = _parse_args(invocation)
        target = self.message_path(invocation.idempotency_key)
        if target.exists():
            return _sent(target, already=True)
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = args.to
        message["Subject"] = args.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(idstring=invocation.idempotency_key.replace(":", "."))
        message["X-Steward-Agent"] = invocation.agent
        message["X-Steward-Requested-By"] = invocation.principal
        message.set_content(args.body)
        self.outbox.mkdir(parents=True, exist_ok=True)
        already = _write_once(target, bytes(message))
        return _sent(target, already=already)


def _parse_args(invocation: ToolInvocation) -> SendEmailArgs:
    try:
        return SendEmailArgs.model_validate(invocation.call.arguments)
    except ValidationError as err:
        raise ApplicationError(
            f"send_email arguments invalid: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}",
            type="InvalidToolArguments",
            non_retryable=True,
        ) from None


def _write_once(target: Path, data: bytes) -> bool:
    """Create `target` with `data` atomically; True if it already existed."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".sending-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return True
        return False
    finally:
        os.unlink(tmp)


def _sent(target: Path, *, already: bool) -> ToolResult:
    note = " (already delivered by an earlier attempt)" if already else ""
    return ToolResult(tool="send_email", ok=True, output=f"delivered to {target}{note}")
