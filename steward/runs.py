"""Client-side operations on runs: start one, list what waits for a human, decide, reply.

Shared by the CLI, the demo and the tests so that each goes through exactly the same
checks. Bad input is refused here, before a workflow starts; the workflow checks again,
since any Temporal client can reach it. Nothing a client sends decides what a run may do:
the run input names a target, and the workers resolve it from their own steward.yaml.
A client's config is read only to refuse an obvious mistake early (a misspelt target).

Where a person has a key (`steward keys new NAME`), starts and decisions are signed with
it, so the run can prove who asked and who approved.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, Field, ValidationError
from temporalio.api.failure.v1 import Failure
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from steward import authority, queues, signing, tools
from steward import search_attributes as sa
from steward.approval_view import visible
from steward.config import ConfigError, StewardConfig
from steward.errors import RequestError
from steward.models import (
    ApprovalDecision,
    ApprovalRequest,
    DecisionReceipt,
    DecisionRecord,
    RunProgress,
    RunRequest,
    RunResult,
    StartSignature,
    Strict,
    problems,
)
from steward.questions import Answer, Question, Reply
from steward.targets import PLAYBOOKS, workflow_type
from steward.tickets import parse_ticket

REUSE_POLICY = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
"""A workflow id names one piece of work: `steward run --id` may start it again only after
a run of it failed, was cancelled or terminated, never after one completed (that would do
the work twice). Other clients may choose otherwise; every run is scoped by its own run
id, so nothing from an earlier run of the same id counts in a later one either way."""

KEY_FILE_VARIABLE = "STEWARD_KEY_FILE"


class RunError(RequestError):
    """A run could not be started, found or decided as asked; the message says why, for a
    person, and what they asked must change (the CLI exits 2).
    """


def build_request(
    config: StewardConfig | None, target: str, text: str, principal: str
) -> RunRequest:
    """The run input, checked, raising RunError with a clear reason.

    With a `config`, a target it does not know is refused here already; it is only the
    client's view (the workers decide), so it can refuse, never grant.
    """
    try:
        request = RunRequest(target=target, input=text, principal=principal)
    except ValidationError as err:
        raise RunError(f"bad run input: {problems(err, 'input')}") from None
    if config is not None:
        try:
            config.profile(target, tools.default_specs())
        except ConfigError as err:
            raise RunError(str(err)) from None
    if workflow_type(target) == PLAYBOOKS["support-reply"]:
        try:
            parse_ticket(text)
        except ValueError as err:
            raise RunError(f"bad ticket: {err}") from None
    return request


def private_key(person: str, path: str | Path | None = None) -> Ed25519PrivateKey | None:
    """`person`'s private key: the file given, else $STEWARD_KEY_FILE, else theirs in the
    keys directory; None when there is none to find (RunError if one is broken).
    """
    chosen = path or os.environ.get(KEY_FILE_VARIABLE)
    candidate = Path(chosen) if chosen else signing.key_path(person)
    if not chosen and not candidate.is_file():
        return None
    try:
        return signing.load_private_key(candidate)
    except signing.SigningKeyError as err:
        raise RunError(str(err)) from None


def required_key(person: str, path: str | Path | None, why: str) -> Ed25519PrivateKey:
    """`person`'s private key, or RunError saying how to make one."""
    key = private_key(person, path)
    if key is None:
        raise RunError(
            f"{why}: no key for {person!r} (looked in {signing.key_path(person)}); make one "
            f"with `steward keys new {person}` and have its public key listed in steward.yaml"
        )
    return key


def sign_start(
    key: Ed25519PrivateKey, request: RunRequest, workflow_id: str, now: datetime | None = None
) -> RunRequest:
    """The request with its principal's signature over this start."""
    issued = now or datetime.now(UTC)
    message = signing.start_message(
        workflow_id=workflow_id,
        target=request.target,
        principal=request.principal,
        input_sha256=signing.text_sha256(request.input),
        issued_at=issued,
    )
    signed = StartSignature(issued_at=issued, signature=signing.sign(key, message))
    return request.model_copy(update={"start_signature": signed})


def new_workflow_id(target: str) -> str:
    """A fresh workflow id for a run of `target`."""
    return f"{target}-{uuid.uuid4().hex[:10]}"


