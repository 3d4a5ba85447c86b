"""send_email through a real SMTP server on loopback: once per call, failures classified,
the password never in a result or an error."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tools.email import OutboxActivities, message_id_for
from activities.tools.smtp import SmtpTransport
from steward.config import SmtpConfig
from steward.models import ToolCall, ToolInvocation, ToolResult
from tests.support.smtp_server import PASSWORD, USER, free_port, self_signed, smtp_server

SENDER = "steward@example.com"
SEND = {"to": "ops@example.com", "subject": "Backup", "body": "The backup finished."}
CREDENTIALS = {"MAIL_USER": USER, "MAIL_PASSWORD": PASSWORD}

# Plain login is what these tests exercise on loopback (config allows it only there).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def invocation(key: str = "wf-1.abcdef0123456789", **arguments: Any) -> ToolInvocation:
    return ToolInvocation(
        call=ToolCall(id="call-1", tool="send_email", arguments=SEND | arguments),
        idempotency_key=key,
        agent="helpdesk",
        principal="dana",
    )


def mailer(
    outbox: Path,
    port: int,
    *,
    login: bool = False,
    starttls: bool = False,
    environ: dict[str, str] | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> OutboxActivities:
    settings = SmtpConfig(
        host="127.0.0.1",
        port=port,
        starttls=starttls,
        username_env="MAIL_USER" if login else None,
        password_env="MAIL_PASSWORD" if login else None,
        timeout_seconds=5,
    )
    transport = SmtpTransport(
        settings, CREDENTIALS if environ is None else environ, tls_context=tls_context
    )
    return OutboxActivities(outbox, SENDER, smtp=transport)


async def send(outbox: OutboxActivities, call: ToolInvocation, *, attempt: int = 1) -> ToolResult:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, attempt=attempt)
    result: ToolResult = await environment.run(outbox.send_email, call)
    return result


async def failure(outbox: OutboxActivities, call: ToolInvocation) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await send(outbox, call)
    return caught.value


def as_history(error: ApplicationError) -> str:
    """The error as Temporal stores it in history (message, details, stack)."""
    stored = Failure()
    converter = DataConverter.default
    converter.failure_converter.to_failure(error, converter.payload_converter, stored)
    return str(stored)


async def test_message_arrives_once_and_a_retry_after_the_record_sends_nothing(
    tmp_path: Path,
) -> None:
    with smtp_server(login=True) as (inbox, port):
        outbox = mailer(tmp_path, port, login=True)
        first = await send(outbox, invocation())
        again = await send(outbox, invocation(), attempt=2)

    assert len(inbox.received) == 1
    (got,) = inbox.received
    assert got.sender == SENDER and got.recipients == ["ops@example.com"]
    assert got.message["Subject"] == "Backup"
    assert got.message["Message-ID"] == message_id_for("wf-1.abcdef0123456789", SENDER)
    assert got.message.get_content().strip() == "The backup finished."
    assert "through 127.0.0.1" in first.output and "earlier attempt" not in first.output
    assert "already sent by an earlier attempt" in again.output
    # the record is kept beside the outbox's own messages, not among them
    assert outbox.sent_record_path("wf-1.abcdef0123456789").is_file()
    assert list(tmp_path.glob("*.eml")) == []
    assert PASSWORD not in first.output + again.output


async def test_a_crash_before_the_record_resends_with_the_same_message_id(tmp_path: Path) -> None:
    # The window the module docstring admits: accepted by the server, record not written.
    with smtp_server() as (inbox, port):
        outbox = mailer(tmp_path, port)
        await send(outbox, invocation())
        outbox.sent_record_path("wf-1.abcdef0123456789").unlink()
        await send(outbox, invocation(), attempt=2)
    first, second = inbox.received
    assert first.message["Message-ID"] == second.message["Message-ID"]


async def test_different_calls_get_different_message_ids(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        outbox = mailer(tmp_path, port)
        await send(outbox, invocation("wf-1.aaaaaaaaaaaaaaaa"))
        await send(outbox, invocation("wf-1.bbbbbbbbbbbbbbbb"))
    assert len({r.message["Message-ID"] for r in inbox.received}) == 2


async def test_a_refused_login_is_not_retryable_and_never_shows_the_password(
    tmp_path: Path,
) -> None:
    wrong = {"MAIL_USER": USER, "MAIL_PASSWORD": PASSWORD + "-wrong"}
    with smtp_server(login=True) as (inbox, port):
        error = await failure(mailer(tmp_path, port, login=True, environ=wrong), invocation())
    assert error.type == "SmtpAuthFailed" and error.non_retryable
    assert "MAIL_USER/MAIL_PASSWORD" in error.message and "535" in error.message
    stored = as_history(error)
    assert PASSWORD not in stored and USER not in stored
    assert inbox.received == []
    assert not (tmp_path / "sent").exists()  # no record: nothing was sent


async def test_a_missing_credential_names_the_variable(tmp_path: Path) -> None:
    with smtp_server(login=True) as (inbox, port):
        error = await failure(
            mailer(tmp_path, port, login=True, environ={"MAIL_USER": USER}), invocation()
        )
    assert error.type == "MissingCredential" and error.non_retryable
    assert "MAIL_PASSWORD" in error.message and USER not in error.message
    assert inbox.received == []


@pytest.mark.parametrize(
    ("reply", "kind", "retryable"),
    [
        ("550 5.1.1 mailbox unavailable", "SmtpRejected", False),
        ("451 4.3.0 try again later", "SmtpTemporaryFailure", True),
    ],
)
async def test_rejections_are_classified_by_code(
    tmp_path: Path, reply: str, kind: str, retryable: bool
) -> None:
    with smtp_server() as (inbox, port):
        inbox.rcpt_reply = reply
        error = await failure(mailer(tmp_path, port), invocation())
    assert error.type == kind and error.non_retryable is not retryable
    assert reply.split()[0] in error.message
    assert not (tmp_path / "sent").exists()


async def test_an_unreachable_server_is_retryable(tmp_path: Path) -> None:
    error = await failure(mailer(tmp_path, free_port()), invocation())
    assert error.type == "SmtpUnavailable" and not error.non_retryable


async def test_starttls_then_login_with_a_trusted_certificate(tmp_path: Path) -> None:
    server_tls, cert = self_signed(tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert))
    with smtp_server(login=True, tls=server_tls) as (inbox, port):
        outbox = mailer(tmp_path, port, login=True, starttls=True, tls_context=trusted)
        await send(outbox, invocation())
        # the system's trust store does not know the test's certificate
        untrusted = mailer(tmp_path / "other", port, login=True, starttls=True)
        error = await failure(untrusted, invocation("wf-2.abcdef0123456789"))
    assert len(inbox.received) == 1
    assert error.type == "SmtpTlsError" and error.non_retryable


async def test_a_server_without_starttls_is_not_retried(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        error = await failure(mailer(tmp_path, port, starttls=True), invocation())
    assert error.type == "SmtpNotSupported" and error.non_retryable
    assert inbox.received == []


async def test_a_line_break_in_the_subject_is_refused_before_sending(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        error = await failure(
            mailer(tmp_path, port), invocation(subject="Hi\nBcc: everyone@example.com")
        )
    assert error.type == "InvalidToolArguments" and error.non_retryable
    assert inbox.received == []
