"""The approval inbox over HTTP: who may see and decide, and what the gate refuses.

The real app (`steward.inbox.app`) with its own Temporal client, against the session's
server and the real workers with the fake model. Starlette's TestClient runs the app in a
thread of its own, so the tests call it through `asyncio.to_thread`: the workers share the
test's event loop and must keep running while the app waits on a run's update.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from steward.config import StewardConfig
from steward.inbox.app import build_app
from steward.inbox.auth import SESSION_COOKIE, Signer, approvers_of
from steward.models import ApprovalRequest, RunResult
from steward.plugin import StewardPlugin
from steward.retrieval import IngestRequest
from steward.runs import decide, start_run
from tests.conftest import CODEC
from tests.support.fake_model import FakeModel
from tests.support.retrieval import ingest
from tests.support.stack import (
    mail_text,
    outbox_messages,
    running_workers,
    wait_for_approval,
    with_send_approval,
)
from tests.workflows.test_support import DRAFT, TICKET

SECRET = b"inbox-test-secret-not-a-secret-0123456789"
HOSTILE = "Hello Dana,\n\n<script>alert('pwned')</script> your refund is on its way.\n"
HOSTILE_ESCAPED = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"
HANDBOOK_PAGE = (
    "# Shipping\n\n## Late parcels\n\n"
    "A parcel late by more than five days gets a carrier investigation. "
    "<script>alert('doc')</script>\n"
)


class Inbox:
    """The inbox app under test, and a way to call it off the test's event loop."""

    def __init__(self, http: TestClient, signer: Signer) -> None:
        self.http = http
        self.signer = signer

    async def call(self, method: str, url: str, **options: Any) -> httpx.Response:
        request: Callable[..., httpx.Response] = getattr(self.http, method)
        return await asyncio.to_thread(request, url, **options)

    async def sign_in(self, approver: str) -> httpx.Response:
        page = await self.call("get", f"/signin?token={self.signer.link_token(approver)}")
        assert page.status_code == 200 and f"Signed in as <strong>{approver}" in page.text
        return page

    async def decide(self, page: str, request: ApprovalRequest, **fields: str) -> httpx.Response:
        form = _form_of(page, request.id) | fields
        return await self.call("post", "/decide", data=form)


@pytest.fixture
async def inbox(env: WorkflowEnvironment, config: StewardConfig) -> AsyncIterator[Inbox]:
    target = env.client.service_client.config.target_host

    async def connect() -> Client:
        return await Client.connect(target, plugins=[StewardPlugin(CODEC)])

    signer = Signer(SECRET)
    app = build_app(connect, signer, approvers_of(config.approvers), ui="http://127.0.0.1:1")
    http = TestClient(app)
    await asyncio.to_thread(http.__enter__)
    try:
        yield Inbox(http, signer)
    finally:
        await asyncio.to_thread(http.__exit__, None, None, None)


def _form_of(page: str, approval_id: str) -> dict[str, str]:
    """The hidden fields and argument fields of one approval's form, as a browser sends."""
    start = page.index(f'<article class="approval" id="{html.escape(approval_id)}"')
    form = page[start : page.index("</form>", start)]
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }
    for name, value in re.findall(r'name="(arg\.[^"]+)"[^>]*>\n(.*?)</textarea>', form, re.S):
        fields[html.unescape(name)] = html.unescape(value)
    for name, value in re.findall(r'name="(arg\.[^"]+)" value="([^"]*)"', form):
        fields[html.unescape(name)] = html.unescape(value)
    return fields


def section(page: str, name: str) -> str:
    """The page's first `<section class="name">`, up to its end."""
    start = page[page.index(f'<section class="{name}"') :]
    return start[: start.index("</section>")]


def _queue(fake: FakeModel, draft: str = DRAFT) -> None:
    fake.queue(json.dumps({"category": "shipping", "urgency": "high"}))
    fake.queue(draft)


