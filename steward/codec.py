"""Payload encryption: customer text reaches Temporal only as AES-256-GCM ciphertext.

Every ticket, draft, tool argument, model answer and decision a run handles is a payload,
and Temporal keeps payloads in its history, in its database and in every export. The
`EncryptionCodec` here encrypts each payload on its way out of a client or worker and
decrypts it on the way back in, so the server stores and shows ciphertext only.

Keys form a `KeyRing`: each key has an id, the last key in the ring encrypts, and every
key in the ring decrypts. An encrypted payload carries the id of its key in its metadata
(`encoding: binary/encrypted`, `encryption-key-id: ID`; the data is a 12-byte nonce and the
AES-GCM ciphertext of the whole original payload, the layout of Temporal's encryption
samples). So a key is rotated by adding a new one at the end: old runs still decode, new
payloads use the new key. A payload without that encoding passes through decoding as it
is (histories recorded before the codec was on, a plain JSON signal sent without it). A
payload whose key the ring lacks, or whose ciphertext does not authenticate, fails with an
error naming the key id; it never decodes into something else.

The ring comes from the environment, once per process (`keyring_from_environment`):
$STEWARD_CODEC_KEYS (the ring's text), else the file $STEWARD_CODEC_KEYS_FILE names, else
the dev key file (`codec-keys` in the state directory) that `steward dev up` creates.
`STEWARD_CODEC=off` turns encryption off, for a deployment that wants plaintext payloads.
The ring's text is one `KEY_ID:BASE64_KEY` entry per line (commas and spaces separate
entries too, for one-line environment variables), oldest first; `#` starts a comment line.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from steward import devserver
from steward.errors import RequestError

ENCODING: Final = b"binary/encrypted"
"""The `encoding` metadata of an encrypted payload."""
KEY_ID_METADATA: Final = "encryption-key-id"
"""The metadata key naming the key a payload was encrypted with."""

SWITCH_VARIABLE: Final = "STEWARD_CODEC"
KEYS_VARIABLE: Final = "STEWARD_CODEC_KEYS"
KEYS_FILE_VARIABLE: Final = "STEWARD_CODEC_KEYS_FILE"
DEV_KEYS_FILE: Final = "codec-keys"
"""The dev key file, in the state directory ($STEWARD_HOME or ./.steward)."""

KEY_BYTES: Final = 32
"""AES-256."""
NONCE_BYTES: Final = 12

_KEY_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SEPARATORS: Final = re.compile(r"[\s,]+")
_OFF: Final = frozenset({"off", "0", "false", "no"})
_ON: Final = frozenset({"", "on", "1", "true", "yes"})
_FILE_HEADER: Final = (
    "# Steward payload encryption keys (AES-256-GCM): one KEY_ID:BASE64_KEY per line.\n"
    "# The last key encrypts; every key decrypts. Keep this file secret.\n"
)


class CodecError(RequestError):
    """A key ring could not be loaded, or a payload could not be decrypted; says why."""


class KeyRingError(CodecError):
    """The key ring's text or its source is wrong, or no key ring is configured."""


class MissingKey(CodecError):
    """A payload (or blob) was encrypted with a key the ring does not hold."""

    def __init__(self, message: str, key_ids: Iterable[str]) -> None:
        super().__init__(message)
        self.key_ids = tuple(sorted(set(key_ids)))


