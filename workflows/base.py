"""What every Steward run shares: the approval gate, progress reporting, model calls.

Playbooks and the agent loop inherit `StewardRun`, so each has the same `decide`
signal/update, `pending_approvals` and `progress` queries, and records its model calls
the same way.
"""

from __future__ import annotations

from temporalio import workflow

from steward import search_attributes as sa
from steward.models import LLMRequest, LLMResult, ModelCallRecord, RunProgress
from workflows.approvals import ApprovalGate, ApprovalHandlers
from workflows.options import MODEL_CALL_RETRY, MODEL_CALL_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from activities.llm import LLMActivities


class StewardRun(ApprovalHandlers):
    """Base of Steward's workflows (not itself a workflow)."""

    def __init__(self) -> None:
        self.gate = ApprovalGate()
        self.step = "starting"
        self.model_calls: list[ModelCallRecord] = []

    @workflow.query(name="progress")
    def progress(self) -> RunProgress:
        """Where the run is, what waits for a human, and the model calls so far."""
        return RunProgress(
            status=self.step,
            step=self.step,
            pending=list(self.gate.pending.values()),
            refused=self.gate.refused,
            model_calls=self.model_calls,
        )

    async def complete(self, request: LLMRequest) -> LLMResult:
        """Call the model activity and record the call."""
        result = await workflow.execute_activity_method(
            LLMActivities.complete,
            request,
            start_to_close_timeout=MODEL_CALL_TIMEOUT,
            retry_policy=MODEL_CALL_RETRY,
        )
        self.model_calls.append(ModelCallRecord.of(request.step, result))
        return result

    def finish(self, status: str) -> None:
        """Mark the run's final status for the UI and `steward status`."""
        self.step = status
        workflow.upsert_search_attributes([sa.STATUS.value_set(status)])
