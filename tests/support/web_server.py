"""A small HTTP server on loopback with the pages the http_get tests need.

Every request is logged (path), so tests can prove a refused URL never reached it; the
`/endless` page streams until the client hangs up, so a client that reads past its limit
would never finish; `/big/NAME[/BYTES]` is 100 KB (or BYTES) of text of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = "hello from loopback"


BIG_PAGE_BYTES = 100_000


def big_page(name: str, size: int = BIG_PAGE_BYTES) -> bytes:
    """`size` bytes of text that differ for every `name` (a page of a long conversation)."""
    line = f"page {name}: the quick brown fox jumps over the lazy dog. ".encode()
    return (line * (size // len(line) + 1))[:size]


@dataclass
class Site:
    """What the server saw: request paths, and bytes written to the endless page."""

    port: int = 0
    requests: list[str] = field(default_factory=list)
    endless_bytes_sent: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def web_server() -> Iterator[Site]:
    """Serve on 127.0.0.1 (a free port) for the duration of the block."""
    site = Site()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            site.requests.append(self.path)
            if self.path == "/page":
                self._send(200, PAGE.encode(), "text/plain; charset=utf-8")
            elif self.path == "/redirect-inside":
                self._redirect("/page")
            elif self.path == "/redirect-outside":
                self._redirect("http://elsewhere.invalid/steal")
            elif self.path == "/busy":
                self._send(503, b"busy", "text/plain", {"Retry-After": "7"})
            elif self.path == "/endless":
                self._endless()
            elif self.path.startswith("/big/"):
                name, _, size = self.path.removeprefix("/big/").partition("/")
                body = big_page(name, int(size) if size.isdigit() else BIG_PAGE_BYTES)
                self._send(200, body, "text/plain")
            else:
                self._send(404, b"no such page", "text/plain")

        def _send(
            self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _endless(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 4096
            try:
                for _ in range(100_000):  # 400 MB: far more than any test reads
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    site.endless_bytes_sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped reading and hung up, as it should

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
