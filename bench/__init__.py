"""Benchmarks: `make bench` runs `python -m bench`.

Payloads are encrypted as they are in production. Unless the environment already holds a
key ring (STEWARD_CODEC_KEYS or STEWARD_CODEC_KEYS_FILE), a bench process makes a
throwaway one for its run, in its environment, so the worker processes it starts share it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steward.plugin import StewardPlugin

# Imported where used, not here: the peer's workflow (bench/peer.py) is imported inside
# Temporal's workflow sandbox, which imports this package first, and the codec's
# cryptography extension cannot be loaded a second time there.


def share_key_ring() -> None:
    """Put a throwaway key ring in this process's environment, unless it holds one."""
    from steward import codec

    if codec.enabled() and not codec.configured_elsewhere():
        os.environ[codec.KEYS_VARIABLE] = codec.key_line("bench")


def steward_plugin() -> StewardPlugin:
    """Steward's plugin with the codec every process of this bench run shares."""
    from steward import codec
    from steward.plugin import StewardPlugin

    share_key_ring()
    return StewardPlugin(codec.codec_from_environment())
