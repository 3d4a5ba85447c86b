"""An approval request as a person reads it: in the terminal, in the Temporal UI, in an email.

Everything a model wrote (a recipient, a subject, a body) is shown as data: control and
invisible formatting characters are made visible (an escape as `x1b`, a right-to-left
override as `u202e`, each after a backslash), so a crafted value cannot move the cursor,
recolour the terminal or reverse text to hide the real recipient; in Markdown it is
fenced, so it cannot turn into links or headings. The ready-to-paste
decision JSON is built here too, once, for the UI's "Send Update" and for scripts.

Pure: no Temporal, no I/O.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from steward import search_attributes as sa
from steward.models import ApprovalRequest
from steward.questions import Question


def visible(text: str) -> str:
    """`text` with every control or invisible formatting character escaped (newlines and
    tabs kept): what a terminal shows is what the string holds.
    """
    out = []
    for char in text:
        if char in "\n\t" or (char.isprintable() and not _INVISIBLE.match(char)):
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


# Printable by Python's rules, yet able to hide or reorder text around them.
_INVISIBLE = re.compile("[\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def decision_json(request: ApprovalRequest, approve: bool, approver: str = "YOUR NAME") -> str:
    """The `decide` JSON for this request, ready to paste (reason left for the approver)."""
    return json.dumps(
        {
            "request_id": request.id,
            "args_digest": request.args_digest,
            "approver": approver,
            "approve": approve,
            "reason": "" if approve else "why it is rejected",
        }
    )


def argument_lines(arguments: dict[str, Any], indent: str = "  ") -> list[str]:
    """Each argument in full, made visible; a multi-line value below its name, indented."""
    lines = []
    for name, value in arguments.items():
        text = visible(value if isinstance(value, str) else json.dumps(value))
        if "\n" in text:
            lines.append(f"{indent}{name}:")
            lines.extend(f"{indent}  | {line}" for line in text.splitlines())
        else:
            lines.append(f"{indent}{name}: {text}")
    return lines


def needs(request: ApprovalRequest) -> str:
    """Who must decide, e.g. `2 of alice, bob (signed)`."""
    how_many = f"{request.required} of " if request.required > 1 else "one of "
    signed = " (signed decisions)" if request.signed else ""
    return f"{how_many}{', '.join(request.approvers)}{signed}"


def markdown(request: ApprovalRequest, *, target: str, step: str, task: str) -> str:
    """The request as the Temporal UI shows a waiting run's current details."""
    fields = []
    for name, value in request.arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2)
        fields.append(f"**{name}**\n{_fenced(visible(text))}")
    edited = (
        f"\n\nEdited by {', '.join(edit.by for edit in request.edits)}." if request.edits else ""
    )
    flagged = (
        [
            "**Flagged by the guardrails** (weigh before approving):\n"
            + _fenced(visible("\n".join(request.flags)))
        ]
        if request.flags
        else []
    )
    return "\n\n".join(
        [
            f"## Waiting for approval: {request.tool}",
            *flagged,
            f"**{target}** (step {step}) asks, for **{visible(request.requester)}**:",
            *fields,
            f"**why** (the run's task)\n{_fenced(visible(task[:1000]))}{edited}",
            f"- request: `{request.id}`\n- argument digest: `{request.args_digest}`\n"
            f"- deadline: {request.deadline:%Y-%m-%d %H:%M} UTC\n- approvers: {needs(request)}",
            "Approve: *Send Update* `decide` with this JSON (your name as `approver`; to "
            'approve an edit, add `"arguments": {...}`):\n'
            + _fenced(decision_json(request, True), "json"),
            "Reject:\n" + _fenced(decision_json(request, False), "json"),
        ]
    )


def question_markdown(question: Question) -> str:
    """An open question as the Temporal UI shows a waiting run's current details."""
    reply = json.dumps({"question_id": question.id, "text": "your answer", "sender": "YOUR NAME"})
    who = ", ".join(question.audience) if question.audience else "anyone"
    return "\n\n".join(
        [
            f"## Waiting for a reply from {visible(who)}",
            _fenced(visible(question.question)),
            f"- question: `{question.id}`\n- deadline: {question.deadline:%Y-%m-%d %H:%M} UTC",
            "Reply: *Send Update* `reply` with this JSON:\n" + _fenced(reply, "json"),
        ]
    )


def _fenced(text: str, language: str = "text") -> str:
    """A code fence longer than any run of backticks inside, so nothing escapes it."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def ui_workflows_url(ui: str, namespace: str, query: str) -> str:
    """The Temporal UI's workflow list filtered by a visibility query (a saved filter)."""
    return f"{ui.rstrip('/')}/namespaces/{quote(namespace)}/workflows?query={quote(query)}"


def ui_run_url(ui: str, namespace: str, workflow_id: str) -> str:
    """The Temporal UI's page of one workflow."""
    return f"{ui.rstrip('/')}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id)}"


def waiting_for(approver: str | None) -> str:
    """The visibility query of runs waiting for an approval (for `approver`, if given)."""
    if approver is None:
        return sa.PENDING_QUERY
    escaped = approver.replace("\\", "\\\\").replace("'", "\\'")
    return f"{sa.PENDING_QUERY} AND {sa.APPROVERS.name} = '{escaped}'"


def names(requests: Iterable[ApprovalRequest]) -> list[str]:
    """Every approver of these requests, once, sorted."""
    return sorted({name for request in requests for name in request.approvers})


EDIT_CONTEXT = 2
"""Unchanged lines shown around each change of an edited argument."""


def edited_fields(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """What an approver's edit changed: per changed argument (in the order the run asked
    them, then added ones), its unified diff lines without the file headers.

    Text is compared line by line, any other value as indented JSON; a field missing on
    one side is empty there. The trace (`steward trace`) and the inbox both show this.
    """
    names = [*before, *(name for name in after if name not in before)]
    changed = []
    for name in names:
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        lines = difflib.unified_diff(_lines(old), _lines(new), lineterm="", n=EDIT_CONTEXT)
        changed.append((name, list(lines)[2:]))  # past the `---` and `+++` headers
    return changed


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return text.splitlines()
