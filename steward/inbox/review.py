"""What an approver reads beside a waiting call's form: the passages its draft cites and
the diff of an earlier approver's edit.

A grounded draft's claims are only as good as the handbook passages behind them, so the
page shows the ones the arguments cite as [n] (all of them when the draft numbers none:
it was still written from them), each cut to a readable length. An edit by an earlier
approver resets the approvals given so far; the next approver should see what changed
from what the run asked, field by field, not just that someone edited. Everything here
is text a model or a document wrote: the template escapes it.

Pure: no Temporal, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from steward.approval_view import edited_fields
from steward.models import ApprovalRequest, Passage
from steward.retrieval import cited_numbers

PASSAGE_CHARS = 1200
"""A passage is shown up to this many characters: enough to check a claim, never a wall."""


@dataclass(frozen=True)
class Grounding:
    """The passages to show under a draft, and whether the draft cites them by number."""

    passages: list[Passage]
    cited: bool


@dataclass(frozen=True)
class DiffLine:
    """One line of a field's diff."""

    kind: Literal["added", "removed", "same", "gap"]
    text: str

    @property
    def sign(self) -> str:
        """The line's marker, for a reader who cannot tell the colours apart."""
        return {"added": "+", "removed": "-", "same": " ", "gap": "…"}[self.kind]


@dataclass(frozen=True)
class FieldDiff:
    """How one argument changed between what the run asked and what waits now."""

    name: str
    lines: list[DiffLine]


def grounding(request: ApprovalRequest, passages: list[Passage]) -> Grounding:
    """The passages `request`'s arguments cite as [n], in the order first cited; all of
    them when its text cites none. Each passage's text is cut to `PASSAGE_CHARS`.
    """
    text = "\n".join(value for value in request.arguments.values() if isinstance(value, str))
    numbered = {passage.n: passage for passage in passages}
    chosen = [numbered[n] for n in cited_numbers(text, max(numbered, default=0)) if n in numbered]
    return Grounding([_cut(p) for p in chosen or passages], cited=bool(chosen))


def _cut(passage: Passage) -> Passage:
    if len(passage.text) <= PASSAGE_CHARS:
        return passage
    return passage.model_copy(update={"text": passage.text[:PASSAGE_CHARS].rstrip() + " …"})


def edit_diffs(request: ApprovalRequest) -> list[FieldDiff]:
    """Per changed argument, the lines removed from and added to what the run asked."""
    before = request.original_arguments
    if not request.edits or before is None:
        return []
    diffs = []
    for name, hunks in edited_fields(before, request.arguments):
        if hunks and _HUNK_FROM_TOP.match(hunks[0]):
            hunks = hunks[1:]  # a change near the top: nothing skipped before it
        diffs.append(FieldDiff(name, [_line(line) for line in hunks]))
    return diffs


_HUNK_FROM_TOP = re.compile(r"@@ -[01](,\d+)? ")


def _line(line: str) -> DiffLine:
    if line.startswith("@@"):
        return DiffLine("gap", "")
    kind: Literal["added", "removed", "same"] = (
        "added" if line[:1] == "+" else "removed" if line[:1] == "-" else "same"
    )
    return DiffLine(kind, line[1:])
