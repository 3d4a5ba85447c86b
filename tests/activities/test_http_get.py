"""http_get against a real server on loopback: allowed hosts only, redirects checked, bodies
bounded, failures classified."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.evals import SandboxTools
from activities.tools.http_get import HttpActivities
from steward.models import ToolCall, ToolInvocation, ToolResult
from steward.tools.http_get import HTTP_GET
from tests.support.smtp_server import free_port
from tests.support.web_server import PAGE, Site, web_server


@pytest.fixture
def site() -> Iterator[Site]:
    with web_server() as running:
        yield running


def fetcher(max_bytes: int = 10_000) -> HttpActivities:
    return HttpActivities(["127.0.0.1"], max_bytes=max_bytes, timeout_seconds=5)


def invocation(url: str) -> ToolInvocation:
    return ToolInvocation(
        call=ToolCall(id="call-1", tool="http_get", arguments={"url": url}),
        idempotency_key="wf-1.0123456789abcdef",
        agent="helpdesk",
        principal="dana",
    )


async def get(url: str, activities: HttpActivities | None = None) -> ToolResult:
    result: ToolResult = await ActivityEnvironment().run(
        (activities or fetcher()).http_get, invocation(url)
    )
    return result


async def failure(url: str, activities: HttpActivities | None = None) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await get(url, activities)
    return caught.value


async def test_fetches_an_allowed_page(site: Site) -> None:
    result = await get(site.url("/page"))
    assert result.ok
    assert result.output.startswith("HTTP 200 OK\n")
    assert "content-type: text/plain; charset=utf-8" in result.output
    assert result.output.endswith("\n\n" + PAGE)
    assert site.requests == ["/page"]


async def test_other_statuses_are_results_for_the_model(site: Site) -> None:
    result = await get(site.url("/missing"))
    assert result.output.startswith("HTTP 404 Not Found") and "no such page" in result.output


@pytest.mark.parametrize(
    ("url", "kind", "problem"),
    [
        ("http://localhost:{port}/page", "UrlNotAllowed", "host 'localhost' is not in"),
        ("http://127.0.0.2:{port}/page", "UrlNotAllowed", "not in http.allow_hosts"),
        ("ftp://127.0.0.1:{port}/page", "InvalidToolArguments", "only http:// and https://"),
        ("file:///etc/passwd", "InvalidToolArguments", "only http:// and https://"),
        ("http://me:secret@127.0.0.1:{port}/page", "InvalidToolArguments", "credentials"),
        ("http://127.0.0.1:{port}/" + "a" * 2_000, "InvalidToolArguments", "at most 2,000"),
    ],
)
async def test_refused_before_any_request(site: Site, url: str, kind: str, problem: str) -> None:
    error = await failure(url.format(port=site.port))
    assert error.type == kind and error.non_retryable
    assert problem in error.message
    assert site.requests == []


async def test_redirects_are_followed_only_to_allowed_hosts(site: Site) -> None:
    inside = await get(site.url("/redirect-inside"))
    assert inside.output.startswith("HTTP 200 OK") and PAGE in inside.output
    assert f"url: {site.url('/page')}" in inside.output

    outside = await get(site.url("/redirect-outside"))
    assert outside.output.startswith("HTTP 302 Found")
    assert "redirect not followed: host 'elsewhere.invalid' is not in http.allow_hosts" in (
        outside.output
    )
    assert site.requests == ["/redirect-inside", "/page", "/redirect-outside"]


async def test_stops_reading_at_max_bytes_and_says_so(site: Site) -> None:
    # /endless never ends: reading it all would never return
    async with asyncio.timeout(20):
        result = await get(site.url("/endless"), fetcher(max_bytes=5_000))
    body = result.output.split("\n\n", 1)[1]
    assert body.startswith("x" * 5_000) and "x" * 5_001 not in body
    assert body.endswith("[truncated: only the first 5,000 bytes were read]")


async def test_a_busy_server_is_retried_after_its_retry_after(site: Site) -> None:
    error = await failure(site.url("/busy"))
    assert error.type == "HttpUnavailable" and not error.non_retryable
    assert error.next_retry_delay == timedelta(seconds=7)


async def test_an_unreachable_host_is_retryable() -> None:
    error = await failure(f"http://127.0.0.1:{free_port()}/page")
    assert error.type == "HttpUnavailable" and not error.non_retryable


async def test_an_empty_allow_list_fetches_nothing(site: Site) -> None:
    nothing = HttpActivities([], max_bytes=100, timeout_seconds=5)
    error = await failure(site.url("/page"), nothing)
    assert "(allowed: none)" in error.message
    assert site.requests == []


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "http://u:p@127.0.0.1/"],
)
async def test_the_eval_sandbox_refuses_what_the_tool_refuses(url: str) -> None:
    # An eval must not score a call as done that the workers' own tool would refuse.
    sandbox = SandboxTools(allow_hosts=["127.0.0.1"])
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(sandbox.activity_for(HTTP_GET), invocation(url))
    with pytest.raises(ApplicationError) as real:
        await ActivityEnvironment().run(fetcher().http_get, invocation(url))
    assert refused.value.type == real.value.type
    assert str(refused.value) == str(real.value)
    assert not sandbox.recorded