async def start_run(
    client: Client,
    config: StewardConfig | None,
    target: str,
    text: str,
    principal: str,
    *,
    task_queue: str = queues.DEFAULT,
    workflow_id: str | None = None,
    key: Ed25519PrivateKey | None = None,
) -> WorkflowHandle[object, RunResult]:
    """Start a run of a playbook or agent and return its handle (signed with `key`)."""
    request = build_request(config, target, text, principal)
    run_id = workflow_id or new_workflow_id(target)
    if key is not None:
        request = sign_start(key, request, run_id)
    try:
        return await client.start_workflow(
            workflow_type(target),
            request,
            id=run_id,
            task_queue=task_queue,
            result_type=RunResult,
            id_reuse_policy=REUSE_POLICY,
            # A worker of this process serving the queue (an eval, a test, an embedding
            # app) takes the first workflow task in the start's reply, not by polling for
            # it; with none, the start is as it was.
            request_eager_start=True,
            # Shown in the UI's workflow list; names only, never the task (it is plaintext).
            static_summary=f"{target} for {visible(principal)}",
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TARGET, target),
                    SearchAttributePair(sa.PRINCIPAL, principal),
                    SearchAttributePair(sa.STATUS, "running"),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        raise RunError(await _taken(client, run_id)) from None


async def _taken(client: Client, workflow_id: str) -> str:
    """Why `workflow_id` cannot start again, saying what its last run is doing."""
    described = await client.get_workflow_handle(workflow_id).describe()
    state = described.status.name.lower() if described.status else "unknown"
    return (
        f"workflow id {workflow_id!r} is taken: its last run is {state}, and an id is "
        "reused only after its run failed or was cancelled or terminated; choose another "
        f"id, or leave it out for a fresh one (`steward status {workflow_id}` shows the run)"
    )


LISTING_QUERY_TIMEOUT = timedelta(seconds=5)


async def pending(client: Client, unanswered: list[str] | None = None) -> list[ApprovalRequest]:
    """Approval requests waiting across all runs, found by search attribute.

    A run that cannot answer (no worker polls its queue) is left out, its id added to
    `unanswered`: one dead run must not hide every other run's requests.
    """
    waiting: list[ApprovalRequest] = []
    async for execution in client.list_workflows(sa.PENDING_QUERY):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            waiting.extend(
                await handle.query(
                    "pending_approvals",
                    result_type=list[ApprovalRequest],
                    rpc_timeout=LISTING_QUERY_TIMEOUT,
                )
            )
        except (RPCError, WorkflowQueryFailedError):
            if unanswered is not None:
                unanswered.append(execution.id)
    return sorted(waiting, key=lambda request: request.requested_at)


QUERY_ATTEMPTS = 4
_TRANSIENT = {RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE}


_APPROVAL_SEQ = re.compile(r"(?:[0-9a-f]{8}-)?[0-9]+")


def workflow_of(approval_id: str) -> str:
    """The workflow id an approval id belongs to (`WORKFLOW_ID:RUN-N`, or `WORKFLOW_ID:N`
    for runs recorded before approvals were scoped to the run).
    """
    workflow_id, sep, seq = approval_id.rpartition(":")
    if not sep or not workflow_id or not _APPROVAL_SEQ.fullmatch(seq):
        raise RunError(
            f"{approval_id[:120]!r} is not an approval id (expected WORKFLOW_ID:RUN-N, "
            "as `steward pending` lists them)"
        )
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
            # before another picks the query up. That passes; anything else does not, and
            # keeps its type: an unknown run (NOT_FOUND) is the caller's to fix, a server
            # that does not answer is not.
            if err.status not in _TRANSIENT or attempt + 1 == QUERY_ATTEMPTS:
                raise
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


def check_decision(
    approval_id: str,
    approver: str,
    *,
    approve: bool,
    reason: str = "",
    digest: str | None = None,
) -> None:
    """RunError if a decision with these values would be malformed, before anything is read
    or sent: ApprovalDecision's own bounds, so a 5,000-character reason is refused here, in
    one line, and never by the run. Only the request's digest may be unknown yet.
    """
    workflow_of(approval_id)
    given: dict[str, object] = {
        "request_id": approval_id,
        "approver": approver,
        "approve": approve,
        "reason": reason,
    }
    if digest:
        given["args_digest"] = digest
    found = _shape_problems(ApprovalDecision, given, unknown="args_digest")
    if found:
        raise RunError(f"bad decision: {found}")


