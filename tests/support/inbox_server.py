"""`steward inbox` as a real process on a free loopback port, and its sign-in links."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.codec_server import free_port

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 90
"""A loaded machine takes a while to import the CLI and connect to Temporal."""


@contextmanager
def inbox_server(temporal_address: str, config: Path, secret_file: Path) -> Iterator[str]:
    """Run `steward inbox` against `temporal_address` (the tests' key ring) and yield its
    URL once it answers; stop it afterwards.
    """
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "steward.cli",
        "inbox",
        "--port",
        str(port),
        "--config",
        str(config),
        "--secret-file",
        str(secret_file),
    ]
    process = subprocess.Popen(
        argv,
        env=os.environ | {"TEMPORAL_ADDRESS": temporal_address},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                assert process.stderr is not None
                raise AssertionError(f"steward inbox exited: {process.stderr.read().decode()}")
            try:
                if httpx.get(f"{url}/static/inbox.css", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"steward inbox did not answer within {START_SECONDS} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def sign_in_link(url: str, approver: str, config: Path, secret_file: Path) -> str:
    """What `steward inbox link APPROVER` prints for the inbox at `url`."""
    argv = [sys.executable, "-m", "steward.cli", "inbox", "link", approver, "--url", url]
    argv += ["--config", str(config), "--secret-file", str(secret_file)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
