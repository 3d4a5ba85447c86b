"""A handoff, in the workflow: each task runs as a child workflow of the specialist.

A child gets its own workflow id and the parent's principal; it resolves the specialist's
profile from the workers' config itself (its grants, never the parent's), with its budget
capped by what the parent has left. It runs on the parent's task queue with the search
attributes `start_run` sets, so its approvals show in `steward pending` like any run's. At
most `max_parallel` children run at once. A child that fails becomes a failed result the
parent's model reads, not a failure of the parent; each child's spend is added to the
parent's ledger and its model calls to the parent's, so budgets roll up. Cancelling the
parent cancels the children it waits on (and `REQUEST_CANCEL` covers any it would leave
behind), then the parent ends cancelled.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

from steward import search_attributes as sa
from steward import targets
from steward.handoffs import HandoffArgs, HandoffResult, HandoffTask, capped_budget, granted
from steward.models import (
    AgentProfile,
    BudgetCap,
    LegacyRunRequest,
    RunRequest,
    RunResult,
    ToolCall,
)
from workflows.base import StewardRun


async def hand_off(run: StewardRun, call: ToolCall, args: HandoffArgs) -> list[HandoffResult]:
    """Run every task of one handoff call, `max_parallel` at a time; results in task order.

    Raises BudgetExceeded when the parent cannot afford another model call (after asking
    to extend, when its budget says so). Cancellation of the parent propagates.
    """
    # Same gate as a model call of the parent's own: a specialist spends from its budget.
    await run._within_budget()
    specialists = granted(run.profile)
    gate = asyncio.Semaphore(run.profile.max_parallel)

    async def bounded(index: int, task: HandoffTask) -> HandoffResult:
        async with gate:
            return await _child(run, call, index, task, specialists[task.specialist])

    # When the parent is cancelled, gather cancels every task; a child's handle then asks
    # the child to cancel and waits for it, and gather raises CancelledError regardless.
    return list(await asyncio.gather(*(bounded(i, t) for i, t in enumerate(args.tasks))))


def child_id(parent_id: str, call_id: str, index: int, specialist: str) -> str:
    """The child's workflow id (no ':' in the added part: approval ids are `ID:N`)."""
    return f"{parent_id}--{call_id}-{index}-{specialist}".replace(":", "-")


async def _child(
    run: StewardRun, call: ToolCall, index: int, task: HandoffTask, specialist: AgentProfile
) -> HandoffResult:
    parent = workflow.info()
    workflow_id = child_id(parent.workflow_id, call.id, index, specialist.name)
    budget = capped_budget(specialist.budget, run.profile.budget, run.ledger)
    if isinstance(budget, str):
        return HandoffResult(
            specialist=specialist.name,
            workflow_id="",
            status="budget_exceeded",
            error=f"not started: {budget}",
        )
    request: RunRequest | LegacyRunRequest
    if run.legacy:
        request = LegacyRunRequest(
            input=task.task,
            principal=run.principal,
            profile=specialist.model_copy(update={"budget": budget}),
        )
    else:
        # The child resolves the specialist from the workers' config itself; the parent
        # only lowers its budget to what the parent has left.
        request = RunRequest(
            target=specialist.name,
            input=task.task,
            principal=run.principal,
            budget_cap=BudgetCap.model_validate(
                budget.model_dump(include=set(BudgetCap.model_fields))
            ),
            parent_verified=run.principal_verified,
        )
    try:
        result: RunResult = await workflow.execute_child_workflow(
            targets.AGENT_WORKFLOW,  # by name: importing the class would be circular
            request,
            id=workflow_id,
            task_queue=parent.task_queue,
            result_type=RunResult,
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TARGET, specialist.name),
                    SearchAttributePair(sa.PRINCIPAL, run.principal),
                    SearchAttributePair(sa.STATUS, "running"),
                ]
            ),
            static_summary=f"handoff from {run.profile.name} to {specialist.name}",
        )
    except ChildWorkflowError as err:
        return _failed(specialist.name, workflow_id, _reason(err))
    except WorkflowAlreadyStartedError:
        return _failed(specialist.name, workflow_id, "a workflow with this id is already running")
    run.ledger.absorb(result.ledger)
    run.model_calls.extend(
        record.model_copy(update={"step": f"{specialist.name}/{record.step}"})
        for record in result.model_calls
    )
    return HandoffResult.of(specialist.name, workflow_id, result)


def _reason(err: BaseException) -> str:
    """The failure at the bottom of the chain (the child's own error, not its wrappers)."""
    while err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, ApplicationError) and err.type:
        return f"{err.type}: {err.message}"
    return str(err)


def _failed(specialist: str, workflow_id: str, error: str) -> HandoffResult:
    workflow.logger.warning("handoff to %s (%s) failed: %s", specialist, workflow_id, error)
    return HandoffResult(
        specialist=specialist, workflow_id=workflow_id, status="failed", error=error
    )
