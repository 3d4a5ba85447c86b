"""A crashed eval worker: killed mid-eval and restarted, the eval completes where it was.

The worker runs in its own process (tests/evals/eval_worker_proc.py) and is killed with
SIGKILL while two cases are done and two wait for their scripted approver. Its
replacement has an empty model script, so any model call made again would fail the
case: finished cases must not run again, and running ones must carry on.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from evals.models import EvalProgress
from evals.runner import start_eval
from evals.suite import Suite
from steward.config import StewardConfig
from steward.trace import build_trace
from tests.evals.support import REPO, request_for
from tests.support.fake_model import read_calls_log
from tests.support.histories import readable_history
from tests.support.processes import ChildProcess
from workflows.eval import EvalWorkflow

TICKET = (REPO / "examples" / "tickets" / "late-delivery.txt").read_text()
ANSWER = json.dumps({"category": "shipping", "urgency": "high"})  # also a usable draft


class EvalWorkerProcess(ChildProcess):
    """Start and kill the eval worker process."""

    def __init__(self, tmp: Path, config: StewardConfig, queue: str, address: str) -> None:
        self.tmp, self.queue = tmp, queue
        self.calls_log = tmp / "model-calls.jsonl"
        self.log = tmp / "worker.log"
        self.config_path = tmp / "steward.yaml"
        self.config_path.write_text(
            yaml.safe_dump(config.model_dump(mode="json", exclude_none=True))
        )
        self.env = os.environ | {"TEMPORAL_ADDRESS": address, "PYTHONPATH": str(REPO)}
        super().__init__()

    def start(self, responses: list[str]) -> None:
        script = self.tmp / f"script-{len(responses)}.json"
        script.write_text(json.dumps(responses))
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.evals.eval_worker_proc",
                    *("--queue", self.queue, "--config", str(self.config_path)),
                    *("--script", str(script), "--calls-log", str(self.calls_log)),
                ],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


@pytest.fixture
def worker_process(
    tmp_path: Path, config: StewardConfig, task_queue: str, env: WorkflowEnvironment
) -> Iterator[EvalWorkerProcess]:
    process = EvalWorkerProcess(
        tmp_path, config, task_queue, env.client.service_client.config.target_host
    )
    yield process
    process.stop()


async def settled(client: Client, workflow_id: str) -> bool:
    """Whether the run has no activity in flight (so a kill loses no activity attempt)."""
    history = await readable_history(client.get_workflow_handle(workflow_id))
    trace = build_trace(history)
    runs = [c.activity for c in trace.model_calls] + trace.activities
    runs += [c.activity for c in trace.tool_calls if c.activity is not None]
    return all(run.state not in ("scheduled", "started") for run in runs)


async def test_killed_worker_resumes_the_eval_without_rerunning_cases(
    client: Client, config: StewardConfig, worker_process: EvalWorkerProcess, task_queue: str
) -> None:
    suite = Suite.model_validate(
        {
            "suite": "crash",
            "target": "support-reply",
            "approvals": [{"decision": "approve", "after_seconds": 2}],
            "cases": [
                {"id": f"c{i}", "input": TICKET, "expect": [{"status": "completed"}]}
                for i in range(4)
            ],
        }
    )
    request = request_for(suite, config, task_queue, concurrency=2)
    worker_process.start([ANSWER] * 8)
    handle, _ = await start_eval(client, request, task_queue=task_queue)

    # wait until two cases are done and the other two wait for their approver, idle
    async with asyncio.timeout(60):
        while True:
            progress: EvalProgress = await handle.query(EvalWorkflow.progress)
            waiting = [c for c, what in progress.running.items() if what.startswith("approval")]
            if progress.done == 2 and len(waiting) == 2:
                children = [f"{handle.id}.{case}" for case in waiting]
                if all([await settled(client, child) for child in children]):
                    break
            await asyncio.sleep(0.1)
    before = {
        case: (await client.get_workflow_handle(f"{handle.id}.{case}").describe()).run_id
        for case in ("c0", "c1", "c2", "c3")
    }
    assert len(read_calls_log(worker_process.calls_log)) == 8

    worker_process.kill()
    worker_process.start([])  # an empty script: a model call made again fails its case
    result = await asyncio.wait_for(handle.result(), timeout=90)

    assert [o.id for o in result.outcomes] == ["c0", "c1", "c2", "c3"]
    assert all(o.passed for o in result.outcomes), [o.scores for o in result.outcomes]
    assert {o.id: o.run_id for o in result.outcomes} == before  # each case ran once
    assert len(read_calls_log(worker_process.calls_log)) == 8  # no model call made again
