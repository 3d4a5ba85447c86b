"""A call's arguments as the inbox's form shows them, and an approver's edit read back."""

from __future__ import annotations

import pytest

from steward.inbox import forms
from steward.models import ApprovalRequest
from steward.runs import RunError
from tests.support.approvals import waiting_request

BODY = "Hello Dana,\n\nYour parcel left today.\n"


def request(**arguments: object) -> ApprovalRequest:
    return waiting_request(arguments, locked=["to"])


def test_fields_follow_the_schema_and_show_what_it_does_not_name() -> None:
    waiting = request(body=BODY, extra={"n": 1}, subject="Your parcel", to="dana@example.com")
    shown = forms.fields(waiting, forms.tool_schema("send_email"))
    assert [field.name for field in shown] == ["to", "subject", "body", "extra"]
    by_name = {field.name: field for field in shown}
    assert by_name["to"].locked and not by_name["body"].locked
    assert by_name["body"].multiline and not by_name["subject"].multiline
    assert by_name["extra"].as_json and by_name["extra"].value == '{\n  "n": 1\n}'


def test_an_edit_is_read_back_and_locked_fields_never_change() -> None:
    waiting = request(to="dana@example.com", subject="Your parcel", body=BODY, extra={"n": 1})
    sent = {
        "arg.to": "mallory@example.com",
        "arg.subject": "Your parcel",
        "arg.body": BODY.replace("\n", "\r\n"),
        "arg.extra": '{"n": 1}',
    }
    assert forms.edited_arguments(waiting, sent) is None  # CRLF from the browser is no edit
    edited = forms.edited_arguments(waiting, sent | {"arg.body": "Fixed.\r\n", "arg.extra": "2"})
    assert edited == waiting.arguments | {"body": "Fixed.\n", "extra": 2}
    with pytest.raises(RunError, match="extra: your edit is not JSON"):
        forms.edited_arguments(waiting, sent | {"arg.extra": "{n: 1"})