async def test_sign_in_links_are_signed_expiring_and_single_use(
    inbox: Inbox,
) -> None:
    refused = await inbox.call("get", "/")
    assert refused.status_code == 401 and "steward inbox link" in refused.text
    forged = await inbox.call("get", "/signin?token=eyJzdWIiOiJhbGljZSJ9.AAAA")
    assert forged.status_code == 403 and "not valid" in forged.text
    expired = inbox.signer.link_token("alice", seconds=-1)
    page = await inbox.call("get", f"/signin?token={expired}")
    assert page.status_code == 403 and "expired" in page.text
    stranger = inbox.signer.link_token("mallory")
    page = await inbox.call("get", f"/signin?token={stranger}")
    assert page.status_code == 403 and "no approvers group" in page.text

    link = f"/signin?token={inbox.signer.link_token('alice')}"
    opened = await inbox.call("get", link, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/"
    cookie = opened.headers["set-cookie"].lower()
    assert f"{SESSION_COOKIE}=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    page = await inbox.call("get", "/")
    assert page.status_code == 200 and "Signed in as <strong>alice" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert SECRET.decode() not in page.text

    inbox.http.cookies.clear()
    again = await inbox.call("get", link)
    assert again.status_code == 403 and "used already" in again.text
    assert (await inbox.call("get", "/")).status_code == 401


async def test_approving_from_the_inbox_sends_the_reply_once(
    inbox: Inbox,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    _queue(fake_model, HOSTILE)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        page = (await inbox.sign_in("alice")).text
        # What the model wrote is shown as text, never run as markup.
        assert "<script>alert" not in page
        assert HOSTILE_ESCAPED in page
        assert request.id in page and request.args_digest in page
        assert 'value="dana.whitfield@example.com" readonly' in page  # `to` is locked

        no_csrf = await inbox.decide(page, request, action="approve", csrf="")
        assert no_csrf.status_code == 403 and "not from the inbox" in no_csrf.text
        assert (await wait_for_approval(handle)).id == request.id  # still waiting

        approved = await inbox.decide(page, request, action="approve")
        assert approved.status_code == 200, approved.text
        assert "Approved: send_email" in approved.text
        result: RunResult = await asyncio.wait_for(handle.result(), 60)
        twice = await inbox.decide(page, request, action="approve")

    assert result.status == "completed"
    (outcome,) = result.approvals
    assert outcome.approver == "alice"
    (sent,) = outbox_messages(config)
    assert "<script>alert('pwned')</script>" in mail_text(sent)  # sent as the model wrote it
    assert twice.status_code == 409 and "no pending approval" in twice.text
    assert "Traceback" not in twice.text


async def test_rejecting_needs_a_reason_and_ends_the_run(
    inbox: Inbox,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    _queue(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        page = (await inbox.sign_in("alice")).text
        bare = await inbox.decide(page, request, action="reject", reason=" ")
        assert bare.status_code == 409 and "say why you reject it" in bare.text
        rejected = await inbox.decide(page, request, action="reject", reason="wrong tone")
        assert rejected.status_code == 200 and "Rejected: send_email" in rejected.text
        result: RunResult = await asyncio.wait_for(handle.result(), 60)

    assert result.status == "rejected"
    (outcome,) = result.approvals
    assert outcome.approver == "alice" and outcome.reason == "wrong tone"
    assert outbox_messages(config) == []


async def test_the_gate_refuses_a_stale_page_and_self_approval(
    inbox: Inbox,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    _queue(fake_model)
    async with running_workers(client, config, task_queue):
        # alice asked for this reply herself, so she may not approve it
        handle = await start_run(
            client, config, "support-reply", TICKET, "alice", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        page = (await inbox.sign_in("alice")).text
        own = await inbox.decide(page, request, action="approve")
        assert own.status_code == 409
        assert "requested this action and cannot approve it" in own.text

        inbox.http.cookies.clear()
        page = (await inbox.sign_in("demo-approver")).text
        blank = await inbox.decide(page, request, action="approve", digest="")
        assert blank.status_code == 409 and "no argument digest" in blank.text
        stale = await inbox.decide(page, request, action="approve", digest="0" * 16)
        assert stale.status_code == 409
        assert "the argument digest does not match" in html.unescape(stale.text)
        assert "Traceback" not in stale.text
        assert (await wait_for_approval(handle)).id == request.id  # nothing was decided
        await handle.terminate("test done")


async def test_a_trusted_header_is_honoured_only_when_asked_for(
    env: WorkflowEnvironment, config: StewardConfig
) -> None:
    target = env.client.service_client.config.target_host

    async def connect() -> Client:
        return await Client.connect(target, plugins=[StewardPlugin(CODEC)])

    approvers = approvers_of(config.approvers)
    for header, expected in ((None, 401), ("X-Forwarded-User", 200)):
        app = build_app(connect, Signer(SECRET), approvers, trust_header=header)
        with TestClient(app) as http:
            page = await asyncio.to_thread(http.get, "/", headers={"X-Forwarded-User": "alice"})
            assert page.status_code == expected, page.text
            stranger = await asyncio.to_thread(
                http.get, "/", headers={"X-Forwarded-User": "mallory"}
            )
            assert stranger.status_code == (403 if header else 401)
    assert "Signed in as <strong>alice" in page.text


async def test_a_grounded_draft_shows_the_passages_it_cites(
    inbox: Inbox,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "shipping.md").write_text(HANDBOOK_PAGE)
    _queue(fake_model, "Hello Dana,\n\nWe have opened a carrier investigation [1].\n")
    async with running_workers(client, config, task_queue):
        await ingest(client, IngestRequest(root=str(folder), collection="handbook"), task_queue)
        handle = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        await wait_for_approval(handle)
        page = (await inbox.sign_in("alice")).text
        await handle.terminate("test done")

    passages = section(page, "passages")
    assert "Passages the draft cites" in passages
    assert "[1] <code>shipping.md</code>: Shipping &gt; Late parcels" in passages
    assert "gets a carrier investigation." in passages
    # A document's text is data: shown as text, never run as markup.
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;doc&#39;)&lt;/script&gt;" in passages


async def test_an_edit_waiting_for_a_second_approver_shows_its_diff(
    inbox: Inbox,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    two = with_send_approval(config, group="support-leads", required=2)
    _queue(fake_model)
    async with running_workers(client, two, task_queue):
        handle = await start_run(
            client, two, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        _, receipt = await decide(
            client,
            request.id,
            "alice",
            approve=True,
            arguments=request.arguments | {"body": HOSTILE},
        )
        assert receipt.status == "awaiting_more"
        page = (await inbox.sign_in("demo-approver")).text
        await handle.terminate("test done")

    edits = section(page, "edits")
    assert "Edited by alice" in edits
    assert '<p class="field">body</p>' in edits
    assert (
        '<div class="removed">- We are sorry for the delay; a refund of the express fee is on '
        "its way.</div>" in edits
    )
    assert f'<div class="added">+ {HOSTILE_ESCAPED} your refund is on its way.</div>' in edits
    assert '<div class="same">  Hello Dana,</div>' in edits
    assert "<script>alert" not in page
