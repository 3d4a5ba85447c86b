"""`steward codec-server` as a real process on a free loopback port, for a test's block."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
UI_ORIGIN = "http://127.0.0.1:8233"
"""The embedded dev server's UI, the origin the tests' codec servers allow."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def codec_server(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `steward codec-server ARGS` (the tests' key ring unless `env` says otherwise) and
    yield its URL once it answers; stop it afterwards.
    """
    port = free_port()
    argv = [sys.executable, "-m", "steward.cli", "codec-server", "--port", str(port), *args]
    process = subprocess.Popen(
        argv,
        env=os.environ | (env or {}),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                assert process.stderr is not None
                raise AssertionError(f"codec server exited: {process.stderr.read().decode()}")
            try:
                httpx.options(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
