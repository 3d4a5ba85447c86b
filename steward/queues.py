"""Task queue names. Privileged tools run on their own queue, served by their own worker,
so credentials for sending or publishing live only in that worker's process.
"""

from __future__ import annotations

DEFAULT = "steward"


def privileged(queue: str) -> str:
    """The privileged queue paired with a default queue."""
    return f"{queue}-privileged"
