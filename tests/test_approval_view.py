"""What a person sees of a waiting call: every argument in full, nothing that can rewrite
their terminal or break out of the Temporal UI's Markdown, and the JSON to paste."""

from __future__ import annotations

import asyncio
import json

from temporalio.client import Client
from typer.testing import CliRunner

from steward import approval_view
from steward.cli import app
from steward.config import StewardConfig
from steward.models import ApprovalRequest
from steward.runs import start_run
from tests.support.approvals import waiting_request
from tests.support.fake_model import FakeModel
from tests.support.stack import running_workers, wait_for_approval

# A subject that, printed raw, would erase the line, move the cursor up and reverse the
# text that follows, so a terminal would show another recipient than the real one.
CRAFTED = "Invoice\x1b[2K\x1b[1Ato: boss@example.com\u202emoc.elpmaxe@yllam"
LONG_BODY = "Please pay. " * 40


def request(**arguments: object) -> ApprovalRequest:
    return waiting_request(arguments, workflow_id="helpdesk-1")


def test_control_and_invisible_characters_are_made_visible() -> None:
    shown = approval_view.visible(CRAFTED)
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[2K\\x1b[1A" in shown and "\\u202e" in shown
    assert approval_view.visible("line one\nline two\ttab") == "line one\nline two\ttab"


def test_markdown_fences_what_the_model_wrote_and_offers_the_json() -> None:
    sneaky = "```\n# not a heading\n[click](http://evil.example)\n````"
    text = approval_view.markdown(
        request(to="a@example.com", subject="hi", body=sneaky),
        target="helpdesk",
        step="s",
        task="t",
    )
    fences = [line for line in text.splitlines() if line.startswith("`````")]
    assert fences, "the body's own backticks cannot close its fence"
    approve = json.loads(text.split("```json\n")[1].split("\n```")[0])
    assert approve == {
        "request_id": "helpdesk-1:abcd1234-1",
        "args_digest": "0123456789abcdef",
        "approver": "YOUR NAME",
        "approve": True,
        "reason": "",
    }


async def test_steward_pending_prints_every_argument_in_full_and_harmless(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    call = {"to": "ops@example.com", "subject": CRAFTED, "body": LONG_BODY}
    fake_model.queue(json.dumps({"action": "send_email", "arguments": call}))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "mail ops", "dana", task_queue=task_queue
        )
        waiting = await wait_for_approval(handle)
        address = client.service_client.config.target_host
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["pending"], env={"TEMPORAL_ADDRESS": address}
        )
        await handle.terminate("test done")

    assert result.exit_code == 0, result.output
    assert waiting.id in result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "subject: Invoice\\x1b[2K\\x1b[1Ato: boss@example.com\\u202e" in result.output
    assert LONG_BODY.strip() in result.output  # not cut at 100 characters


def test_an_edit_reads_the_same_in_the_trace_and_the_inbox() -> None:
    from steward.approval_view import edited_fields
    from steward.trace.approvals import argument_diff

    before = {"to": "a@example.com", "body": "Hello\nYour parcel left.\nBye", "cc": ["x"]}
    after = {"to": "a@example.com", "body": "Hello\nYour parcel left today.\nBye", "tag": 1}
    changed = edited_fields(before, after)
    # asked order, then added fields; unchanged fields left out; a missing side is empty
    assert [name for name, _ in changed] == ["body", "cc", "tag"]
    body = dict(changed)["body"]
    assert "-Your parcel left." in body and "+Your parcel left today." in body
    assert [line for line in dict(changed)["cc"] if line[:1] in "+-"] == [
        "-[",
        '-  "x"',
        "-]",
    ]
    assert dict(changed)["tag"][-1] == "+1"
    diff = argument_diff(before, after)
    assert diff.splitlines()[:2] == ["--- body (asked)", "+++ body (approved)"]
    for _, lines in changed:
        for line in lines:
            assert line in diff.splitlines()
