"""Client-side operations on runs: start one, list what waits for a human, decide, reply.

Shared by the CLI, the demo and the tests so that each goes through exactly the same
checks. Bad input is refused here, before a workflow starts; the workflow checks again,
since any Temporal client can reach it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from steward import queues, signing
from steward import search_attributes as sa
from steward.config import ConfigError, StewardConfig
from steward.models import (
    AgentProfile,
    ApprovalDecision,
    ApprovalRequest,
    DecisionReceipt,
    RunRequest,
    RunResult,
    problems,
)
from steward.questions import Answer, Question, Reply
from steward.tickets import parse_ticket

PLAYBOOKS = {"support-reply": "SupportReplyWorkflow"}
"""Playbook name -> workflow type. A playbook's steps live in code, so each has its own."""

AGENT_WORKFLOW = "AgentWorkflow"


class RunError(Exception):
    """A run could not be started or decided; the message says why, for a person."""


def workflow_type(profile: AgentProfile) -> str:
    """The workflow type that runs this profile."""
    if profile.kind == "agent":
        return AGENT_WORKFLOW
    try:
        return PLAYBOOKS[profile.name]
    except KeyError:
        raise RunError(
            f"playbook {profile.name!r} has no workflow (playbooks: {', '.join(PLAYBOOKS)})"
        ) from None


def build_request(config: StewardConfig, target: str, text: str, principal: str) -> RunRequest:
    """Resolve the profile and check the input, raising RunError with a clear reason."""
    from activities.tools import default_specs

    try:
        profile = config.profile(target, default_specs())
        request = RunRequest(input=text, principal=principal, profile=profile)
    except ConfigError as err:
        raise RunError(str(err)) from None
    except ValidationError as err:
        reasons = (e["msg"].removeprefix("Value error, ") for e in err.errors())
        raise RunError("; ".join(reasons)) from None
    if workflow_type(profile) == PLAYBOOKS["support-reply"]:
        try:
            parse_ticket(text)
        except ValueError as err:
            raise RunError(f"bad ticket: {err}") from None
    return request


async def start_run(
    client: Client,
    config: StewardConfig,
    target: str,
    text: str,
    principal: str,
    *,
    task_queue: str = queues.DEFAULT,
    workflow_id: str | None = None,
) -> WorkflowHandle[object, RunResult]:
    """Start a run of a playbook or agent and return its handle."""
    request = build_request(config, target, text, principal)
    return await client.start_workflow(
        workflow_type(request.profile),
        request,
        id=workflow_id or f"{target}-{uuid.uuid4().hex[:10]}",
        task_queue=task_queue,
        result_type=RunResult,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.TARGET, target),
                SearchAttributePair(sa.PRINCIPAL, principal),
                SearchAttributePair(sa.STATUS, "running"),
            ]
        ),
    )


async def pending(client: Client) -> list[ApprovalRequest]:
    """Approval requests waiting across all runs, found by search attribute."""
    waiting: list[ApprovalRequest] = []
    async for execution in client.list_workflows(sa.PENDING_QUERY):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        waiting.extend(await handle.query("pending_approvals", result_type=list[ApprovalRequest]))
    return sorted(waiting, key=lambda request: request.requested_at)


SIGNING_KEY_ENV = "STEWARD_APPROVAL_KEY"


def signing_key() -> bytes:
    """The approver's own signing key, from their environment (never sent anywhere)."""
    key = os.environ.get(SIGNING_KEY_ENV, "")
    if not key:
        raise RunError(f"this approval must be signed: set {SIGNING_KEY_ENV} to your approval key")
    return key.encode()


QUERY_ATTEMPTS = 4
_TRANSIENT = {RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE}


def workflow_of(approval_id: str) -> str:
    """The workflow id an approval id belongs to (`WORKFLOW_ID:N`)."""
    workflow_id, sep, seq = approval_id.rpartition(":")
    if not sep or not workflow_id or not seq.isdigit():
        raise RunError(f"{approval_id!r} is not an approval id (expected WORKFLOW_ID:N)")
    return workflow_id


T = TypeVar("T")


