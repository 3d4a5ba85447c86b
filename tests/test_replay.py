"""Committed histories replay against today's workflow code (see tests/histories/).

A change to a workflow that would break runs already in flight fails here. Re-record with
`STEWARD_RECORD_HISTORIES=1 make pytest` only when the change is deliberate and patched.
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from steward.codec import codec_from_environment
from steward.models import RunResult
from steward.plugin import StewardPlugin
from workers.build import ALL_WORKFLOWS
from workflows.base import RunInput
from workflows.support import SupportReplyWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
REQUIRED = {"support-approved", "support-rejected", "support-timed-out"}


def replayer() -> Replayer:
    return Replayer(
        workflows=[],
        plugins=[
            StewardPlugin(codec_from_environment(), strict_sandbox=True, workflows=ALL_WORKFLOWS)
        ],
    )


def test_required_histories_are_committed() -> None:
    assert REQUIRED <= {path.stem for path in HISTORIES.glob("*.json")}


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


@workflow.defn(name="SupportReplyWorkflow", sandboxed=False)
class ChangedSupportReply(SupportReplyWorkflow):
    """The playbook edited in place without `workflow.patched`: a timer before the first step."""

    @workflow.run
    async def run(self, sent: RunInput) -> RunResult:
        await workflow.sleep(1)
        return await super().run(sent)


async def test_an_unpatched_change_is_caught_by_replay() -> None:
    history = WorkflowHistory.from_json(
        "support-approved", (HISTORIES / "support-approved.json").read_text()
    )
    changed = Replayer(
        workflows=[ChangedSupportReply],
        plugins=[StewardPlugin(codec_from_environment(), strict_sandbox=True)],
    )
    result = await changed.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "Nondeterminism" in str(result.replay_failure) or "nondeterminism" in str(
        result.replay_failure
    )


def test_committed_histories_describe_no_machine() -> None:
    """Recorded histories are scrubbed of paths and worker identities (see histories.py)."""
    for path in HISTORIES.glob("*.json"):
        text = path.read_text()
        payloads = " ".join(
            base64.b64decode(data).decode("utf-8", "replace")
            for data in re.findall(r'"data": "([A-Za-z0-9+/=]+)"', text)
        )
        assert not re.search(r"/tmp/|/work/|/root/|/home/", text + payloads), path.name
        assert set(re.findall(r'"identity": "([^"]+)"', text)) <= {"steward-test-worker"}


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_history_replays_from_the_start_at_every_task(path: Path) -> None:
    """What a worker with max_cached_workflows=0 does: each workflow task replays the run
    from its first event. Cutting the history after every completed task and replaying
    each cut from scratch covers every such task."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    completed = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    cuts = [i + 1 for i, event in enumerate(history.events) if event.event_type == completed]
    assert cuts, path.name
    async with asyncio.timeout(60):
        for cut in cuts:
            prefix = WorkflowHistory(history.workflow_id, list(history.events[:cut]))
            result = await replayer().replay_workflow(prefix, raise_on_replay_failure=False)
            assert result.replay_failure is None, (
                f"{path.name} cut at {cut}: {result.replay_failure}"
            )
