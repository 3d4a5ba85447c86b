"""`steward pending`, `steward approve`, `steward reject`: the human side of the gate.

`pending` lists open questions too (answered with `steward reply`, in `cli.questions`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from steward.cli.common import KeyOption, run, ui_base, ui_link
from steward.cli.questions import describe_questions
from steward.client import connect

if TYPE_CHECKING:
    from temporalio.client import Client

    from steward.models import ApprovalRequest

AsOption = Annotated[str, typer.Option("--as", help="your approver name, as in steward.yaml")]
DigestOption = Annotated[
    str | None,
    typer.Option(help="the argument digest you reviewed; refused if the call changed"),
]
SignalOption = Annotated[
    bool, typer.Option("--signal", help="send as a signal instead of an update")
]


def pending_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List approvals waiting across all runs, then open questions (by search attribute)."""
    from steward import approval_view
    from steward.runs import open_questions, pending

    async def go() -> None:
        client = await connect()
        unanswered: list[str] = []
        waiting = await pending(client, unanswered)
        questions = await open_questions(client, unanswered)
        if as_json:
            listed = {
                "approvals": [request.model_dump(mode="json") for request in waiting],
                "questions": [question.model_dump(mode="json") for question in questions],
                "unanswered": sorted(set(unanswered)),
            }
            typer.echo(json.dumps(listed, indent=2))
            return
        if not waiting:
            typer.echo("no approvals waiting")
        for request in waiting:
            _describe(request, client.namespace)
        base = ui_base()
        if waiting and base:
            for name in approval_view.names(waiting):
                query = approval_view.waiting_for(name)
                url = approval_view.ui_workflows_url(base, client.namespace, query)
                typer.echo(f"waiting for {name} in the UI: {url}")
        if not questions:
            typer.echo("no questions open")
        describe_questions(questions)
        if unanswered:
            typer.echo(
                f"{len(set(unanswered))} waiting run(s) did not answer (no worker polls their "
                f"queue?): {', '.join(sorted(set(unanswered)))}"
            )

    run(go())


def approve_command(
    approval_id: Annotated[str, typer.Argument(metavar="ID", help="approval id from `pending`")],
    approver: AsOption,
    reason: Annotated[str, typer.Option(help="note kept with the decision")] = "",
    digest: DigestOption = None,
    signal: SignalOption = False,
    key: KeyOption = None,
    edit: Annotated[
        bool,
        typer.Option("--edit", help="edit the arguments in $EDITOR first; approve the edit"),
    ] = False,
) -> None:
    """Approve one waiting action. Refused unless you are an allowed approver.

    Signed with your key when you have one (`steward keys new NAME`); where the rule needs
    signed decisions, a key is required. With --edit, you approve your edit of the call
    (fix the draft, drop a sentence); fields the tool locks, like an email's `to`, stay.
    """
    _decide(approval_id, approver, True, reason, digest, signal, key, edit)


def reject_command(
    approval_id: Annotated[str, typer.Argument(metavar="ID", help="approval id from `pending`")],
    approver: AsOption,
    reason: Annotated[str, typer.Option(help="why; the run records it")],
    digest: DigestOption = None,
    signal: SignalOption = False,
    key: KeyOption = None,
) -> None:
    """Reject one waiting action; the run ends without doing it."""
    _decide(approval_id, approver, False, reason, digest, signal, key)


def _decide(
    approval_id: str,
    approver: str,
    approve: bool,
    reason: str,
    digest: str | None,
    signal: bool,
    key: Path | None,
    edit: bool = False,
) -> None:
    from steward.runs import check_decision, decide, decide_by_signal

    check_decision(approval_id, approver, approve=approve, reason=reason, digest=digest)

    async def go() -> None:
        client = await connect()
        verb = "approved" if approve else "rejected"
        arguments = await _edited(client, approval_id) if edit else None
        if signal:
            request, record = await decide_by_signal(
                client,
                approval_id,
                approver,
                approve=approve,
                reason=reason,
                digest=digest,
                key_file=key,
                arguments=arguments,
            )
            if record is None:
                typer.echo(
                    f"sent: {verb} {approval_id} as {approver} by signal; the run has not "
                    "said yet what it made of it (`steward status` shows refusals)"
                )
            else:
                typer.echo(
                    f"accepted: {verb} {request.tool} in {request.workflow_id} by {approver}"
                )
            return
        request, receipt = await decide(
            client,
            approval_id,
            approver,
            approve=approve,
            reason=reason,
            digest=digest,
            key_file=key,
            arguments=arguments,
        )
        if arguments is not None:
            typer.echo(f"edited: {request.tool} now waits on digest {receipt.args_digest}")
        if receipt.status == "awaiting_more":
            typer.echo(
                f"recorded: {len(receipt.approved_by)} of {receipt.required} approvals for "
                f"{request.tool} in {request.workflow_id} ({', '.join(receipt.approved_by)})"
            )
        else:
            typer.echo(f"{receipt.status}: {request.tool} in {request.workflow_id} by {approver}")

    run(go())


async def _edited(client: Client, approval_id: str) -> dict[str, Any] | None:
    """The waiting call's arguments as you edit them in $EDITOR; None if left unchanged."""
    import asyncio

    import click

    from steward.runs import RunError, find_request

    request = await find_request(client, approval_id)
    original = json.dumps(request.arguments, indent=2, ensure_ascii=False) + "\n"
    text = await asyncio.to_thread(click.edit, original, extension=".json")
    if text is None or text == original:
        return None
    try:
        edited = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunError(f"your edit is not JSON (line {err.lineno}: {err.msg})") from None
    if not isinstance(edited, dict):
        raise RunError("your edit must stay a JSON object of the tool's arguments")
    return edited


def _describe(request: ApprovalRequest, namespace: str) -> None:
    from steward import approval_view
    from steward.approval_view import visible

    typer.echo(f"{request.id}")
    typer.echo(f"  tool:      {request.tool}  (digest {request.args_digest})")
    typer.echo(
        f"  requested: by {visible(request.requester)} at {request.requested_at:%Y-%m-%d %H:%M:%S}Z"
    )
    typer.echo(f"  deadline:  {request.deadline:%Y-%m-%d %H:%M:%S}Z")
    typer.echo(f"  approvers: {approval_view.needs(request)}")
    if request.approved_by:
        typer.echo(f"  approved:  {', '.join(request.approved_by)} so far")
    if request.edits:
        typer.echo(f"  edited:    by {', '.join(edit.by for edit in request.edits)}")
    for flag in request.flags:
        typer.echo(f"  FLAGGED:   {visible(flag)}")
    for line in approval_view.argument_lines(request.arguments):
        typer.echo(line)
    typer.echo(f"  approve:   steward approve {request.id} --as NAME  (--edit to change it first)")
    link = ui_link(request.workflow_id, namespace)
    if link:
        typer.echo(f"  in the UI: {link}")
