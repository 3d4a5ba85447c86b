"""docs/approvals.md's "From the Temporal UI only" recipe, done as an approver would, in Chromium.

A dev server with its Web UI on; a support reply waits for approval. From the saved filter
of runs waiting for alice, open the run; its current details (User Metadata) show the
email to send and the decision JSON; sending that JSON by the requester is refused with a
line the UI shows; sent as alice with "Send an Update", the run completes and the reply is
delivered once.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect
from temporalio.testing import WorkflowEnvironment

from steward import approval_view, devserver
from steward import search_attributes as sa
from steward.config import StewardConfig
from steward.models import RunResult
from steward.plugin import StewardPlugin
from steward.runs import start_run
from tests.conftest import CODEC
from tests.support.browser import chromium
from tests.support.codec_server import codec_server
from tests.support.fake_model import FakeModel
from tests.support.stack import mail_text, outbox_messages, running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)  # the UI polls; a loaded machine takes its time


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
async def ui_env() -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """A dev server with its Web UI reading payloads through a codec server, as `steward
    dev up` starts them, and the UI's address.
    """
    port = _free_port()
    ui = f"http://127.0.0.1:{port}"
    with codec_server("--origin", ui) as codec_url:
        environment = await WorkflowEnvironment.start_local(
            plugins=[StewardPlugin(CODEC, strict_sandbox=True)],
            dev_server_existing_path=str(devserver.temporal_binary()),
            search_attributes=sa.ALL,
            ui=True,
            ui_port=port,
            dev_server_extra_args=[
                *devserver.tuning_args(),
                "--ui-disable-news-fetch",
                "--ui-codec-endpoint",
                codec_url,
            ],
            dev_server_log_level="error",
        )
        yield environment, ui
        await environment.shutdown()


async def send_update(page: Page, decision: str) -> None:
    """More Actions -> Send an Update -> decide, with `decision` as its JSON."""
    await page.get_by_role("button", name="More Actions").click()
    await page.get_by_role("menuitem", name="Send an Update").click()
    dialog = page.get_by_role("dialog")
    await dialog.locator('label[for="update-select"] ~ button').first.click()
    await page.get_by_role("option", name="decide", exact=True).click()
    await dialog.get_by_role("textbox", name="Data").click()
    await page.keyboard.insert_text(decision)
    # The UI takes the data in when its editor loses focus, and wants an update id.
    await dialog.get_by_role("button", name="Random UUID").click()
    await dialog.get_by_role("button", name="Submit").click()


@pytest.mark.timeout(240)
async def test_approving_from_the_temporal_ui_only(
    ui_env: tuple[WorkflowEnvironment, str],
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    env, ui = ui_env
    client = env.client
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        saved_filter = approval_view.ui_workflows_url(
            ui, "default", approval_view.waiting_for("alice")
        )
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)

            # Find the waiting run in one click, from the saved filter.
            await page.goto(saved_filter, wait_until="domcontentloaded")
            await page.get_by_role("link", name=handle.id).first.click()
            # Read the action: what would be sent, to whom, and the decision to send.
            await page.get_by_text("User Metadata", exact=True).click()
            # The UI renders the run's current details (Markdown) in a frame of its own.
            details = page.frame_locator('iframe[src*="Waiting%20for%20approval"]')
            await expect(details.get_by_text("Waiting for approval: send_email")).to_be_visible()
            shown = await details.locator("body").inner_text()
            assert "dana.whitfield@example.com" in shown
            assert "a refund of the express fee is on its way" in shown
            assert request.id in shown and request.args_digest in shown
            pasted = _approve_json(shown)
            assert pasted["request_id"] == request.id and pasted["approve"] is True
            # The requester may not approve her own run: the UI shows the gate's one line.
            await send_update(page, json.dumps(pasted | {"approver": "dana"}))
            await expect(
                page.get_by_text("requested this action and cannot approve it")
            ).to_be_visible()
            await page.keyboard.press("Escape")
            # Approved by alice, by update.
            await page.reload(wait_until="domcontentloaded")
            await send_update(page, json.dumps(pasted | {"approver": "alice", "reason": "UI"}))
            result: RunResult = await asyncio.wait_for(handle.result(), 60)

    assert result.status == "completed"
    (outcome,) = result.approvals
    assert outcome.approver == "alice" and outcome.reason == "UI"
    (sent,) = outbox_messages(config)
    assert "express fee" in mail_text(sent)


def _approve_json(page_text: str) -> dict[str, object]:
    """The approve JSON the current details show, ready to paste."""
    for match in re.finditer(r"\{[^{}]*\"request_id\"[^{}]*\}", page_text):
        candidate = json.loads(match.group(0))
        if candidate.get("approve") is True:
            return dict(candidate)
    raise AssertionError("the current details show no approve JSON")
