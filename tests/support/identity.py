"""People with real Ed25519 keys, for tests of signed starts and decisions."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from steward import signing
from steward.config import StewardConfig


def people(directory: Path, *names: str) -> dict[str, Ed25519PrivateKey]:
    """A key pair per name, the private halves written where `steward` looks for them."""
    keys = {}
    for name in names:
        key = signing.new_private_key()
        signing.write_private_key(key, signing.key_path(name, directory))
        keys[name] = key
    return keys


def with_identity(
    config: StewardConfig, keys: dict[str, Ed25519PrivateKey], **identity: object
) -> StewardConfig:
    """`config` with these people's public keys listed, and identity settings applied."""
    data = config.model_dump()
    data["identity"] = {
        "public_keys": {name: signing.public_text(key) for name, key in keys.items()},
        **identity,
    }
    return StewardConfig.model_validate(data)