def check_reply(text: str, sender: str, question_id: str | None = None) -> None:
    """RunError if a reply with these values would be malformed, before anything is read or
    sent (Reply's own bounds). Without `question_id`, the run's only open question is meant.
    """
    given: dict[str, object] = {"text": text, "sender": sender}
    if question_id is not None:
        given["question_id"] = question_id
    found = _shape_problems(Reply, given, unknown="question_id")
    if found:
        raise RunError(f"bad reply: {found}")


def _shape_problems(model: type[BaseModel], given: dict[str, object], *, unknown: str) -> str:
    """What is wrong with `given` as a `model`, leaving out the one field not known yet."""
    try:
        model.model_validate(given)
    except ValidationError as err:
        return "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            for problem in err.errors()
            if not (problem["type"] == "missing" and problem["loc"] == (unknown,))
        )
    return ""


def make_decision(
    request: ApprovalRequest,
    approver: str,
    *,
    approve: bool,
    reason: str = "",
    digest: str | None = None,
    key: Ed25519PrivateKey | None = None,
    arguments: dict[str, Any] | None = None,
) -> ApprovalDecision:
    """A decision on `request` (signed with `key`), RunError naming a field that is wrong.

    With `arguments`, it approves the call with those arguments instead (an edit), written
    as the tool writes them.
    """
    if arguments is not None:
        arguments = normalized_arguments(request.tool, arguments)
        if arguments == request.arguments:
            arguments = None  # nothing changed: a plain approval
    try:
        decision = ApprovalDecision(
            request_id=request.id,
            args_digest=digest or request.args_digest,
            approver=approver,
            approve=approve,
            reason=reason,
            arguments=arguments,
        )
    except ValidationError as err:
        raise RunError(f"bad decision: {problems(err, 'decision')}") from None
    if key is None:
        return decision
    signature = signing.sign(key, authority.decision_message(request, decision))
    return decision.model_copy(update={"signature": signature})


def normalized_arguments(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Edited arguments as a built-in tool's schema writes them (RunError if they do not
    fit it); an MCP tool's as given (the run checks them against its server's schema).
    """
    entry = tools.find(tool)
    if entry is None:
        return arguments
    try:
        return entry.normalized(arguments)
    except ValidationError as err:
        raise RunError(f"your edit does not fit {tool}: {problems(err, 'arguments')}") from None


SIGNAL_SETTLE_SECONDS = 5.0


async def decide(
    client: Client,
    approval_id: str,
    approver: str,
    *,
    approve: bool,
    reason: str = "",
    digest: str | None = None,
    key_file: str | Path | None = None,
    arguments: dict[str, Any] | None = None,
) -> tuple[ApprovalRequest, DecisionReceipt]:
    """Send a decision by update, signed when the approver has a key; RunError if refused.

    With `arguments`, it approves the call with those arguments instead (an edit).
    """
    request, decision = await _prepared(
        client, approval_id, approver, approve, reason, digest, key_file, arguments
    )
    handle = client.get_workflow_handle(request.workflow_id)
    try:
        receipt = await handle.execute_update("decide", decision, result_type=DecisionReceipt)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise RunError(f"refused: {getattr(cause, 'message', None) or cause}") from None
    return request, receipt


async def decide_by_signal(
    client: Client,
    approval_id: str,
    approver: str,
    *,
    approve: bool,
    reason: str = "",
    digest: str | None = None,
    key_file: str | Path | None = None,
    arguments: dict[str, Any] | None = None,
) -> tuple[ApprovalRequest, DecisionRecord | None]:
    """Send a decision by signal, then read the run's `decisions` record until it shows what
    became of it: the record when accepted, RunError when refused, None if the run did not
    say within a few seconds.
    """
    request, decision = await _prepared(
        client, approval_id, approver, approve, reason, digest, key_file, arguments
    )
    handle = client.get_workflow_handle(request.workflow_id)
    seen = len(await _query(handle, "decisions", list[DecisionRecord], "decisions"))
    await handle.signal("decide", decision)
    record = await _settled(handle, decision, seen)
    if record is not None and not record.accepted:
        raise RunError(f"refused: {record.reason}")
    return request, record


async def _prepared(
    client: Client,
    approval_id: str,
    approver: str,
    approve: bool,
    reason: str,
    digest: str | None,
    key_file: str | Path | None,
    arguments: dict[str, Any] | None = None,
) -> tuple[ApprovalRequest, ApprovalDecision]:
    """The waiting request, and the decision on it (signed when the approver has a key)."""
    request = await find_request(client, approval_id)
    key = (
        required_key(approver, key_file, f"{request.id} needs a signed decision")
        if request.signed
        else private_key(approver, key_file)
    )
    decision = make_decision(
        request,
        approver,
        approve=approve,
        reason=reason,
        digest=digest,
        key=key,
        arguments=arguments,
    )
    return request, decision


async def _settled(
    handle: WorkflowHandle[Any, Any], decision: ApprovalDecision, seen: int
) -> DecisionRecord | None:
    """The run's record of a decision sent by signal, once the run has handled it."""
    deadline = asyncio.get_running_loop().time() + SIGNAL_SETTLE_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        try:
            records = await _query(handle, "decisions", list[DecisionRecord], "decisions")
        except (RunError, RPCError):
            return None  # the run ended with this decision, say; status will tell
        # The record keeps the newest 200: count back from the end for what is new.
        fresh = records[seen:] if len(records) > seen else records[-1:]
        for record in reversed(fresh):
            if record.request_id == decision.request_id and record.approver == decision.approver:
                return record
        await asyncio.sleep(0.1)
    return None


