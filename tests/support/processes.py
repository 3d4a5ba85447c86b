"""A child process a test kills like a crash (SIGKILL) or stops like an operator."""

from __future__ import annotations

import signal
import subprocess


class ChildProcess:
    """Holds one subprocess; subclasses start it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL, as a crash would, and reap it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 15 s."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
