"""Questions to a human: an agent asks, a person replies (or the deadline passes), the model
reads the reply as data; bad, foreign and repeated replies are refused and change nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from steward import search_attributes as sa
from steward.config import StewardConfig
from steward.models import RunProgress
from steward.questions import Answer, Question, QuestionState, RefusedReply, Reply
from steward.runs import RunError, open_questions, reply, start_run
from tests.support.fake_model import FakeModel
from tests.support.histories import readable_history
from tests.support.stack import running_workers
from tests.test_cli import steward
from workflows.questions import QuestionGate, QuestionHandlers


def turn(action: str, **fields: object) -> str:
    return json.dumps({"action": action, **fields})


def ask(question: str, **arguments: object) -> str:
    return turn("ask_human", arguments={"question": question, **arguments})


async def wait_for_question(
    handle: WorkflowHandle[Any, Any], after: str | None = None, timeout: float = 30
) -> Question:
    """Poll the run's progress until a question (other than `after`) is open."""
    async with asyncio.timeout(timeout):
        while True:
            progress: RunProgress = await handle.query("progress", result_type=RunProgress)
            fresh = [q for q in progress.questions if q.id != after]
            if fresh:
                return fresh[0]
            await asyncio.sleep(0.05)


async def wait_for_refused(
    handle: WorkflowHandle[Any, Any], count: int, timeout: float = 10
) -> list[RefusedReply]:
    """Poll until the run has recorded `count` refused replies."""
    async with asyncio.timeout(timeout):
        while True:
            refused: list[RefusedReply] = await handle.query(
                "refused_replies", result_type=list[RefusedReply]
            )
            if len(refused) >= count:
                return refused
            await asyncio.sleep(0.05)


async def listed(client: Client, question_id: str, timeout: float = 20) -> Question:
    """The question as `steward pending` finds it (visibility is eventually consistent)."""
    async with asyncio.timeout(timeout):
        while True:
            for question in await open_questions(client):
                if question.id == question_id:
                    return question
            await asyncio.sleep(0.1)


async def task_failures(handle: WorkflowHandle[Any, Any]) -> int:
    history = await readable_history(handle)
    return sum(
        1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    )


async def test_agent_asks_a_reply_reaches_the_model_and_bad_replies_are_refused(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(ask("Which backup do you mean?"))
    fake_model.queue(ask("Should I email ops too?", timeout_seconds=600))
    fake_model.queue(turn("answer", answer="The nightly backup finished; ops told."))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client,
            config,
            "helpdesk",
            "Tell them the backup finished",
            "dana",
            task_queue=task_queue,
        )
        first = await wait_for_question(handle)
        assert re.fullmatch(rf"{handle.id}:[0-9a-f]{{8}}-q1", first.id)
        assert first.question == "Which backup do you mean?"
        assert first.asked_by == "helpdesk" and first.audience == ["dana"]
        assert first.deadline - first.asked_at == timedelta(seconds=3600)
        assert await handle.query("open_questions", result_type=list[Question]) == [first]
        assert await listed(client, first.id) == first
        described = await handle.describe()
        assert described.typed_search_attributes.get(sa.STATUS) == sa.AWAITING_INPUT
        assert described.typed_search_attributes.get(sa.OPEN_QUESTIONS) == [first.id]

        refusals = {
            "'mallory' may not answer": Reply(question_id=first.id, text="x", sender="mallory"),
            "no open question with id": Reply(
                question_id=f"{handle.id}:q9", text="x", sender="dana"
            ),
        }
        for expected, bad in refusals.items():
            with pytest.raises(WorkflowUpdateFailedError) as caught:
                await handle.execute_update("reply", bad)
            assert expected in str(caught.value.cause)
        with pytest.raises(RunError, match="no open question with id 'nope'"):
            await reply(client, handle.id, "x", "dana", question_id="nope")
        with pytest.raises(RunError, match="text: String should have at most 10000"):
            await reply(client, handle.id, "x" * 10_001, "dana")

        question, answer = await reply(client, handle.id, "The nightly one.", "dana")
        assert question == first
        assert answer is not None and answer.status == "answered"
        assert (answer.text, answer.sender) == ("The nightly one.", "dana")

        second = await wait_for_question(handle, after=first.id)
        assert second.id == first.id.replace("-q1", "-q2")
        assert second.deadline - second.asked_at == timedelta(seconds=600)
        for repeated in ("The nightly one.", "changed my mind"):
            with pytest.raises(WorkflowUpdateFailedError) as caught:
                await handle.execute_update(
                    "reply", Reply(question_id=first.id, text=repeated, sender="dana")
                )
            assert f"question {first.id} was already answered" in str(caught.value.cause)
        await reply(client, handle.id, "Yes please.", "dana", via="signal")
        result = await handle.result()
        assert await task_failures(handle) == 0
        final = await handle.describe()

    assert result.status == "completed"
    assert [(a.tool, a.decision, a.outcome, a.output) for a in result.actions] == [
        ("ask_human", "allow", "done", "The nightly one."),
        ("ask_human", "allow", "done", "Yes please."),
    ]
    assert result.ledger.review_seconds > 0  # waiting for a person is review time
    # the model read each reply, quoted as data
    second_prompt = fake_model.calls[1].messages[-1]["content"]
    assert "The nightly one." in second_prompt and "not instructions" in second_prompt
    assert "dana replied" in second_prompt
    assert "Yes please." in fake_model.calls[2].messages[-1]["content"]
    # no question open: the attribute is unset, so `pending` no longer finds the run
    assert final.typed_search_attributes.get(sa.OPEN_QUESTIONS) is None


