"""send_email: one message to one recipient, sent by the privileged worker.

The activity is `activities.tools.email.OutboxActivities.send_email`.
"""

from __future__ import annotations

from pydantic import Field

from steward.models import RiskClass, Strict, ToolSpec
from steward.tools.entry import Tool


class SendEmailArgs(Strict):
    """Arguments of the send_email tool."""

    to: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=100_000)


SEND_EMAIL = Tool(
    spec=ToolSpec(
        name="send_email",
        description="Send an email to one recipient (to, subject, body).",
        risk=RiskClass.SEND,
        scopes=["email:send"],
        privileged=True,
        # An approver may fix the draft, never redirect it.
        locked=["to"],
        # An approved reply outlives a mail server's outage of hours.
        retry_seconds=6 * 3600,
    ),
    arguments=SendEmailArgs,
    provider="outbox",
    would=lambda args: f'sent "{args.subject}" to {args.to} ({len(args.body)} characters)',
)
