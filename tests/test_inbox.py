"""The approval inbox as an approver uses it, in headless Chromium.

`steward inbox` runs as a real process against the session's Temporal server; a support
reply waits for approval. Signed in by the link `steward inbox link` prints, the approver
finds the reply with its draft in the form, fixes the draft and approves: the page says
so and the message delivered is the edited one. Where two must approve and the first
edited, the second sees that edit's diff; rejecting needs a reason, and ends the run
without sending; the link, used once, is refused the second time. An expired link, a
decision on one's own run and a decision from a page gone stale are refused, each saying
why.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from steward.config import StewardConfig
from steward.inbox.auth import Signer, load_secret
from steward.models import RunResult
from steward.runs import decide, start_run
from tests.support.browser import chromium
from tests.support.fake_model import FakeModel
from tests.support.inbox_server import inbox_server, sign_in_link
from tests.support.stack import (
    mail_text,
    outbox_messages,
    running_workers,
    wait_for_approval,
    with_send_approval,
)
from tests.workflows.test_support import TICKET, queue_happy_path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "examples" / "steward.yaml"
"""Only its approvers matter to the inbox: the workers run with the tests' config."""
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)
FIXED = (
    "Hello Dana,\n\nSorry for the wait: your parcel left today, and the express fee is refunded.\n"
)


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inbox") / "inbox-secret"


@pytest.fixture(scope="module")
def inbox(env: WorkflowEnvironment, secret_file: Path) -> Iterator[str]:
    """The inbox's URL; started before any test's workers, so its start blocks nothing."""
    address = env.client.service_client.config.target_host
    with inbox_server(address, CONFIG, secret_file) as url:
        yield url


async def opened_page(browser: Browser) -> Page:
    """A page the size of a laptop screen, waiting as long as the tests allow."""
    page = await browser.new_page(viewport={"width": 1200, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    return page


async def signed_in(page: Page, inbox: str, secret_file: Path, approver: str) -> str:
    """Open a fresh sign-in link for `approver`; the link, now used."""
    link = await asyncio.to_thread(sign_in_link, inbox, approver, CONFIG, secret_file)
    assert link.startswith(f"{inbox}/signin?token=")
    await page.goto(link, wait_until="domcontentloaded")
    await expect(page.get_by_text(f"Signed in as {approver}")).to_be_visible()
    return link


@pytest.mark.timeout(240)
async def test_sign_in_edit_the_draft_and_approve(
    inbox: str,
    secret_file: Path,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        async with chromium() as browser:
            page = await opened_page(browser)
            await signed_in(page, inbox, secret_file, "alice")

            item = page.locator(f'article[id="{request.id}"]')
            await expect(item.get_by_role("heading", name="send_email")).to_be_visible()
            body = item.get_by_label("body", exact=True)
            await expect(body).to_have_value(request.arguments["body"])
            assert "a refund of the express fee" in request.arguments["body"]
            recipient = item.get_by_label(re.compile(r"^to \(locked"))
            await expect(recipient).to_have_value("dana.whitfield@example.com")
            await expect(recipient).not_to_be_editable()
            await body.fill(FIXED)
            await item.get_by_role("button", name="Approve").click()
            await expect(page.get_by_text("Approved (with your edit): send_email")).to_be_visible()
            result: RunResult = await asyncio.wait_for(handle.result(), 60)

    assert result.status == "completed"
    (outcome,) = result.approvals
    assert outcome.approver == "alice"
    assert outcome.arguments is not None and outcome.arguments["body"] == FIXED
    (sent,) = outbox_messages(config)
    assert "your parcel left today" in mail_text(sent)
    assert "a refund of the express fee is on its way" not in mail_text(sent)


@pytest.mark.timeout(240)
async def test_reject_with_a_reason_and_a_used_link_is_refused(
    inbox: str,
    secret_file: Path,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    # Two must approve, and the first edits: alice reads what demo-approver changed.
    config = with_send_approval(config, group="support-leads", required=2)
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        edited = request.arguments | {"body": FIXED}
        await decide(client, request.id, "demo-approver", approve=True, arguments=edited)
        async with chromium() as browser:
            page = await opened_page(browser)
            link = await signed_in(page, inbox, secret_file, "alice")

            item = page.locator(f'article[id="{request.id}"]')
            diff = item.get_by_role("region", name="Earlier edit")
            await expect(diff).to_contain_text("Edited by demo-approver")
            await expect(diff.locator(".added")).to_have_text(
                "+ Sorry for the wait: your parcel left today, and the express fee is refunded."
            )
            await item.get_by_role("button", name="Reject").click()
            await expect(page.get_by_text("say why you reject it")).to_be_visible()
            await page.get_by_role("link", name="Back to the inbox").click()
            item = page.locator(f'article[id="{request.id}"]')
            await item.get_by_label("Reason").fill("the customer wrote again; answer that")
            await item.get_by_role("button", name="Reject").click()
            await expect(page.get_by_text("Rejected: send_email")).to_be_visible()
            result: RunResult = await asyncio.wait_for(handle.result(), 60)

            other = await browser.new_page()
            await other.goto(link, wait_until="domcontentloaded")
            await expect(other.get_by_text("this sign-in link was used already")).to_be_visible()

    assert result.status == "rejected"
    (outcome,) = result.approvals
    assert outcome.approver == "alice"
    assert outcome.reason == "the customer wrote again; answer that"
    assert outbox_messages(config) == []


@pytest.mark.timeout(240)
async def test_an_expired_link_ones_own_run_and_a_stale_page_are_refused(
    inbox: str,
    secret_file: Path,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    queue_happy_path(fake_model)
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        own = await start_run(
            client, config, "support-reply", TICKET, "alice", task_queue=task_queue
        )
        mine = await wait_for_approval(own)
        theirs_run = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        theirs = await wait_for_approval(theirs_run)
        async with chromium() as browser:
            page = await opened_page(browser)
            expired = Signer(load_secret(secret_file)).link_token("alice", seconds=-1)
            await page.goto(f"{inbox}/signin?token={expired}", wait_until="domcontentloaded")
            await expect(page.get_by_text("expired")).to_be_visible()

            await signed_in(page, inbox, secret_file, "alice")
            # her own run: the gate refuses, and the page says why
            item = page.locator(f'article[id="{mine.id}"]')
            await item.get_by_role("button", name="Approve").click()
            await expect(
                page.get_by_text("requested this action and cannot approve it")
            ).to_be_visible()

            # a page left open while someone else decides: its decision is refused
            await page.get_by_role("link", name="Back to the inbox").click()
            item = page.locator(f'article[id="{theirs.id}"]')
            await expect(item.get_by_role("heading", name="send_email")).to_be_visible()
            await decide(client, theirs.id, "demo-approver", approve=True)
            result: RunResult = await asyncio.wait_for(theirs_run.result(), 60)
            await item.get_by_role("button", name="Approve").click()
            await expect(page.get_by_role("heading", name="Not decided")).to_be_visible()
            await expect(
                page.get_by_text(f"no pending approval with id '{theirs.id}'")
            ).to_be_visible()

        assert (await wait_for_approval(own)).id == mine.id  # nothing was decided
        await own.terminate("test done")

    assert result.status == "completed"
    (outcome,) = result.approvals
    assert outcome.approver == "demo-approver"
    assert len(outbox_messages(config)) == 1
