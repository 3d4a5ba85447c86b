"""Pure parsing of a support ticket: RFC 822-style headers (From, Subject) and a body.

Used by the CLI to refuse a bad ticket before a run starts, and by the support playbook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import HeaderParser
from email.utils import parseaddr

_HEADER_LINE = re.compile(r"^[A-Za-z-]+:")


@dataclass(frozen=True)
class Ticket:
    """A customer's message."""

    sender: str
    name: str
    subject: str
    body: str


def parse_ticket(text: str) -> Ticket:
    """Parse `From:` and `Subject:` headers, a blank line, then the body."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    if not all(_HEADER_LINE.match(line) or line[:1] in " \t" for line in head.splitlines()):
        raise ValueError("ticket must start with headers (From:, Subject:), a blank line, a body")
    headers = HeaderParser().parsestr(head)
    name, sender = parseaddr(headers.get("From", ""))
    if "@" not in sender:
        raise ValueError("ticket has no valid From: address to reply to")
    subject = " ".join(headers.get("Subject", "").split()) or "(no subject)"
    if not body.strip():
        raise ValueError("ticket body is empty")
    first_name = name.split()[0] if name.strip() else "customer"
    return Ticket(sender=sender, name=first_name, subject=subject, body=body.strip())