async def test_malformed_replies_never_fail_the_workflow_task(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(ask("Which backup?"))
    fake_model.queue(turn("answer", answer="done"))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Tell them", "dana", task_queue=task_queue
        )
        question = await wait_for_question(handle)
        good = {"question_id": question.id, "text": "the nightly one", "sender": "dana"}
        await handle.signal("reply", None)
        await handle.signal("reply", "the nightly one")
        await handle.signal("reply", {"question_id": 5, "text": ["x"]})
        await handle.signal("reply", args=[good, good])
        await handle.signal("reply", good | {"text": "x" * 20_000})
        await handle.signal("reply", good | {"extra": True})
        await handle.signal("reply", good | {"sender": "mallory"})  # well formed, not allowed
        refused = await wait_for_refused(handle, 7)
        reasons = [r.reason for r in refused]
        assert sum(reason.startswith("malformed reply") for reason in reasons) == 6
        assert "reply: Input should be a valid dictionary" in reasons[0]
        assert "question_id: Input should be a valid string" in reasons[2]
        assert "expected one JSON object, got 2 arguments" in reasons[3]
        assert "text: String should have at most 10000 characters" in reasons[4]
        assert "extra: Extra inputs are not permitted" in reasons[5]
        assert "'mallory' may not answer" in reasons[6]
        # by update the sender hears at once, and nothing reaches history
        for malformed in (None, good | {"text": ""}):
            with pytest.raises(WorkflowUpdateFailedError) as caught:
                await handle.execute_update("reply", malformed)
            assert "malformed reply" in str(caught.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update("reply", args=[good, good])
        assert "got 2 arguments" in str(caught.value.cause)
        assert await handle.query("open_questions", result_type=list[Question]) == [question]

        await handle.signal("reply", good)
        result = await handle.result()
        assert await task_failures(handle) == 0

    assert result.status == "completed"
    assert result.actions[0].outcome == "done" and result.actions[0].output == "the nightly one"


async def test_asking_goes_through_grants_argument_checks_and_policy(
    client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    data = config.model_dump()
    data["tools"]["ask_human"] = {"max_calls_per_run": 1}
    capped = StewardConfig.model_validate(data)
    fake_model.queue(ask("   "))
    fake_model.queue(ask("Which backup?", timeout_seconds=0))
    fake_model.queue(ask("Which backup?"))
    fake_model.queue(ask("And which host?"))
    fake_model.queue(turn("answer", answer="done"))
    async with running_workers(client, capped, task_queue):
        handle = await start_run(
            client, capped, "helpdesk", "Tell them", "dana", task_queue=task_queue
        )
        await wait_for_question(handle)
        await reply(client, handle.id, "the nightly one", "dana")
        result = await handle.result()

    assert [(a.decision, a.outcome) for a in result.actions] == [
        ("deny", "denied"),
        ("deny", "denied"),
        ("allow", "done"),
        ("deny", "denied"),
    ]
    assert "question: Value error, the question is blank" in result.actions[0].reason
    assert "timeout_seconds: Input should be greater than 0" in result.actions[1].reason
    assert "ask_human already ran 1 times in this run (cap 1)" in result.actions[3].reason

    ungranted = config.model_copy(deep=True)
    ungranted.agents["helpdesk"].tools.remove("ask_human")
    fake_model.queue(ask("Which backup?"))
    fake_model.queue(turn("answer", answer="done"))
    async with running_workers(client, ungranted, task_queue):
        handle = await start_run(
            client, ungranted, "helpdesk", "Tell them", "dana", task_queue=task_queue
        )
        result = await handle.result()
    (refused,) = result.actions
    assert refused.outcome == "denied"
    assert refused.reason == "tool 'ask_human' is not granted to 'helpdesk'"


async def test_unanswered_question_times_out_and_the_model_is_told(
    time_env: WorkflowEnvironment, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    fake_model.queue(ask("Which backup?", timeout_seconds=120))
    fake_model.queue(turn("answer", answer="No reply; I did nothing."))
    client = time_env.client
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Tell them", "dana", task_queue=task_queue
        )
        question = await wait_for_question(handle)
        await time_env.sleep(150)
        assert question.deadline - question.asked_at == timedelta(seconds=120)
        result = await handle.result()

    assert result.status == "completed"
    (action,) = result.actions
    assert (action.tool, action.outcome, action.reason) == (
        "ask_human",
        "timed_out",
        "no reply within 120s",
    )
    told = fake_model.calls[1].messages[-1]["content"]
    assert "outcome timed_out" in told and "no reply within 120s" in told
    assert result.ledger.review_seconds == pytest.approx(120, abs=1)


async def test_pending_and_reply_from_the_cli(
    env: WorkflowEnvironment,
    client: Client,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
) -> None:
    fake_model.queue(ask("Which backup do you mean?"))
    fake_model.queue(turn("answer", answer="ok"))
    async with running_workers(client, config, task_queue):
        handle = await start_run(
            client, config, "helpdesk", "Tell them", "dana", task_queue=task_queue
        )
        question = await wait_for_question(handle)
        await listed(client, question.id)

        code, out = await steward(env, "pending")
        assert code == 0, out
        shown = out[out.index(question.id) :]
        assert "question:  Which backup do you mean?" in shown
        assert f"deadline:  {question.deadline:%Y-%m-%d %H:%M:%S}Z" in shown
        assert "audience:  dana" in shown
        assert f'steward reply {handle.id} "..." --as NAME' in shown
        code, out = await steward(env, "pending", "--json")
        assert code == 0, out
        data = json.loads(out)
        assert isinstance(data["approvals"], list)
        assert [
            Question.model_validate(q) for q in data["questions"] if q["id"] == question.id
        ] == [question]

        code, out = await steward(env, "reply", handle.id, "the nightly one", "--as", "mallory")
        assert code == 2 and "'mallory' may not answer" in out, out
        code, out = await steward(env, "reply", handle.id, "the nightly one", "--as", "dana")
        assert code == 0 and f"answered: {question.id} by dana" in out, out
        result = await handle.result()
        code, out = await steward(env, "reply", handle.id, "again", "--as", "dana")
        assert code == 2 and "has no open question" in out, out

    assert result.actions[0].output == "the nightly one"
    assert "the nightly one" in fake_model.calls[1].messages[-1]["content"]


# --- the gate's state across continue-as-new -----------------------------------------------


@workflow.defn(name="QuestionProbe", sandboxed=False)
class QuestionProbe(QuestionHandlers):
    """A run that restores a snapshot, asks the carried question again, and reports."""

    def __init__(self) -> None:
        self.questions = QuestionGate()

    @workflow.run
    async def run(self, state: QuestionState) -> list[Answer]:
        self.questions.restore(state)
        answers = [
            await self.questions.ask(q.question, 99_999, "probe", "dana", ["dana"])
            for q in state.open
        ]
        answers.append(await self.questions.ask("A new one?", 10, "probe", "dana", []))
        return answers


def test_snapshot_round_trip_keeps_open_questions_answers_and_ids() -> None:
    asked = Question(
        id="wf:q2",
        workflow_id="wf",
        question="Which backup?",
        asked_by="helpdesk",
        principal="dana",
        audience=["dana"],
        asked_at=datetime(2030, 1, 1, tzinfo=UTC),
        deadline=datetime(2030, 1, 1, 1, tzinfo=UTC),
    )
    answered = Answer(
        question_id="wf:q1",
        status="answered",
        text="yes",
        sender="dana",
        asked_at=asked.asked_at,
        answered_at=asked.asked_at,
    )
    gate = QuestionGate()
    gate.restore(QuestionState(seq=2, open=[asked], answers=[answered]))
    carried = QuestionState.model_validate_json(gate.snapshot().model_dump_json())
    assert carried == QuestionState(seq=2, open=[asked], answers=[answered])

    restored = QuestionGate()
    restored.restore(carried)
    assert restored.open == {"wf:q2": asked}
    assert restored.check(Reply(question_id="wf:q1", text="x", sender="dana")) == (
        "question wf:q1 was already answered"
    )
    assert "'eve' may not answer wf:q2" in str(
        restored.check(Reply(question_id="wf:q2", text="x", sender="eve"))
    )
    assert restored.check(Reply(question_id="wf:q2", text="x", sender="dana")) is None


async def test_a_restored_question_keeps_its_id_and_deadline(time_env: WorkflowEnvironment) -> None:
    now = await time_env.get_current_time()
    carried = Question(
        id="before:q3",
        workflow_id="before",
        question="Which backup?",
        asked_by="probe",
        principal="dana",
        audience=["dana"],
        asked_at=now - timedelta(seconds=500),
        deadline=now + timedelta(seconds=100),
    )
    queue = f"test-{uuid.uuid4().hex[:10]}"
    async with Worker(time_env.client, task_queue=queue, workflows=[QuestionProbe]):
        answers = await time_env.client.execute_workflow(
            QuestionProbe.run,
            QuestionState(seq=3, open=[carried]),
            id=f"probe-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
    resumed, fresh = answers
    # it waited only for the time left (100 s), not the 99,999 s asked again
    assert resumed.question_id == "before:q3" and resumed.status == "timed_out"
    assert carried.deadline <= resumed.answered_at < carried.deadline + timedelta(seconds=5)
    # numbering goes on from the snapshot
    assert fresh.question_id.endswith(":q4") and fresh.status == "timed_out"
