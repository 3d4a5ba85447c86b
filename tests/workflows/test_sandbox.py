"""The sandbox the tests run catches what workflow code must never do.

Production workers run workflow code as imported, once, without a sandbox
(steward.plugin.PRODUCTION_RUNNER); the tests run the strict sandbox, in which a forbidden
call (here, the wall clock) fails the workflow task instead of passing unseen.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from steward.plugin import SANDBOX, StewardPlugin


@workflow.defn(name="ClockReader")
class ClockReader:
    """Workflow code that reads the wall clock: non-deterministic on replay."""

    @workflow.run
    async def run(self) -> str:
        return datetime.datetime.now().isoformat()


async def test_the_tests_sandbox_fails_a_workflow_that_reads_the_clock(client: Client) -> None:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    # the tests' clients carry the strict sandbox
    async with Worker(client, task_queue=queue, workflows=[ClockReader]) as worker:
        runner = worker.config(active_config=True)["workflow_runner"]
        assert isinstance(runner, SandboxedWorkflowRunner)
        assert runner.restrictions.passthrough_modules == SANDBOX.restrictions.passthrough_modules
        handle = await client.start_workflow(
            ClockReader.run, id=f"clock-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        async with asyncio.timeout(20):
            while True:
                events = (await handle.fetch_history()).events
                failed = [
                    str(
                        await client.data_converter.decode_failure(
                            e.workflow_task_failed_event_attributes.failure
                        )
                    )
                    for e in events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
                ]
                if failed:
                    break
                await asyncio.sleep(0.1)
        await handle.terminate("test done")
    assert "datetime.datetime.now" in failed[0]


def test_production_runs_workflow_code_as_imported_the_tests_in_the_strict_sandbox() -> None:
    assert isinstance(StewardPlugin(None).runner, UnsandboxedWorkflowRunner)
    strict = StewardPlugin(None, strict_sandbox=True).runner
    assert strict is SANDBOX and "workflows" not in SANDBOX.restrictions.passthrough_modules
