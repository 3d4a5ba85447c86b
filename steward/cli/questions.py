"""`steward reply`: answer a question a run asked, the other half of `steward pending`."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer

from steward.cli.common import run
from steward.client import connect

if TYPE_CHECKING:
    from steward.questions import Question


def reply_command(
    workflow_id: Annotated[
        str, typer.Argument(metavar="WORKFLOW_ID", help="the run that asked (from `pending`)")
    ],
    text: Annotated[str, typer.Argument(help="your reply; the run reads it as data")],
    sender: Annotated[str, typer.Option("--as", help="your name, as the question's audience")],
    question_id: Annotated[
        str | None,
        typer.Option("--question", help="which question, when the run has several open"),
    ] = None,
    signal: Annotated[
        bool,
        typer.Option("--signal", help="send as a signal (fire and forget) instead of an update"),
    ] = False,
) -> None:
    """Reply to a question a run is waiting on. Refused unless you may answer it."""
    from steward.runs import check_reply, reply

    check_reply(text, sender, question_id)

    async def go() -> None:
        question, answer = await reply(
            await connect(),
            workflow_id,
            text,
            sender,
            question_id,
            via="signal" if signal else "update",
        )
        if answer is None:
            typer.echo(f"sent: reply to {question.id} as {sender} (signal; see `steward status`)")
        else:
            typer.echo(f"answered: {question.id} by {answer.sender}; {workflow_id} goes on")

    run(go())


def describe_questions(questions: list[Question]) -> None:
    """Print open questions the way `steward pending` lists them, each with its reply command."""
    per_run = Counter(question.workflow_id for question in questions)
    for question in questions:
        text = " ".join(question.question.split())
        typer.echo(question.id)
        typer.echo(f"  question:  {text[:200]}{'...' if len(text) > 200 else ''}")
        typer.echo(
            f"  asked:     by {question.asked_by} for {question.principal} "
            f"at {question.asked_at:%Y-%m-%d %H:%M:%S}Z"
        )
        typer.echo(f"  deadline:  {question.deadline:%Y-%m-%d %H:%M:%S}Z")
        typer.echo(f"  audience:  {', '.join(question.audience) or 'anyone'}")
        which = f" --question {question.id}" if per_run[question.workflow_id] > 1 else ""
        typer.echo(f'  reply:     steward reply {question.workflow_id} "..." --as NAME{which}')
