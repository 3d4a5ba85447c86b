"""What waits for a person, across runs: approvals and open questions, oldest first.

Found as `steward pending` finds them (`steward.runs.pending` and `open_questions`, by
search attribute, querying only runs still running), each with the step its run is at and
the passages its draft was written from, read from the run's `progress` query; a run that
does not answer shows neither rather than hiding the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from steward.models import ApprovalRequest, Passage, RunProgress
from steward.questions import Question
from steward.runs import LISTING_QUERY_TIMEOUT, open_questions, pending


@dataclass
class Waiting:
    """Everything the inbox lists, and the runs that did not answer."""

    approvals: list[ApprovalRequest]
    questions: list[Question]
    steps: dict[str, str] = field(default_factory=dict)
    passages: dict[str, list[Passage]] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)


async def waiting(client: Client) -> Waiting:
    """Approvals and questions waiting now, each list oldest first, with their runs' steps."""
    unanswered: list[str] = []
    approvals = await pending(client, unanswered)
    questions = await open_questions(client, unanswered)
    runs = {request.workflow_id for request in approvals}
    runs |= {question.workflow_id for question in questions}
    found = Waiting(approvals, questions, unanswered=sorted(set(unanswered)))
    for workflow_id in sorted(runs):
        progress = await _progress(client, workflow_id)
        found.steps[workflow_id] = progress.step if progress else ""
        found.passages[workflow_id] = progress.passages if progress else []
    return found


async def _progress(client: Client, workflow_id: str) -> RunProgress | None:
    handle = client.get_workflow_handle(workflow_id)
    try:
        progress: RunProgress = await handle.query(
            "progress", result_type=RunProgress, rpc_timeout=LISTING_QUERY_TIMEOUT
        )
    except (RPCError, WorkflowQueryFailedError):
        return None
    return progress


def age(since: datetime, now: datetime | None = None) -> str:
    """How long ago `since` was, in the largest unit that fits (`3 min`, `2 h`, `5 d`)."""
    seconds = max(0, int(((now or datetime.now(UTC)) - since).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"
