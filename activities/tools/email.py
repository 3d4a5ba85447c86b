"""Email from Steward: the send_email tool and approval notices, each delivered once per
call as far as the way out allows.

Without `smtp:` in steward.yaml, a message is a `.eml` file in the local outbox named by
the call's idempotency key. It is written to a temporary file and then hard-linked into
place, which either creates the message or finds it already there: a retried or re-run
activity never delivers twice.

With `smtp:`, the privileged worker hands the message to that server (activities/tools/
smtp.py). SMTP has no idempotent submit, so the activity keeps a record: before sending it
looks for a copy of the message under `outbox/sent/`, named by the idempotency key, and
sends nothing if one is there; after the server accepts the message it creates that copy
atomically (temporary file, then hard link). One window remains: if the worker dies, or
Temporal times the attempt out, after the server accepted the message and before the
record exists, the retry sends it again. Both copies carry the same Message-ID, derived
from the idempotency key, so a receiver or mail store that deduplicates can drop the repeat.

Approval notices always go to the outbox, and can also be posted to a webhook with the
idempotency key in a header so the receiver can drop a repeat.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path

import httpx
from temporalio import activity

from activities.tools.arguments import parse_arguments
from activities.tools.smtp import SmtpTransport
from steward import approval_view
from steward.errors import INVALID_TOOL_ARGUMENTS, WEBHOOK_ERROR, application_error
from steward.models import ApprovalNotice, ToolInvocation, ToolResult
from steward.tools.email import SendEmailArgs

WEBHOOK_TIMEOUT_SECONDS = 10.0
SENT_RECORDS = "sent"
"""Subdirectory of the outbox holding a copy of each message sent through SMTP."""

log = logging.getLogger(__name__)


class OutboxActivities:
    """Email delivery (the local outbox, or an SMTP server when given), and approval notices."""

    def __init__(
        self,
        outbox: Path,
        sender: str,
        *,
        contacts: Mapping[str, str] | None = None,
        webhook_url: str | None = None,
        smtp: SmtpTransport | None = None,
        ui_url: str | None = None,
        namespace: str = "default",
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.contacts = dict(contacts or {})
        self.webhook_url = webhook_url
        self.smtp = smtp
        self.ui_url = ui_url
        self.namespace = namespace

    def message_path(self, idempotency_key: str) -> Path:
        """Where the message for this key lands in the outbox."""
        return self.outbox / f"{idempotency_key.replace(':', '_')}.eml"

    def sent_record_path(self, idempotency_key: str) -> Path:
        """Where the record of a message sent through SMTP is kept."""
        return self.outbox / SENT_RECORDS / f"{idempotency_key.replace(':', '_')}.eml"

    @activity.defn(name="send_email")
    async def send_email(self, invocation: ToolInvocation) -> ToolResult:
        """Deliver the message once; report where it went and whether it had already gone."""
        args = parse_arguments(SendEmailArgs, invocation)
        if self.smtp is not None:
            return await self._send_smtp(self.smtp, invocation, args)
        target = self.message_path(invocation.idempotency_key)
        if target.exists():
            return _sent(target, already=True)
        message = self._compose(invocation, args)
        self.outbox.mkdir(parents=True, exist_ok=True)
        already = _write_once(target, bytes(message))
        return _sent(target, already=already)

    async def _send_smtp(
        self, smtp: SmtpTransport, invocation: ToolInvocation, args: SendEmailArgs
    ) -> ToolResult:
        record = self.sent_record_path(invocation.idempotency_key)
        message_id = message_id_for(invocation.idempotency_key, self.sender)
        where = f"sent to {args.to} through {smtp.address}, Message-ID {message_id}"
        if record.exists():
            return ToolResult(
                tool="send_email", ok=True, output=f"{where} (already sent by an earlier attempt)"
            )
        message = self._compose(invocation, args)
        if activity.info().attempt > 1:
            log.warning(
                "send_email %s: attempt %d and no record of a send; an earlier attempt may "
                "have reached the server, so this copy may repeat it (same Message-ID)",
                invocation.idempotency_key,
                activity.info().attempt,
            )
        await smtp.send(message, parseaddr(self.sender)[1] or self.sender, [args.to])
        record.parent.mkdir(parents=True, exist_ok=True)
        _write_once(record, bytes(message))
        return ToolResult(tool="send_email", ok=True, output=where)

    def _compose(self, invocation: ToolInvocation, args: SendEmailArgs) -> EmailMessage:
        message = EmailMessage()
        try:
            message["To"] = args.to
            message["Subject"] = args.subject
        except ValueError as err:  # e.g. a line break in the subject: header injection
            raise application_error(
                INVALID_TOOL_ARGUMENTS, f"send_email arguments invalid: {err}"
            ) from None
        message["From"] = self.sender
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id_for(invocation.idempotency_key, self.sender)
        message["X-Steward-Agent"] = invocation.agent
        message["X-Steward-Requested-By"] = invocation.principal
        message.set_content(args.body)
        return message

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
        links = ""
        if self.ui_url:
            run = approval_view.ui_run_url(self.ui_url, self.namespace, request.workflow_id)
            mine = approval_view.ui_workflows_url(
                self.ui_url, self.namespace, approval_view.waiting_for(None)
            )
            links = (
                f"\nIn the Temporal UI: {run}\n"
                f"(its current details show the call and the decide JSON to send)\n"
                f"Everything waiting for approval: {mine}\n"
            )
        flagged = "".join(
            f"FLAGGED by a guardrail: {approval_view.visible(flag)}\n" for flag in request.flags
        )
        message.set_content(
            f"{flagged}{approval_view.visible(request.requester)} asked for {request.tool}; "
            f"{needs} must decide by {request.deadline:%Y-%m-%d %H:%M} UTC"
            f"{' (escalated to you)' if request.escalated else ''}.\n\n"
            f"Arguments (digest {request.args_digest}):\n"
            + "\n".join(approval_view.argument_lines(request.arguments))
            + "\n\n"
            f"Approve: {notice.approve_command}  (--edit to change it first)\n"
            f"Reject:  steward reject {request.id} --as NAME --reason TEXT\n"
            f"{links}"
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
                raise application_error(
                    WEBHOOK_ERROR, f"approval webhook unreachable: {type(err).__name__}"
                ) from None
        if response.status_code >= 400:
            raise application_error(
                WEBHOOK_ERROR,
                f"approval webhook answered HTTP {response.status_code}",
                permanent=400 <= response.status_code < 500 and response.status_code != 429,
            )


def message_id_for(idempotency_key: str, sender: str) -> str:
    """The Message-ID of the message sent for this key: the same on every attempt."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "steward.local"
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", idempotency_key)[:100]
    unique = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
    return f"<{readable}.{unique}@{domain}>"


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