class KeyRing:
    """Named AES-256 keys, oldest first: the last encrypts, all of them decrypt."""

    def __init__(self, keys: Sequence[tuple[str, bytes]], source: str = "the key ring") -> None:
        """A ring of `(id, 32-byte key)` pairs; `source` names where it came from, for errors."""
        if not keys:
            raise KeyRingError(f"{source} holds no key")
        self.source = source
        self._ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys:
            if not _KEY_ID.fullmatch(key_id):
                raise KeyRingError(f"{source}: bad key id {key_id!r} ({_ID_RULE})")
            if key_id in self._ciphers:
                raise KeyRingError(f"{source}: key id {key_id!r} appears twice")
            if len(key) != KEY_BYTES:
                raise KeyRingError(
                    f"{source}: key {key_id!r} is {len(key)} bytes; expected {KEY_BYTES}"
                )
            self._ciphers[key_id] = AESGCM(key)
        self.ids: tuple[str, ...] = tuple(self._ciphers)

    @property
    def newest(self) -> str:
        """The id of the key that encrypts."""
        return self.ids[-1]

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._ciphers

    def encrypt(self, data: bytes, associated: bytes = b"") -> tuple[str, bytes]:
        """`data` sealed with the newest key: its id, and the nonce followed by ciphertext."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return self.newest, nonce + self._ciphers[self.newest].encrypt(nonce, data, associated)

    def decrypt(self, key_id: str, sealed: bytes, associated: bytes = b"", what: str = "") -> bytes:
        """What `encrypt` sealed with key `key_id`; MissingKey or CodecError naming the key."""
        what = what or "a payload"
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise MissingKey(self.missing_message(what, [key_id]), [key_id])
        try:
            return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
        except InvalidTag:
            raise CodecError(
                f"{what} encrypted with key {key_id!r} does not decrypt with the key of that "
                f"id in {self.source}: it was damaged, or encrypted with another key of the "
                "same id"
            ) from None

    def missing_message(self, what: str, key_ids: Iterable[str]) -> str:
        """The error for `what`, encrypted with keys this ring lacks."""
        names = ", ".join(repr(key_id) for key_id in sorted(set(key_ids)))
        return (
            f"{what} is encrypted with key {names}, which is not in {self.source} (it holds "
            f"{', '.join(self.ids)}). Add the missing key to the ring ({KEYS_VARIABLE} or "
            f"{KEYS_FILE_VARIABLE}) to read it."
        )

    @classmethod
    def parse(cls, text: str, source: str) -> KeyRing:
        """A ring from its text: `KEY_ID:BASE64_KEY` entries, oldest first."""
        keys: list[tuple[str, bytes]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip().startswith("#"):
                continue
            for entry in _SEPARATORS.split(line.strip()):
                if entry:
                    keys.append(_entry(entry, f"{source}, line {number}"))
        return cls(keys, source)


_ID_RULE: Final = (
    "expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)


def _entry(entry: str, where: str) -> tuple[str, bytes]:
    key_id, colon, encoded = entry.partition(":")
    if not colon:
        raise KeyRingError(f"{where}: expected KEY_ID:BASE64_KEY, got an entry without ':'")
    if not _KEY_ID.fullmatch(key_id):
        raise KeyRingError(f"{where}: bad key id {key_id!r} ({_ID_RULE})")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"{where}: the key of {key_id!r} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyRingError(
            f"{where}: the key of {key_id!r} is {len(key)} bytes; expected {KEY_BYTES} (AES-256)"
        )
    return key_id, key


def key_line(key_id: str | None = None) -> str:
    """A new random key as one line of a ring's text (`steward keys codec-new`)."""
    key_id = key_id or f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"
    if not _KEY_ID.fullmatch(key_id):
        raise KeyRingError(f"bad key id {key_id!r} ({_ID_RULE})")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM for every payload, with the key ring's newest key; see the module doc."""

    def __init__(self, ring: KeyRing) -> None:
        """A codec encrypting with `ring.newest` and decrypting with any key of `ring`."""
        self.ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload encrypted; one already encrypted is left as it is."""
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each encrypted payload decrypted; others (plaintext) pass through unchanged."""
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted."""
        if payload.metadata.get("encoding") == ENCODING:
            return payload
        key_id, sealed = self.ring.encrypt(payload.SerializeToString())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}, data=sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted if it is encrypted."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        return Payload.FromString(self.ring.decrypt(key_id, payload.data))


def encrypted_key_id(payload: Payload) -> str | None:
    """The key id of an encrypted payload, None for a plaintext one."""
    if payload.metadata.get("encoding") != ENCODING:
        return None
    return payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")


# --- where the ring comes from -----------------------------------------------------------


def keyring_from_environment() -> KeyRing | None:
    """The ring the environment configures, or None when `STEWARD_CODEC=off`.

    KeyRingError when none is configured or what is configured is wrong.
    """
    if not enabled():
        return None
    text, path = os.environ.get(KEYS_VARIABLE, ""), os.environ.get(KEYS_FILE_VARIABLE, "")
    if text.strip() and path:
        raise KeyRingError(f"both {KEYS_VARIABLE} and {KEYS_FILE_VARIABLE} are set: set one")
    if text.strip():
        return KeyRing.parse(text, KEYS_VARIABLE)
    if path:
        return read_keyring(Path(path), f"{KEYS_FILE_VARIABLE} ({path})")
    dev = dev_keys_path()
    if dev.is_file():
        return read_keyring(dev, f"the dev key file {dev}")
    raise KeyRingError(
        f"no payload encryption keys: set {KEYS_VARIABLE} (or {KEYS_FILE_VARIABLE}) to the key "
        f"ring the workers use, or run `steward dev up` to create a dev key file in {dev}. "
        f"{SWITCH_VARIABLE}=off sends payloads unencrypted."
    )


def codec_from_environment() -> EncryptionCodec | None:
    """The codec for the environment's ring; None when `STEWARD_CODEC=off`."""
    ring = keyring_from_environment()
    return EncryptionCodec(ring) if ring is not None else None


