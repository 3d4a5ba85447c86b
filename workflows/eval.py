"""EvalWorkflow: run a suite's cases as child workflows, answer their approvals, score them.

Each case is a child run of the playbook or agent it names (`SupportReplyWorkflow`,
`AgentWorkflow`, ...), started with the case's resolved `RunRequest`, at most
`concurrency` at a time. Children run on the eval worker's queue, whose tools are the
sandbox (recorded, never performed); scripted cases run on the scripted queue, whose model
answers from the case's script. When a child waits for approval, the sandbox's
`notify_approvers` signals this workflow, which answers as the case scripts (approve,
reject, or let it time out, after an optional delay) with the ordinary `decide` signal.

A finished child is scored by an activity that reads its result and its history; LLM
judges are model calls made from here, through the `complete` activity on the judge's
tier, and their cost is kept apart from the run's. Everything is in this workflow's
history, so a crashed worker resumes the eval where it was: finished cases are not run
again, running children carry on. A long suite continues as new between cases.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, FailureError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

from steward.models import ApprovalRequest, LegacyRunRequest, RunRequest, RunResult
from workflows.options import MODEL_CALL_RETRY, MODEL_CALL_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from activities.evals import EvalActivities
    from activities.llm import LLMActivities
    from evals.approvals import decisions_for, step_for
    from evals.expectations import JudgeSpec
    from evals.judge import judge_failed, judge_request, judge_score
    from evals.labels import label_all
    from evals.models import (
        APPROVAL_PENDING_SIGNAL,
        CaseOutcome,
        CaseScores,
        EvalCase,
        EvalProgress,
        EvalRequest,
        EvalResult,
        Score,
        ScoreRequest,
    )
    from evals.script import SCRIPT_MEMO

SCORE_TIMEOUT = timedelta(minutes=2)
SCORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
DECIDE = "decide"
ANSWER_PREVIEW_CHARS = 300


@workflow.defn(name="EvalWorkflow")
class EvalWorkflow:
    """Runs an eval's cases as children, answers their approvals, and scores them."""

    def __init__(self) -> None:
        self.suite = ""
        self.total = 0
        self.outcomes: dict[str, CaseOutcome] = {}
        self.running: dict[str, str] = {}
        self.notices: dict[str, list[ApprovalRequest]] = {}
        self.seen_notices: set[tuple[str, bool]] = set()

    @workflow.run
    async def run(self, request: EvalRequest) -> EvalResult:
        """Run every case not yet done, then return all outcomes in suite order."""
        self.suite, self.total = request.suite, len(request.cases)
        self.outcomes = {outcome.id: outcome for outcome in request.done}
        started_at = request.started_at or workflow.now()
        todo = [case for case in request.cases if case.id not in self.outcomes]
        tasks: list[asyncio.Task[None]] = []
        left: list[EvalCase] = []
        for index, case in enumerate(todo):
            await workflow.wait_condition(lambda: len(self.running) < request.concurrency)
            if _history_is_long(request):
                left = todo[index:]
                break
            self.running[case.id] = "starting"
            tasks.append(asyncio.create_task(self._run_case(case, request)))
        await asyncio.gather(*tasks)
        ordered = [self.outcomes[c.id] for c in request.cases if c.id in self.outcomes]
        if left:
            workflow.continue_as_new(
                request.model_copy(update={"done": ordered, "started_at": started_at})
            )
        return EvalResult(
            suite=request.suite,
            eval_id=workflow.info().workflow_id,
            started_at=started_at,
            finished_at=workflow.now(),
            concurrency=request.concurrency,
            labels=request.labels,
            outcomes=ordered,
        )

    @workflow.signal(name=APPROVAL_PENDING_SIGNAL)
    def approval_pending(self, *sent: object) -> None:
        """A child waits for approval (sent by the eval worker's sandbox notifier).

        Any other payload (none, two, null, the wrong shape) is logged and ignored: a
        signal handler that raised would fail the workflow task on every retry.
        """
        try:
            if len(sent) != 1:
                raise ValueError(f"expected one approval request, got {len(sent)} arguments")
            request = ApprovalRequest.model_validate(sent[0])
        except (ValidationError, ValueError, TypeError) as err:
            workflow.logger.warning("ignored a malformed approval notice: %s", err)
            return
        stage = (request.id, request.escalated)
        if stage in self.seen_notices:  # a retried notifier tells twice; answer once
            return
        self.seen_notices.add(stage)
        self.notices.setdefault(request.workflow_id, []).append(request)

    @workflow.query(name="progress")
    def progress(self) -> EvalProgress:
        """Cases done and passing, what runs now, and the cost so far (judges apart)."""
        done = list(self.outcomes.values())
        return EvalProgress(
            suite=self.suite,
            total=self.total,
            done=len(done),
            passed=sum(1 for o in done if o.passed),
            errors=sum(1 for o in done if o.error),
            running=dict(self.running),
            cost_usd=sum(o.cost_usd for o in done),
            judge_cost_usd=sum(o.judge_cost_usd for o in done),
        )

    async def _run_case(self, case: EvalCase, request: EvalRequest) -> None:
        child_id = f"{workflow.info().workflow_id}.{case.id}"
        result: RunResult | None = None
        error = ""
        run_id = ""
        try:
            handle = await workflow.start_child_workflow(
                case.workflow_type,
                _as_child(case.request),
                id=child_id,
                task_queue=(request.scripted_queue if case.script else workflow.info().task_queue),
                result_type=RunResult,
                execution_timeout=timedelta(seconds=case.timeout_seconds),
                memo={SCRIPT_MEMO: case.script} if case.script else None,
                parent_close_policy=ParentClosePolicy.TERMINATE,
            )
            run_id = handle.first_execution_run_id or ""
            self.running[case.id] = "running"
            await self._answer_approvals(case, handle)
            result = await handle
        except ChildWorkflowError as err:
            error = _failure_text(err)
        except FailureError as err:  # e.g. the child could not start
            error = f"{type(err).__name__}: {err}"
        self.running[case.id] = "scoring"
        self.outcomes[case.id] = await self._score(case, child_id, run_id, result, error)
        del self.running[case.id]
        self.notices.pop(child_id, None)

    async def _answer_approvals(
        self, case: EvalCase, handle: ChildWorkflowHandle[object, RunResult]
    ) -> None:
        """Answer each approval notice of the child as the case scripts, until it ends."""
        answered = 0
        while True:
            await workflow.wait_condition(
                lambda: handle.done() or bool(self.notices.get(handle.id))
            )
            if handle.done():
                return
            notice = self.notices[handle.id].pop(0)
            step = step_for(case.approvals, answered)
            answered += 1
            self.running[case.id] = f"approval {answered}: {step.decision}"
            if step.after_seconds:
                await workflow.sleep(step.after_seconds)
            for decision in decisions_for(notice, step):
                if handle.done():
                    return
                try:
                    await handle.signal(DECIDE, decision)
                except FailureError as err:
                    workflow.logger.info("decision for %s not delivered: %s", notice.id, err)
                    return
            self.running[case.id] = "running"

    async def _score(
        self,
        case: EvalCase,
        workflow_id: str,
        run_id: str,
        result: RunResult | None,
        error: str,
    ) -> CaseOutcome:
        data = result.model_dump(mode="json") if result is not None else None
        names = label_all(case.expect)
        problem = ""
        try:
            found = await workflow.execute_activity_method(
                EvalActivities.score_case,
                ScoreRequest(
                    case_id=case.id,
                    workflow_id=workflow_id,
                    run_id=run_id,
                    result=data,
                    error=error,
                    expect=case.expect,
                ),
                start_to_close_timeout=SCORE_TIMEOUT,
                retry_policy=SCORE_RETRY,
            )
        except ActivityError as err:
            problem = f"scoring failed: {_failure_text(err)}"
            found = CaseScores(scores=[])
        by_name = {score.name: score for score in found.scores}
        judge_cost, judge_unpriced = 0.0, 0
        for spec, name in zip(case.expect, names, strict=True):
            if isinstance(spec, JudgeSpec):
                by_name[name], cost = await self._judge(spec, name, case, data)
                judge_cost += cost or 0.0
                judge_unpriced += cost is None
        scores = [by_name[name] for name in names if name in by_name]
        if problem:
            scores.append(Score(name="scoring", kind="scoring", passed=False, detail=problem))
        status = result.status if result is not None else "error"
        passed = all(s.passed for s in scores if s.required) and (
            bool(case.expect) or result is not None
        )
        ledger = result.ledger if result is not None else None
        return CaseOutcome(
            id=case.id,
            target=case.target,
            tags=case.tags,
            workflow_id=workflow_id,
            run_id=run_id,
            status=status,
            passed=passed and not problem,
            scores=scores,
            cost_usd=ledger.cost_usd if ledger else 0.0,
            unpriced_calls=ledger.unpriced_calls if ledger else 0,
            judge_cost_usd=judge_cost,
            judge_unpriced_calls=judge_unpriced,
            latency_seconds=found.latency_seconds,
            review_seconds=found.review_seconds,
            model_calls=found.model_calls,
            tokens=ledger.tokens if ledger else 0,
            answer_preview=(result.answer[:ANSWER_PREVIEW_CHARS] if result else ""),
            error=error or problem,
            diagnosis=found.diagnosis,
            scripted=case.script is not None,
        )

    async def _judge(
        self, spec: JudgeSpec, name: str, case: EvalCase, data: dict[str, object] | None
    ) -> tuple[Score, float | None]:
        """The judge's score and its cost (None when the price is unknown).

        Like a run's model calls, a deployment that fails for good falls back to the
        tier's next one.
        """
        if data is None:
            return judge_failed(spec, name, "the run has no result to judge"), 0.0
        failure = ""
        for deployment in range(spec.deployments):
            try:
                answer = await workflow.execute_activity_method(
                    LLMActivities.complete,
                    judge_request(spec, case.request.input, data, deployment),
                    start_to_close_timeout=MODEL_CALL_TIMEOUT,
                    retry_policy=MODEL_CALL_RETRY,
                )
            except ActivityError as err:
                failure = _failure_text(err)
                continue
            return judge_score(spec, name, answer), answer.usage.cost_usd
        return judge_failed(spec, name, f"the judge call failed: {failure}"), 0.0


def _history_is_long(request: EvalRequest) -> bool:
    info = workflow.info()
    return (
        info.get_current_history_length() > request.max_history_events
        or info.is_continue_as_new_suggested()
    )


def _failure_text(err: FailureError) -> str:
    """The innermost cause of a failure, as `Type: message`."""
    cause: BaseException = err
    while isinstance(cause, FailureError) and cause.cause is not None:
        cause = cause.cause
    kind = getattr(cause, "type", None) or type(cause).__name__
    return f"{kind}: {getattr(cause, 'message', None) or cause}"


def _as_child(request: RunRequest | LegacyRunRequest) -> RunRequest | LegacyRunRequest:
    """A case's run input as this eval starts it: never vouching for its principal.

    A child run trusts `parent_verified` from its parent; an eval's cases come from
    whoever started the eval, so their principal is never taken as verified.
    """
    if isinstance(request, RunRequest):
        return request.model_copy(update={"parent_verified": False})
    return request
