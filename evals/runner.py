"""Client side of an eval: start (or resume) the EvalWorkflow, follow it, show progress.

An eval's workflow id is derived from what it runs (the suite's resolved cases and the
settings), so running the same command again while that eval is still going attaches to
it instead of starting over: after a crash of the process that ran it, the eval resumes
where it was. Once an eval has finished, the same id starts a fresh one.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import IO

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from evals.models import EvalProgress, EvalRequest, EvalResult
from workflows.eval import EvalWorkflow

PROGRESS_EVERY_SECONDS = 0.5
QUERY_TIMEOUT = timedelta(seconds=5)


def eval_id_for(request: EvalRequest) -> str:
    """A workflow id naming exactly this eval (suite, cases, profiles, settings)."""
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:12]
    return f"eval-{request.suite}-{digest}"


async def start_eval(
    client: Client,
    request: EvalRequest,
    *,
    task_queue: str,
    workflow_id: str | None = None,
    fresh: bool = False,
) -> tuple[WorkflowHandle[EvalWorkflow, EvalResult], bool]:
    """Start the eval, or attach to the one with its id still running: (handle, resumed)."""
    eval_id = workflow_id or eval_id_for(request)
    resumed = False
    if not fresh:
        try:
            described = await client.get_workflow_handle(eval_id).describe()
            resumed = described.status == WorkflowExecutionStatus.RUNNING
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    handle = await client.start_workflow(
        EvalWorkflow.run,
        request,
        id=eval_id,
        task_queue=task_queue,
        request_eager_start=True,  # `steward eval`'s own workers take the first task at once
        id_conflict_policy=(
            WorkflowIDConflictPolicy.TERMINATE_EXISTING
            if fresh
            else WorkflowIDConflictPolicy.USE_EXISTING
        ),
    )
    return handle, resumed


async def follow(
    handle: WorkflowHandle[EvalWorkflow, EvalResult],
    show: Callable[[EvalProgress], None],
    every: float = PROGRESS_EVERY_SECONDS,
) -> EvalResult:
    """Wait for the eval's result, showing its progress as it goes."""
    result = asyncio.ensure_future(handle.result())
    try:
        while not result.done():
            progress = await _progress(handle)
            if progress is not None:
                show(progress)
            await asyncio.wait([result], timeout=every)
        final = await _progress(handle)
        if final is not None:
            show(final)
        return result.result()
    finally:
        result.cancel()


async def _progress(handle: WorkflowHandle[EvalWorkflow, EvalResult]) -> EvalProgress | None:
    try:
        return await handle.query(EvalWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        return None  # no worker has the eval yet, or it just closed


class ProgressBar:
    """Cases done, passing, and cost so far: one redrawn line on a terminal, else a line
    each time a case finishes.
    """

    WIDTH = 24

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = ""
        self.done = -1

    def __call__(self, progress: EvalProgress) -> None:
        """Show this progress."""
        filled = self.WIDTH * progress.done // max(progress.total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = (
            f"[{bar}] {progress.done}/{progress.total} cases, {progress.passed} passing, "
            f"{len(progress.running)} running, cost ${progress.cost_usd:.6f}, "
            f"judge ${progress.judge_cost_usd:.6f}"
        )
        if self.tty:
            if line != self.last:
                self.stream.write("\r" + line.ljust(len(self.last)))
                self.stream.flush()
        elif progress.done != self.done:
            self.stream.write(line + "\n")
            self.stream.flush()
        self.last, self.done = line, progress.done

    def close(self) -> None:
        """End the redrawn line."""
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()
