"""Who is at the inbox: one-time sign-in links, the session cookie, and CSRF tokens.

A sign-in link carries a token bound to one approver, signed with the inbox's secret,
valid for minutes and good once: the links used are remembered until they expire, in a
file beside the secret (owner-only, locked while read and written), so a restarted inbox,
or a second one sharing the secret, refuses them too. Opening it gives a session cookie
signed the same way; every form carries a
CSRF token derived from the session, so a page elsewhere cannot post a decision in the
approver's name. Behind a reverse proxy that signs people in itself, the inbox may instead
trust a header naming them (off unless asked for).

Signatures are HMAC-SHA256 from the standard library, one key per purpose derived from the
secret, so a session cookie can never pass as a sign-in link or the other way round. The
secret comes from a file readable by its owner only, which `steward inbox` and `steward
inbox link` share (made on first use).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

SECRET_FILE_VARIABLE: Final = "STEWARD_INBOX_SECRET_FILE"  # noqa: S105 (a name, not a secret)
DEFAULT_SECRET_FILE: Final = Path("~/.config/steward/inbox-secret")
LINK_SECONDS: Final = 15 * 60
SESSION_SECONDS: Final = 12 * 3600
SESSION_COOKIE: Final = "steward_inbox"


class SignInError(Exception):
    """A sign-in link or session that does not hold; the message says why, for a person."""


def secret_path(environ: dict[str, str] | None = None) -> Path:
    """The inbox's secret file: $STEWARD_INBOX_SECRET_FILE, else one in ~/.config."""
    env = os.environ if environ is None else environ
    return Path(env.get(SECRET_FILE_VARIABLE) or DEFAULT_SECRET_FILE).expanduser()


def load_secret(path: Path | None = None) -> bytes:
    """The secret in `path`, made (owner-only) when there is none yet."""
    chosen = path or secret_path()
    if not chosen.exists():
        chosen.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(chosen, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
    text = chosen.read_text().strip()
    if len(text) < 32:
        raise SignInError(f"{chosen}: the inbox secret is too short (delete it to make one)")
    return text.encode()


def approvers_of(groups: dict[str, list[str]]) -> set[str]:
    """Everyone in some approvers group of steward.yaml: who may sign in."""
    return {name for members in groups.values() for name in members}


def used_links_path(secret: Path) -> Path:
    """Where the sign-in links used so far are kept: beside the secret they were signed with."""
    return secret.with_name(secret.name + ".used")


@dataclass
class Signer:
    """Signs and checks the inbox's tokens with keys derived from one secret.

    With `used_file`, the links used are kept there (see the module doc); without, in
    this object only (tests, one short-lived process).
    """

    secret: bytes
    used: dict[str, float] = field(default_factory=dict)
    used_file: Path | None = None

    def link_token(self, approver: str, seconds: int = LINK_SECONDS) -> str:
        """A single-use sign-in token for `approver`, valid for `seconds`."""
        claims = {"sub": approver, "exp": time.time() + seconds, "once": secrets.token_hex(16)}
        return self._sign("link", claims)

    def redeem(self, token: str) -> str:
        """The approver a sign-in token names, marking it used; SignInError if it does not
        hold (forged, expired or used already).
        """
        claims = self._open("link", token, "sign-in link")
        once = str(claims.get("once", ""))
        if not once:
            raise SignInError("this sign-in link was used already: ask for a new one")
        if self.used_file is None:
            self.used = _spend(self.used, once, float(claims["exp"]))
            return str(claims["sub"])
        descriptor = os.open(self.used_file, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "r+", encoding="utf-8") as kept:
            fcntl.flock(kept, fcntl.LOCK_EX)  # two requests, or two inboxes, at once
            try:
                used = {str(k): float(v) for k, v in json.loads(kept.read() or "{}").items()}
            except (ValueError, AttributeError):
                used = {}  # unreadable: start again (expired entries are all it can lose)
            used = _spend(used, once, float(claims["exp"]))
            kept.seek(0)
            kept.truncate()
            kept.write(json.dumps(used))
        return str(claims["sub"])

    def session(self, approver: str) -> str:
        """A session cookie's value for `approver`."""
        claims = {
            "sub": approver,
            "exp": time.time() + SESSION_SECONDS,
            "sid": secrets.token_hex(16),
        }
        return self._sign("session", claims)

    def session_owner(self, cookie: str) -> tuple[str, str]:
        """The approver and session id of a session cookie; SignInError if it does not hold."""
        claims = self._open("session", cookie, "session")
        return str(claims["sub"]), str(claims["sid"])

    def csrf(self, binding: str) -> str:
        """The CSRF token of a session (or of a name a trusted proxy vouches for)."""
        return hmac.new(self._key("csrf"), binding.encode(), hashlib.sha256).hexdigest()

    def csrf_holds(self, binding: str, given: str) -> bool:
        """Whether `given` is the CSRF token of `binding`."""
        return hmac.compare_digest(self.csrf(binding), given)

    def _key(self, purpose: str) -> bytes:
        return hmac.new(self.secret, purpose.encode(), hashlib.sha256).digest()

    def _sign(self, purpose: str, claims: dict[str, object]) -> str:
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        mac = hmac.new(self._key(purpose), body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def _open(self, purpose: str, token: str, what: str) -> dict[str, Any]:
        body, _, mac = token.partition(".")
        expected = hmac.new(self._key(purpose), body.encode(), hashlib.sha256).digest()
        if not mac or not hmac.compare_digest(_b64(expected), mac):
            raise SignInError(f"this {what} is not valid: ask for a new one")
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            raise SignInError(f"this {what} is not valid: ask for a new one") from None
        if (
            not isinstance(claims, dict)
            or not isinstance(claims.get("sub"), str)
            or not isinstance(claims.get("exp"), int | float)
        ):
            raise SignInError(f"this {what} is not valid: ask for a new one")
        if claims["exp"] <= time.time():
            raise SignInError(f"this {what} has expired: ask for a new one")
        return claims


def _spend(used: dict[str, float], once: str, until: float) -> dict[str, float]:
    """`used` without expired links and with `once` added; SignInError if it was in it."""
    now = time.time()
    kept = {link: expires for link, expires in used.items() if expires > now}
    if once in kept:
        raise SignInError("this sign-in link was used already: ask for a new one")
    kept[once] = until
    return kept


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
