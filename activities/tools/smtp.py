"""Delivery of one message to an SMTP server, with failures classified for Temporal.

send_email hands a finished message here when steward.yaml configures `smtp:`. The server's
credentials are read from the worker's environment, by the variable names in the config,
at the moment of sending: never from the config's values, never from tool arguments, and
never repeated in an error (everything an activity raises is stored in history). smtplib
runs in a thread, since there is no async SMTP client among Steward's dependencies.

Classification: a refused login, a missing credential, a server that lacks STARTTLS or
AUTH, an untrusted certificate and a permanent (5xx) rejection are non-retryable, each
with its own `type`; transient (4xx) answers, dropped connections and timeouts are
retryable, and Temporal's retry policy decides when to try again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from temporalio.exceptions import ApplicationError

from steward.config import SmtpConfig
from steward.errors import (
    MISSING_CREDENTIAL,
    SMTP_AUTH_FAILED,
    SMTP_NOT_SUPPORTED,
    SMTP_REJECTED,
    SMTP_TEMPORARY_FAILURE,
    SMTP_TLS_ERROR,
    SMTP_UNAVAILABLE,
    application_error,
)

MAX_SERVER_TEXT_CHARS = 200
"""How much of a server's answer an error message keeps."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Login:
    user: str
    password: str


class SmtpTransport:
    """Sends finished messages through one SMTP server."""

    def __init__(
        self,
        settings: SmtpConfig,
        environ: Mapping[str, str] | None = None,
        *,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        # Read when sending, not now: the default worker builds this too and has no
        # credentials, and a rotated secret is picked up without a restart.
        self._environ = os.environ if environ is None else environ
        self._tls_context = tls_context

    @property
    def address(self) -> str:
        """host:port of the server, for results and errors."""
        return f"{self.settings.host}:{self.settings.port}"

    async def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        """Hand `message` to the server; raise a classified ApplicationError if it is not taken."""
        login = self._login()
        try:
            await asyncio.to_thread(self._send, message, sender, recipients, login)
        except smtplib.SMTPException as err:
            raise self._classified(err, login) from None
        except ssl.SSLCertVerificationError as err:
            raise application_error(
                SMTP_TLS_ERROR,
                f"SMTP server {self.address}: its TLS certificate is not trusted "
                f"({err.verify_message})",
            ) from None
        except OSError as err:
            raise application_error(
                SMTP_UNAVAILABLE, f"SMTP server {self.address} unreachable: {type(err).__name__}"
            ) from None

    def _login(self) -> _Login | None:
        user_env, password_env = self.settings.username_env, self.settings.password_env
        if user_env is None or password_env is None:
            return None
        missing = [name for name in (user_env, password_env) if not self._environ.get(name)]
        if missing:
            raise application_error(
                MISSING_CREDENTIAL,
                f"environment variable(s) {', '.join(missing)} not set on this worker; "
                f"the SMTP server {self.address} needs them to log in",
            )
        return _Login(self._environ[user_env], self._environ[password_env])

    def _send(
        self, message: EmailMessage, sender: str, recipients: list[str], login: _Login | None
    ) -> None:
        settings = self.settings
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        try:
            if settings.starttls:
                smtp.starttls(context=self._tls_context or ssl.create_default_context())
            if login is not None:
                smtp.login(login.user, login.password)
            smtp.send_message(message, from_addr=sender, to_addrs=recipients)
        finally:
            _close(smtp)

    def _classified(self, err: smtplib.SMTPException, login: _Login | None) -> ApplicationError:
        where = f"SMTP server {self.address}"
        if isinstance(err, smtplib.SMTPAuthenticationError):
            # The server's text is left out: some echo what they were sent.
            return application_error(
                SMTP_AUTH_FAILED,
                f"{where} refused the login from {self.settings.username_env}/"
                f"{self.settings.password_env} ({err.smtp_code})",
            )
        if isinstance(err, smtplib.SMTPNotSupportedError):
            return application_error(SMTP_NOT_SUPPORTED, f"{where}: {err}")
        code: int
        text: bytes | str
        if isinstance(err, smtplib.SMTPRecipientsRefused):
            refusals = list(err.recipients.values())
            code, text = refusals[0] if refusals else (0, b"")
        elif isinstance(err, smtplib.SMTPResponseException):
            code, text = err.smtp_code, err.smtp_error
        else:  # disconnected mid-conversation, or no answer at all
            return application_error(SMTP_UNAVAILABLE, f"{where}: {type(err).__name__}")
        answer = _text(text, login)
        if 500 <= code < 600:
            return application_error(
                SMTP_REJECTED, f"{where} rejected the message for good: {code} {answer}"
            )
        return application_error(
            SMTP_TEMPORARY_FAILURE, f"{where} deferred the message: {code} {answer}"
        )


def _close(smtp: smtplib.SMTP) -> None:
    """End the session; a failed QUIT only closes the connection.

    Once the message is accepted, failing the send over QUIT would make the retry deliver
    it twice.
    """
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError) as err:
        log.debug("SMTP QUIT failed (%s); closing the connection", type(err).__name__)
        smtp.close()


def _text(raw: bytes | str, login: _Login | None) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if login is not None:
        text = text.replace(login.password, "***")
    return " ".join(text.split())[:MAX_SERVER_TEXT_CHARS]