async def open_questions(client: Client, unanswered: list[str] | None = None) -> list[Question]:
    """Questions waiting for a reply across all runs, found by search attribute (runs that
    cannot answer are left out and added to `unanswered`, as in `pending`).
    """
    waiting: list[Question] = []
    async for execution in client.list_workflows(sa.QUESTIONS_QUERY):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            waiting.extend(
                await handle.query(
                    "open_questions", result_type=list[Question], rpc_timeout=LISTING_QUERY_TIMEOUT
                )
            )
        except (RPCError, WorkflowQueryFailedError):
            if unanswered is not None:
                unanswered.append(execution.id)
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


class PendingActivity(Strict):
    """An activity the server still has in flight for a run: what it is and how it fares."""

    activity: str
    attempt: int
    last_failure: str = ""


class StatusReport(Strict):
    """What `steward status` shows: the run's state, and its progress, result or failure."""

    workflow_id: str
    execution: str
    progress: RunProgress | None = None
    result: RunResult | None = None
    failure: str | None = None
    activities: list[PendingActivity] = Field(
        default_factory=list, description="in flight now, with their retries"
    )


async def status(client: Client, workflow_id: str) -> StatusReport:
    """A run's state: a running one by its `progress` query, a finished one by its end."""
    handle = client.get_workflow_handle(workflow_id, result_type=RunResult)
    described = await handle.describe()
    state = described.status.name.lower() if described.status else "unknown"
    report = StatusReport(workflow_id=workflow_id, execution=state)
    if described.status == WorkflowExecutionStatus.RUNNING:
        report.progress = await _query(handle, "progress", RunProgress, "progress")
        report.activities = [
            PendingActivity(
                activity=pending.activity_type.name,
                attempt=pending.attempt,
                last_failure=await _failure_line(client, pending.last_failure),
            )
            for pending in described.raw_description.pending_activities
        ]
    elif described.status == WorkflowExecutionStatus.COMPLETED:
        report.result = await handle.result()
    else:
        try:
            await handle.result()
        except WorkflowFailureError as err:
            report.failure = str(err.cause)
    return report


async def _failure_line(client: Client, failure: Failure) -> str:
    """An activity's last failure as one line, `Type: message` (decrypted with the client's
    codec; empty if it has not failed yet).
    """
    if not failure.ByteSize():
        return ""
    error = await client.data_converter.decode_failure(failure)
    kind = error.type if isinstance(error, ApplicationError) and error.type else ""
    text = " ".join(str(getattr(error, "message", error)).split())[:300]
    return f"{kind}: {text}" if kind else text
