"""Email from Steward: the send_email tool and approval notices, delivered to the local
outbox exactly once per call.

Each message is a `.eml` file named by the call's idempotency key. It is written to a
temporary file and then hard-linked into place, which either creates the message or finds
it already there: a retried or re-run activity never delivers twice. Approval notices can
also be posted to a webhook, with the idempotency key in a header so the receiver can
drop a repeat.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import httpx
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from steward.models import ApprovalNotice, SendEmailArgs, ToolInvocation, ToolResult

WEBHOOK_TIMEOUT_SECONDS = 10.0


class OutboxActivities:
    """Email delivery into a directory (the local outbox), and approval notices."""

    def __init__(
        self,
        outbox: Path,
        sender: str,
        *,
        contacts: Mapping[str, str] | None = None,
        webhook_url: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.contacts = dict(contacts or {})
        self.webhook_url = webhook_url

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

    @activity.defn(name="notify_approvers")
    async def notify_approvers(self, notice: ApprovalNotice) -> ToolResult:
        """Tell the approvers what waits for them and the exact command that approves it."""
        request = notice.request
        target = self.message_path(notice.idempotency_key)
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self._address(name) for name in request.approvers)
        message["Subject"] = f"Approval needed: {request.tool} in {request.workflow_id}"
        message["X-Steward-Approval"] = request.id
        needs = f"{request.required} of you" if request.required > 1 else "one of you"
        message.set_content(
            f"{request.requester} asked for {request.tool}; {needs} must decide "
            f"by {request.deadline:%Y-%m-%d %H:%M} UTC"
            f"{' (escalated to you)' if request.escalated else ''}.\n\n"
            f"Arguments (digest {request.args_digest}):\n"
            f"{json.dumps(request.arguments, indent=2, sort_keys=True)}\n\n"
            f"Approve: {notice.approve_command}\n"
            f"Reject:  steward reject {request.id} --as NAME --reason TEXT\n"
        )
        self.outbox.mkdir(parents=True, exist_ok=True)
        _write_once(target, bytes(message))
        if self.webhook_url:
            await self._post(notice)
        return ToolResult(tool="notify_approvers", ok=True, output=f"notified {message['To']}")

    def _address(self, name: str) -> str:
        return self.contacts.get(name) or (name if "@" in name else f"{name}@steward.local")

    async def _post(self, notice: ApprovalNotice) -> None:
        assert self.webhook_url is not None
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
            try:
                response = await client.post(
                    self.webhook_url,
                    json=notice.model_dump(mode="json"),
                    headers={"Idempotency-Key": notice.idempotency_key},
                )
            except httpx.HTTPError as err:
                raise ApplicationError(
                    f"approval webhook unreachable: {type(err).__name__}", type="WebhookError"
                ) from None
        if response.status_code >= 400:
            raise ApplicationError(
                f"approval webhook answered HTTP {response.status_code}",
                type="WebhookError",
                non_retryable=400 <= response.status_code < 500 and response.status_code != 429,
            )


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
