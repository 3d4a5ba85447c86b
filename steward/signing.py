"""Signatures that prove who decided and who asked: Ed25519, one key pair per person.

Each person keeps a private key on their own machine (`steward keys new NAME` writes it
and prints the public half); steward.yaml lists public keys only (`identity.public_keys`).
Whoever verifies (a workflow, the privileged worker) can therefore never sign: no worker,
no namespace user, nobody who reads the config can approve as someone else.

A signature covers canonical JSON naming exactly what was decided: the run (its first
execution's run id, kept across continue-as-new), the request, the tool and a SHA-256 of
its arguments recomputed by whoever checks, the approver and the verdict. It cannot be
moved to another run with the same workflow id, another request, other arguments, another
person or the opposite answer. A start signature binds the requester to the workflow id,
the target and the task's SHA-256, with the time it was made.

Pure apart from reading and writing key files; deterministic, so workflows verify too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from steward.errors import RequestError

PUBLIC_PREFIX = "ed25519:"
KEYS_DIR_VARIABLE = "STEWARD_KEYS_DIR"
DEFAULT_KEYS_DIR = Path("~/.config/steward/keys")
KEY_SUFFIX = ".pem"


class SigningKeyError(RequestError, ValueError):
    """A key file or public key is missing or malformed; the message says which and why."""


def text_sha256(text: str) -> str:
    """SHA-256 (hex) of a text, as a start signature binds the task."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# --- keys ----------------------------------------------------------------------------


def new_private_key() -> Ed25519PrivateKey:
    """A fresh key pair (the private half; its public half is `public_text(key)`)."""
    return Ed25519PrivateKey.generate()


def public_text(key: Ed25519PrivateKey) -> str:
    """The public half as steward.yaml writes it: `ed25519:` and 32 bytes in base64."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from its `ed25519:BASE64` text; SigningKeyError saying what is wrong."""
    if not text.startswith(PUBLIC_PREFIX):
        raise SigningKeyError(
            f"expected an Ed25519 public key written {PUBLIC_PREFIX}BASE64 "
            "(`steward keys new NAME` prints one)"
        )
    try:
        raw = base64.b64decode(text[len(PUBLIC_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError("the public key is not valid base64") from None
    if len(raw) != 32:
        raise SigningKeyError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def keys_dir(environ: dict[str, str] | None = None) -> Path:
    """Where `steward keys new` writes private keys: $STEWARD_KEYS_DIR, else ~/.config."""
    env = os.environ if environ is None else environ
    return Path(env.get(KEYS_DIR_VARIABLE) or DEFAULT_KEYS_DIR).expanduser()


def key_path(name: str, directory: Path | None = None) -> Path:
    """The private key file of `name` in the keys directory."""
    return (directory or keys_dir()) / f"{name}{KEY_SUFFIX}"


def write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a private key readable by its owner only; never overwrite one."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path} already exists; a key is never overwritten") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """A private key from a PEM file `steward keys new` wrote; SigningKeyError if it cannot be."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"no key file {path}") from None
    except OSError as err:
        raise SigningKeyError(f"cannot read {path}: {err.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a key of another kind; Steward signs with Ed25519")
    return key


# --- what is signed ------------------------------------------------------------------


def decision_message(
    *,
    workflow_id: str,
    run_id: str,
    request_id: str,
    tool: str,
    arguments_sha256: str,
    approver: str,
    approve: bool,
) -> bytes:
    """The bytes an approval signature covers."""
    return _canonical(
        {
            "kind": "steward-approval",
            "v": 2,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "request_id": request_id,
            "tool": tool,
            "arguments_sha256": arguments_sha256,
            "approver": approver,
            "approve": approve,
        }
    )


def start_message(
    *, workflow_id: str, target: str, principal: str, input_sha256: str, issued_at: datetime
) -> bytes:
    """The bytes a start signature covers."""
    return _canonical(
        {
            "kind": "steward-start",
            "v": 1,
            "workflow_id": workflow_id,
            "target": target,
            "principal": principal,
            "input_sha256": input_sha256,
            "issued_at": issued_at.isoformat(),
        }
    )


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """The signature of `message` (base64url, no padding: 86 characters)."""
    return base64.urlsafe_b64encode(key.sign(message)).decode().rstrip("=")


def verify(public_key: str, message: bytes, signature: str) -> bool:
    """Whether `signature` over `message` was made by the holder of `public_key`."""
    try:
        key = parse_public_key(public_key)
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except (SigningKeyError, binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, message)
    except InvalidSignature:
        return False
    return True


def _canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