def enabled() -> bool:
    """Whether payloads are encrypted: yes unless `STEWARD_CODEC=off`."""
    switch = os.environ.get(SWITCH_VARIABLE, "").strip().lower()
    if switch in _OFF:
        return False
    if switch in _ON:
        return True
    raise KeyRingError(f"{SWITCH_VARIABLE}={switch!r}: expected on or off")


def read_keyring(path: Path, source: str) -> KeyRing:
    """The ring in the file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise KeyRingError(f"cannot read {source}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise KeyRingError(f"{source} is not a text file") from None
    return KeyRing.parse(text, source)


def dev_keys_path() -> Path:
    """Where the dev key file is: `codec-keys` in the state directory."""
    return devserver.state_path() / DEV_KEYS_FILE


def configured_elsewhere() -> bool:
    """Whether the ring comes from the environment rather than the dev key file."""
    return bool(os.environ.get(KEYS_VARIABLE, "").strip() or os.environ.get(KEYS_FILE_VARIABLE))


def ensure_dev_keys(state: Path) -> tuple[Path, bool]:
    """The dev key file in `state`, created (mode 0600, one new key) if missing.

    Returns its path and whether it was created now.
    """
    path = state / DEV_KEYS_FILE
    state.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        text = _FILE_HEADER + key_line(f"dev-{datetime.now(UTC):%Y%m%d}") + "\n"
        try:
            _write_new(path, text, replace=False)
            return path, True
        except FileExistsError:
            pass  # another `steward dev up` made it first: use theirs
    read_keyring(path, f"the dev key file {path}")  # a broken one fails here, not later
    return path, False


def append_key(path: Path, line: str) -> None:
    """Add `line` (a new key) at the end of the ring in `path`, creating it (0600) if needed.

    The file must hold a valid ring without that key id, so a mistake never reaches the
    workers as a ring they cannot read.
    """
    key_id, _ = _entry(line, "the new key")
    if path.exists():
        ring = read_keyring(path, str(path))
        if key_id in ring:
            raise KeyRingError(f"{path} already holds a key {key_id!r}")
        existing = path.read_text(encoding="utf-8")
        if existing and not existing.endswith("\n"):
            existing += "\n"
    else:
        existing = _FILE_HEADER
    _write_new(path, existing + line + "\n", replace=True)


def _write_new(path: Path, text: str, *, replace: bool) -> None:
    """Write `text` to `path` (mode 0600) whole: aside first, so no reader sees half a ring.

    Without `replace`, FileExistsError when `path` exists (created or not, atomically).
    """
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        if replace:
            partial.replace(path)
        else:
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