async def _query(
    handle: WorkflowHandle[Any, Any], query: str, result_type: type[T], what: str
) -> T:
    """A query's answer, retried while the server has no worker for it yet; else RunError."""
    for attempt in range(QUERY_ATTEMPTS):
        try:
            answer: T = await handle.query(query, result_type=result_type)
            return answer
        except RPCError as err:
            # A query needs a worker; right after one died the server may give up on it
            # before another picks the query up. That passes; anything else does not.
            if err.status not in _TRANSIENT or attempt + 1 == QUERY_ATTEMPTS:
                raise RunError(f"cannot read {what} of {handle.id}: {err}") from None
            await asyncio.sleep(0.5 * (attempt + 1))
        except WorkflowQueryFailedError as err:
            raise RunError(f"cannot read {what} of {handle.id}: {err}") from None
    raise AssertionError("the last attempt returns or raises")


async def find_request(client: Client, approval_id: str) -> ApprovalRequest:
    """The pending request with this id, or RunError saying why there is none."""
    handle = client.get_workflow_handle(workflow_of(approval_id))
    waiting = await _query(handle, "pending_approvals", list[ApprovalRequest], "approvals")
    for request in waiting:
        if request.id == approval_id:
            return request
    raise RunError(f"no pending approval with id {approval_id!r}")


async def decide(
    client: Client,
    approval_id: str,
    approver: str,
    *,
    approve: bool,
    reason: str = "",
    digest: str | None = None,
    via: Literal["update", "signal"] = "update",
) -> tuple[ApprovalRequest, DecisionReceipt | None]:
    """Send a decision. By update the workflow answers at once (RunError if refused)."""
    request = await find_request(client, approval_id)
    decision = ApprovalDecision(
        request_id=approval_id,
        args_digest=digest or request.args_digest,
        approver=approver,
        approve=approve,
        reason=reason,
    )
    if request.signed:
        key = signing_key()
        decision = decision.model_copy(update={"signature": signing.sign(key, decision)})
    handle = client.get_workflow_handle(request.workflow_id)
    if via == "signal":
        await handle.signal("decide", decision)
        return request, None
    try:
        receipt = await handle.execute_update("decide", decision, result_type=DecisionReceipt)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise RunError(f"refused: {getattr(cause, 'message', None) or cause}") from None
    return request, receipt


async def open_questions(client: Client) -> list[Question]:
    """Questions waiting for a reply across all runs, found by search attribute."""
    waiting: list[Question] = []
    async for execution in client.list_workflows(sa.QUESTIONS_QUERY):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        waiting.extend(await handle.query("open_questions", result_type=list[Question]))
    return sorted(waiting, key=lambda question: question.asked_at)


async def find_question(client: Client, workflow_id: str, question_id: str | None) -> Question:
    """The run's open question with this id, or its only one; else RunError saying why."""
    handle = client.get_workflow_handle(workflow_id)
    waiting = await _query(handle, "open_questions", list[Question], "questions")
    if question_id is not None:
        for question in waiting:
            if question.id == question_id:
                return question
        raise RunError(f"no open question with id {question_id!r} in {workflow_id}")
    if not waiting:
        raise RunError(f"{workflow_id} has no open question")
    if len(waiting) > 1:
        ids = ", ".join(question.id for question in waiting)
        raise RunError(
            f"{workflow_id} has {len(waiting)} open questions ({ids}): name one with --question"
        )
    return waiting[0]


async def reply(
    client: Client,
    workflow_id: str,
    text: str,
    sender: str,
    question_id: str | None = None,
    *,
    via: Literal["update", "signal"] = "update",
) -> tuple[Question, Answer | None]:
    """Answer a run's open question. By update the workflow answers at once (RunError if
    refused); by signal a refusal only shows in the run's `refused_replies`.
    """
    question = await find_question(client, workflow_id, question_id)
    try:
        message = Reply(question_id=question.id, text=text, sender=sender)
    except ValidationError as err:
        raise RunError(f"bad reply: {problems(err, 'reply')}") from None
    handle = client.get_workflow_handle(workflow_id)
    if via == "signal":
        await handle.signal("reply", message)
        return question, None
    try:
        answer = await handle.execute_update("reply", message, result_type=Answer)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise RunError(f"refused: {getattr(cause, 'message', None) or cause}") from None
    return question, answer
