"""`steward eval --from-history`: recorded runs re-run, today's code, without a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client

import evals.worker
from evals.recording import save_suite, suite_from_histories
from evals.suite import Suite, SuiteError, load_suite
from steward.codec import codec_from_environment
from steward.config import StewardConfig
from steward.decoding import decode_history
from steward.models import RunResult, ToolInvocation
from steward.replay import load_history
from steward.runs import decide, start_run
from tests.evals.support import REPO, request_for, run_request
from tests.support.fake_model import FakeModel
from tests.support.stack import running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path
from workers import build
from workflows.base import RunInput
from workflows.support import SupportReplyWorkflow

CHAINED = {"agent-continued": "continued as new", "agent-handoff": "handed work to specialists"}
"""Runs whose one history is not the whole run (the rest of the chain, or the children's):
no case is made of them, and the reason is said."""

HISTORIES = sorted(
    path
    for path in (REPO / "tests" / "histories").glob("*.json")
    # an eval's own history is not a playbook run
    if not path.stem.startswith("eval-") and path.stem not in CHAINED
)


def test_a_run_that_is_not_whole_in_one_history_is_refused_with_the_reason() -> None:
    for name, reason in CHAINED.items():
        history = load_history(REPO / "tests" / "histories" / f"{name}.json")
        with pytest.raises(SuiteError, match=reason):
            suite_from_histories([history])


async def test_recorded_runs_rerun_with_their_recorded_answers(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str, tmp_path: Path
) -> None:
    suite = suite_from_histories([load_history(path) for path in HISTORIES])
    saved = tmp_path / "regressions.yaml"
    save_suite(suite, saved)
    reloaded = load_suite(saved)  # what --save writes runs again as a suite
    assert [c.id for c in reloaded.cases] == [p.stem for p in HISTORIES]

    result = await run_request(
        client, config, request_for(reloaded, config, task_queue, concurrency=6), task_queue
    )

    failing = {
        o.id: [f"{s.name}: {s.detail}" for s in o.scores if not s.passed] + [o.error]
        for o in result.outcomes
        if not o.passed
    }
    # One deliberate change since that run was recorded: a tool that fails for good is now
    # the run's result (status `failed`), where the run itself used to fail. The case says
    # exactly that, and nothing else differs.
    assert failing == {"support-tool-failed": ["status: status failed, expected error", ""]}
    assert fake_model.calls == []  # the fake has nothing queued: a model call would fail


@workflow.defn(name="SupportReplyWorkflow", sandboxed=False)
class ForgetsTheUrgency(SupportReplyWorkflow):
    """The playbook after a careless edit: its result no longer reports the urgency."""

    @workflow.run
    async def run(self, sent: RunInput) -> RunResult:
        return await super().run(sent)

    def conclude(self, *args: Any, **kwargs: Any) -> RunResult:
        result = super().conclude(*args, **kwargs)
        result.details.pop("urgency", None)
        return result


async def test_a_change_to_the_orchestration_fails_its_recorded_case(
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    changed = [ForgetsTheUrgency if w is SupportReplyWorkflow else w for w in build.ALL_WORKFLOWS]
    monkeypatch.setattr(evals.worker, "ALL_WORKFLOWS", changed)
    suite = suite_from_histories([load_history(REPO / "tests/histories/support-approved.json")])

    result = await run_request(client, config, request_for(suite, config, task_queue), task_queue)

    (outcome,) = result.outcomes
    assert not outcome.passed
    failed = {s.name: s.detail for s in outcome.scores if not s.passed}
    assert list(failed) == ["exact:details"]  # the answer, actions and approvals still agree
    assert '"urgency": "high"' in failed["exact:details"]
    assert fake_model.calls == []


async def test_an_approvers_edit_is_replayed_as_that_edit(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "support-reply", TICKET, "dana", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        edited = request.arguments | {"body": "Hello Dana,\n\nYour parcel left today.\n"}
        await decide(client, request.id, "alice", approve=True, arguments=edited)
        await handle.result()
        history = await decode_history(await handle.fetch_history(), codec_from_environment())

    (case,) = suite_from_histories([history]).cases
    assert case.approvals is not None
    (step,) = case.approvals
    assert (step.decision, step.approver, step.arguments) == ("approve", "alice", edited)

    asked = len(fake_model.calls)
    recorded: list[ToolInvocation] = []
    rerun = Suite(suite="edits", target="support-reply", cases=[case])
    result = await run_request(
        client, config, request_for(rerun, config, task_queue), task_queue, recorded=recorded
    )
    (outcome,) = result.outcomes
    assert outcome.passed, [f"{s.name}: {s.detail}" for s in outcome.scores if not s.passed]
    (sent,) = [call for call in recorded if call.call.tool == "send_email"]
    assert sent.call.arguments["body"] == edited["body"]
    assert len(fake_model.calls) == asked  # the rerun answered from the record, no model
