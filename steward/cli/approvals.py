"""`steward pending`, `steward approve`, `steward reject`: the human side of the gate.

`pending` lists open questions too (answered with `steward reply`, in `cli.questions`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from steward.cli.common import run
from steward.cli.keys import KeyOption
from steward.cli.questions import describe_questions
from steward.client import connect
from steward.models import ApprovalRequest
from steward.runs import check_decision, decide, decide_by_signal, open_questions, pending

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

    async def go() -> None:
        client = await connect()
        waiting = await pending(client)
        questions = await open_questions(client)
        if as_json:
            listed = {
                "approvals": [request.model_dump(mode="json") for request in waiting],
                "questions": [question.model_dump(mode="json") for question in questions],
            }
            typer.echo(json.dumps(listed, indent=2))
            return
        if not waiting:
            typer.echo("no approvals waiting")
        for request in waiting:
            _describe(request)
        if not questions:
            typer.echo("no questions open")
        describe_questions(questions)

    run(go())


def approve_command(
    approval_id: Annotated[str, typer.Argument(metavar="ID", help="approval id from `pending`")],
    approver: AsOption,
    reason: Annotated[str, typer.Option(help="note kept with the decision")] = "",
    digest: DigestOption = None,
    signal: SignalOption = False,
    key: KeyOption = None,
) -> None:
    """Approve one waiting action. Refused unless you are an allowed approver.

    Signed with your key when you have one (`steward keys new NAME`); where the rule needs
    signed decisions, a key is required.
    """
    _decide(approval_id, approver, True, reason, digest, signal, key)


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
) -> None:
    check_decision(approval_id, approver, approve=approve, reason=reason, digest=digest)

    async def go() -> None:
        client = await connect()
        verb = "approved" if approve else "rejected"
        if signal:
            request, record = await decide_by_signal(
                client,
                approval_id,
                approver,
                approve=approve,
                reason=reason,
                digest=digest,
                key_file=key,
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
        )
        if receipt.status == "awaiting_more":
            typer.echo(
                f"recorded: {len(receipt.approved_by)} of {receipt.required} approvals for "
                f"{request.tool} in {request.workflow_id} ({', '.join(receipt.approved_by)})"
            )
        else:
            typer.echo(f"{receipt.status}: {request.tool} in {request.workflow_id} by {approver}")

    run(go())


def _describe(request: ApprovalRequest) -> None:
    typer.echo(f"{request.id}")
    typer.echo(f"  tool:      {request.tool}  (digest {request.args_digest})")
    typer.echo(f"  requested: by {request.requester} at {request.requested_at:%Y-%m-%d %H:%M:%S}Z")
    typer.echo(f"  deadline:  {request.deadline:%Y-%m-%d %H:%M:%S}Z")
    needs = f"{request.required} of " if request.required > 1 else "one of "
    typer.echo(f"  approvers: {needs}{', '.join(request.approvers)}")
    if request.approved_by:
        typer.echo(f"  approved:  {', '.join(request.approved_by)} so far")
    for key, value in request.arguments.items():
        text = str(value).replace("\n", " ")
        typer.echo(f"  {key}: {text[:100]}{'...' if len(text) > 100 else ''}")
    typer.echo(f"  approve:   steward approve {request.id} --as NAME")
