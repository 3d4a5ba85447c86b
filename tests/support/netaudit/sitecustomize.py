"""Record every network connection and name lookup this Python process makes.

Put this directory first on PYTHONPATH and `STEWARD_NET_AUDIT` to a file: Python imports
`sitecustomize` at start-up, before any of the program's own code, and the audit hook
appends one JSON line per `socket.connect` (with its address) and per
`socket.getaddrinfo` (with the host it resolves). Unix-domain sockets are left out. The
test reading the file decides what counts as leaving the machine.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

_LOG = os.environ.get("STEWARD_NET_AUDIT")


def _record(kind: str, host: Any, port: Any) -> None:
    if _LOG is None:
        return
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    line = json.dumps({"kind": kind, "host": host, "port": port, "pid": os.getpid()}) + "\n"
    # os.open/os.write: no Python-level buffering shared with the program, and safe from
    # any thread; the "open" audit event they raise is not one this hook records.
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address:
            _record("connect", address[0], address[1] if len(address) > 1 else None)
    elif event == "socket.getaddrinfo":
        _record("resolve", args[0], args[1])


if _LOG:
    sys.addaudithook(_hook)
