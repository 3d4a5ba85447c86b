"""The http_get tool: fetch a page from a host on the worker's allow list, as bounded text.

A model that can fetch any URL can be steered by injected text into probing internal
services or carrying data out in a query string, so only hosts listed in steward.yaml
(`http.allow_hosts`) are fetched. The URL is checked before any request with the same
parser that makes the request (httpx's), and every redirect is checked again: a redirect
to a host off the list is reported, not followed. Bodies are read only up to
`http.max_bytes` (the result says when it stopped), because the result is stored in
history and read by the model. Hosts are matched by name, not by the address they resolve
to; a listed name that resolves somewhere internal is trusted as listed.

Failures: a refused URL is non-retryable; timeouts, connection failures and 429/502/503/504
answers are retryable (honouring Retry-After), so Temporal's retry policy decides.
Any other status is a result, with its code, for the model to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Final

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.tools.arguments import parse_arguments
from steward.errors import (
    HTTP_UNAVAILABLE,
    TOO_MANY_REDIRECTS,
    URL_NOT_ALLOWED,
    application_error,
)
from steward.models import ToolInvocation, ToolResult
from steward.tools.http_get import HttpGetArgs

MAX_REDIRECTS: Final = 5
TRANSIENT_STATUSES: Final = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER: Final = timedelta(minutes=5)
USER_AGENT: Final = "steward-http-get/1"


class HttpActivities:
    """GET requests to allow-listed hosts."""

    def __init__(
        self,
        allow_hosts: Iterable[str],
        *,
        max_bytes: int,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.allow_hosts = frozenset(host.lower() for host in allow_hosts)
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds
        self._transport = transport
        # Building a TLS context loads the CA bundle: tens of milliseconds of CPU, which a
        # client per call would pay on every fetch. One context serves every call.
        self._tls = httpx.create_ssl_context()

    @activity.defn(name="http_get")
    async def http_get(self, invocation: ToolInvocation) -> ToolResult:
        """Fetch the URL (following allowed redirects) and return status and text."""
        args = parse_arguments(HttpGetArgs, invocation)
        url = checked_url(args.url, self.allow_hosts)
        async with httpx.AsyncClient(
            follow_redirects=False,  # each hop is checked against the allow list here
            timeout=self.timeout_seconds,
            transport=self._transport,
            verify=self._tls,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    async with client.stream("GET", url) as response:
                        if response.is_redirect:
                            target = url.join(response.headers["location"])
                            refusal = url_refusal(target, self.allow_hosts)
                            if refusal is None:
                                url = target
                                continue
                            return self._result(
                                response,
                                b"",
                                truncated=False,
                                note=f"redirect not followed: {refusal}",
                            )
                        _raise_if_transient(response)
                        body, truncated = await _read_capped(response, self.max_bytes)
                        return self._result(response, body, truncated=truncated)
                except httpx.TransportError as err:
                    raise application_error(
                        HTTP_UNAVAILABLE, f"http_get {url.host}: {type(err).__name__}"
                    ) from None
        raise application_error(
            TOO_MANY_REDIRECTS, f"http_get: more than {MAX_REDIRECTS} redirects"
        )

    def _result(
        self, response: httpx.Response, body: bytes, *, truncated: bool, note: str = ""
    ) -> ToolResult:
        lines = [
            f"HTTP {response.status_code} {response.reason_phrase}",
            f"url: {response.url}",
            f"content-type: {response.headers.get('content-type', '(none)')}",
        ]
        if response.is_redirect:
            lines.append(f"location: {response.headers.get('location', '')}")
        if note:
            lines.append(note)
        text = ""
        if b"\0" in body:
            text = f"[binary content, {len(body):,} bytes, not shown]"
        elif body:
            text = body.decode(response.charset_encoding or "utf-8", errors="replace")
        if truncated:
            text += f"\n[truncated: only the first {self.max_bytes:,} bytes were read]"
        return ToolResult(tool="http_get", ok=True, output="\n".join(lines) + "\n\n" + text)


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the (decoded) body, and whether there was more."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


def _raise_if_transient(response: httpx.Response) -> None:
    if response.status_code not in TRANSIENT_STATUSES:
        return
    delay = None
    retry_after = response.headers.get("retry-after", "")
    if retry_after.isdigit():
        delay = min(timedelta(seconds=int(retry_after)), MAX_RETRY_AFTER)
    raise application_error(
        HTTP_UNAVAILABLE,
        f"http_get {response.url.host}: HTTP {response.status_code}",
        next_retry_delay=delay,
    )


def _refused(problem: str) -> ApplicationError:
    return application_error(URL_NOT_ALLOWED, f"http_get: {problem}")


def url_refusal(url: httpx.URL, allow_hosts: frozenset[str]) -> str | None:
    """Why `url` may not be fetched by a worker allowed `allow_hosts`, or None."""
    if url.scheme not in ("http", "https"):
        return f"scheme {url.scheme!r} is refused: only http and https"
    if url.userinfo:
        return "credentials in the URL are refused"
    if url.host.lower() not in allow_hosts:
        listed = ", ".join(sorted(allow_hosts)) or "none"
        return f"host {url.host!r} is not in http.allow_hosts (allowed: {listed})"
    return None


def checked_url(text: str, allow_hosts: frozenset[str]) -> httpx.URL:
    """The URL `text` names, if a worker allowed `allow_hosts` may fetch it; else Refused."""
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as err:
        raise _refused(f"not a valid URL: {err}") from None
    refusal = url_refusal(url, allow_hosts)
    if refusal is not None:
        raise _refused(refusal)
    return url
