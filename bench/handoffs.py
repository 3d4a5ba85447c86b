"""What a handoff costs against a direct tool call, for `make bench`.

The same parent agent, on one tuned dev server with an in-process worker and a fake model
that answers at once, either calls a tool directly (`http_get` of a loopback page: one
activity) or hands the task to a specialist (a child workflow whose one model call
answers). Runs alternate, direct then handoff, for ROUNDS rounds, so drift in the machine
hits both alike. Two figures, as medians: the step itself, from the parent's history (the
tool activity scheduled to completed, against the child initiated to completed), and the
whole parent run as the client sees it. `python -m bench.handoffs` runs this alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Final

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.handler import Call
from activities.tools.http_get import HttpActivities
from bench import steward_plugin
from bench.overhead import PageHandler
from steward import devserver
from steward import search_attributes as sa
from steward.config import StewardConfig, load_config
from steward.runs import start_run
from tests.support.fake_model import FakeModel, FakeReply, install_fake_model
from tests.support.stack import activities_for_tests, running_workers

ROUNDS: Final = int(os.environ.get("BENCH_HANDOFF_ROUNDS", "20"))
LEAD: Final = "bench-lead"
SPECIALIST: Final = "bench-specialist"
SPECIALIST_MARK: Final = "You are the bench specialist."
HAND_OFF: Final = "Hand this off."
ANSWER: Final = json.dumps({"action": "answer", "answer": "ok"})


def bench_config(scratch: Path) -> StewardConfig:
    """The shipped config with the fake model, loopback fetches, a lead and its specialist."""
    base = load_config("examples/steward.yaml").model_dump()
    base["tiers"] = {name: [{"model": "fake/bench"}] for name in base["tiers"]}
    base["outbox"] = str(scratch / "outbox")
    base["http"]["allow_hosts"] = ["127.0.0.1"]
    base["agents"][LEAD] = {
        "kind": "agent",
        "description": "The handoff bench's parent: fetches a page or hands off.",
        "tools": ["http_get"],
        "specialists": [SPECIALIST],
    }
    base["agents"][SPECIALIST] = {
        "kind": "agent",
        "description": "Answers at once.",
        "instructions": SPECIALIST_MARK,
    }
    return StewardConfig.model_validate(base)


class HandoffFake(FakeModel):
    """The fake model answering from the conversation, so no queue order matters.

    The specialist answers at once; the lead answers once it has a result, else hands off
    or fetches the page, as its task says.
    """

    def _take(self, request: Call) -> FakeReply:
        contents = [str(message.get("content") or "") for message in request.messages]
        if contents[0].startswith(SPECIALIST_MARK) or any(
            content.startswith("Result of ") for content in contents
        ):
            return FakeReply(ANSWER)
        task = contents[-1]
        if task.startswith(HAND_OFF):
            tasks = [{"specialist": SPECIALIST, "task": "say ok"}]
            return FakeReply(json.dumps({"action": "handoff", "arguments": {"tasks": tasks}}))
        url = task.split()[-1]
        return FakeReply(json.dumps({"action": "http_get", "arguments": {"url": url}}))


def _ms(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e6


def step_ms(history: WorkflowHistory) -> float:
    """The parent's one step: the http_get activity, or the child, from start to close."""
    opened: dict[int, float] = {}
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "http_get":
                opened[event.event_id] = _ms(event)
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            opened[event.event_id] = _ms(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled in opened:
                return _ms(event) - opened[scheduled]
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            initiated = event.child_workflow_execution_completed_event_attributes
            return _ms(event) - opened[initiated.initiated_event_id]
    raise AssertionError("the run made neither a tool call nor a handoff")


async def one_run(
    client: Client, config: StewardConfig, queue: str, task: str
) -> tuple[float, float]:
    """(step ms, whole run ms) of one parent run."""
    started = time.perf_counter()
    handle = await start_run(client, config, LEAD, task, "bench", task_queue=queue)
    result = await handle.result()
    run_ms = (time.perf_counter() - started) * 1000
    assert result.status == "completed", result
    assert [a.outcome for a in result.actions] == ["done"], result.actions
    return step_ms(await handle.fetch_history()), run_ms


async def measure() -> list[str]:
    """Interleaved handoff and direct-call runs; the lines to print."""
    scratch = Path(tempfile.mkdtemp(prefix="steward-bench-handoffs-"))
    install_fake_model(HandoffFake())
    config = bench_config(scratch)
    page = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    page.daemon_threads = True
    threading.Thread(target=page.serve_forever, daemon=True).start()
    direct_task = f"Fetch http://127.0.0.1:{page.server_address[1]}/"
    env = await WorkflowEnvironment.start_local(
        plugins=[steward_plugin()],
        dev_server_existing_path=str(devserver.temporal_binary()),
        search_attributes=sa.ALL,
        dev_server_extra_args=[*devserver.tuning_args(), "--db-filename", str(scratch / "h.db")],
        dev_server_log_level="error",
    )
    queue = f"bench-handoffs-{uuid.uuid4().hex[:8]}"
    direct: list[tuple[float, float]] = []
    handed: list[tuple[float, float]] = []
    try:
        http = HttpActivities(
            config.http.allow_hosts,
            max_bytes=config.http.max_bytes,
            timeout_seconds=config.http.timeout_seconds,
        )
        activities = dataclasses.replace(activities_for_tests(config), http=http)
        async with running_workers(env.client, config, queue, activities=activities):
            await one_run(env.client, config, queue, direct_task)  # warm up both paths
            await one_run(env.client, config, queue, HAND_OFF)
            for _ in range(ROUNDS):
                direct.append(await one_run(env.client, config, queue, direct_task))
                handed.append(await one_run(env.client, config, queue, HAND_OFF))
    finally:
        await env.shutdown()
        page.shutdown()
    d_step, h_step = (statistics.median(s for s, _ in runs) for runs in (direct, handed))
    d_run, h_run = (statistics.median(r for _, r in runs) for runs in (direct, handed))
    return [
        "",
        f"handoffs (fake model, no latency; {ROUNDS} interleaved rounds, tuned server):",
        f"  the step: handoff to a specialist {h_step:.1f}ms vs a direct tool call "
        f"(http_get) {d_step:.1f}ms: {h_step / d_step:.1f}x",
        f"  the parent run: {h_run:.1f}ms with the handoff vs {d_run:.1f}ms with the tool "
        f"call: {h_run / d_run:.1f}x",
    ]


if __name__ == "__main__":
    for line in asyncio.run(measure()):
        print(line)
    # As in bench/__main__: Temporal's runtime may abort the interpreter while finalizing.
    os._exit(0)
