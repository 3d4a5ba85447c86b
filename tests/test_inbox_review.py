"""What the inbox shows beside a form: which passages, how far, and an edit's diff lines."""

from __future__ import annotations

from datetime import UTC, datetime

from steward.inbox.review import PASSAGE_CHARS, edit_diffs, grounding
from steward.models import ApprovalRequest, ArgumentEdit, Citation, Passage

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def request(body: str, original: str | None = None) -> ApprovalRequest:
    edits = [ArgumentEdit(by="alice", at=NOW, before_digest="a", after_digest="b", fields=["body"])]
    return ApprovalRequest(
        id="run:1",
        workflow_id="run",
        tool="send_email",
        args_digest="b",
        arguments={"to": "dana@example.com", "body": body},
        requester="dana",
        approvers=["alice", "bob"],
        requested_at=NOW,
        deadline=NOW,
        edits=edits if original is not None else [],
        original_arguments=None
        if original is None
        else {"to": "dana@example.com", "body": original},
    )


def passage(n: int, text: str = "text") -> Passage:
    citation = Citation(collection="handbook", source=f"p{n}.md", chunk=0, score=0.5)
    return Passage(n=n, text=text, citation=citation)


def test_cited_passages_in_citing_order_else_all_each_cut() -> None:
    passages = [passage(1), passage(2, "x" * (PASSAGE_CHARS + 50)), passage(3)]
    shown = grounding(request("See [2], then [1] and [9]."), passages)
    assert shown.cited and [p.n for p in shown.passages] == [2, 1]
    assert shown.passages[0].text.endswith(" …")
    assert len(shown.passages[0].text) == PASSAGE_CHARS + 2
    uncited = grounding(request("No markers."), passages)
    assert not uncited.cited and [p.n for p in uncited.passages] == [1, 2, 3]
    assert grounding(request("See [1]."), []).passages == []


def test_an_edit_diffs_only_changed_fields_with_gaps_between_hunks() -> None:
    lines = [f"line {i}" for i in range(12)]
    before = "\n".join(lines)
    after = "\n".join(["line 0 changed", *lines[1:-1], "last"])
    (diff,) = edit_diffs(request(after, before))
    assert diff.name == "body"
    shown = [(line.kind, line.text) for line in diff.lines]
    assert shown[:3] == [("removed", "line 0"), ("added", "line 0 changed"), ("same", "line 1")]
    assert ("gap", "") in shown and shown[-2:] == [("removed", "line 11"), ("added", "last")]
    assert edit_diffs(request("unedited")) == []
