"""Streaming, for `make bench`: time to first token through Steward, and what a stream costs.

Time to first token, side by side and interleaved on one tuned dev server with an
in-process worker, for the same model called two ways:

- (a) litellm called directly, with exactly the arguments Steward's `complete` activity
  would pass (`activities.llm.litellm_arguments`): from the call to the first text chunk;
- (b) a Steward agent run: from `start_run` to the first text delta a watcher reads
  (`steward.watch.follow`, polling every 100 ms), and, from the run's own history, from
  the run's start to the first delta batch's arrival (no client in between).

Both for the test fake (first token after `FAKE_LATENCY`, a word every `FAKE_CHUNK`) and
for the local model (SmolLM2 on llama.cpp, when it is installed).

And the stream's cost per run in history, on the fake: the same one-answer agent run with
deltas off, with deltas on, with deltas on and a query watcher (`steward watch`), and with
deltas on and Workflow Streams' own update-polling subscriber instead: events and bytes
per run, the delta signals and the deltas they carried. `python -m bench.streaming` runs
this alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.testing import WorkflowEnvironment

from activities.llm import LLMActivities, litellm_arguments
from bench import steward_plugin
from steward import devserver
from steward import search_attributes as sa
from steward.config import StewardConfig, load_config
from steward.events import TOPIC, TextDelta
from steward.models import LLMRequest, Message
from steward.runs import start_run
from steward.tools import default_specs
from steward.watch import follow
from tests.support.fake_model import FakeModel, FakeReply, install_fake_model
from tests.support.stack import activities_for_tests, running_workers
from workflows.agent import model_tools, system_prompt

ROUNDS: Final = int(os.environ.get("BENCH_STREAM_ROUNDS", "10"))
LOCAL_ROUNDS: Final = int(os.environ.get("BENCH_STREAM_LOCAL_ROUNDS", "3"))
FAKE_LATENCY: Final = 0.05
FAKE_CHUNK: Final = 0.01
AGENT: Final = "helpdesk"
TASK: Final = "Email ops@example.com that the nightly backup finished."
ANSWER: Final = (
    "Hello team, here is a short update on the nightly backup. It started at two and "
    "finished before four without errors. Every database was copied, and the checksums "
    "matched the source. The archive now sits in cold storage, encrypted with this month's "
    "key. Restores from last week's copy were tested and took eleven minutes. Disk usage "
    "grew by three percent, well within the quota. No action is needed from anyone today. "
    "The next report follows tomorrow's run."
)
"""A plausible answer: the helpdesk's answer guardrail asks again for a repeated sentence,
which a one-turn run cannot do."""
PUBLISH: Final = "__temporal_workflow_stream_publish"


class AnswerFake(FakeModel):
    """Answers every call with ANSWER, streamed; no queue, so rounds need no bookkeeping."""

    def _take(self, *args: Any, **kwargs: Any) -> FakeReply:
        return FakeReply(ANSWER)


def bench_config(model: str, tool_calling: str) -> StewardConfig:
    base = load_config("examples/steward.yaml").model_dump()
    base["tiers"] = {
        name: [{"model": model, "tool_calling": tool_calling}] for name in base["tiers"]
    }
    # One turn: time to first token is the figure, and a 135M model may not answer well.
    base["agents"][AGENT] |= {"specialists": [], "max_turns": 1}
    return StewardConfig.model_validate(base)


def direct_arguments(config: StewardConfig) -> dict[str, Any]:
    """What Steward's first turn would pass litellm, for the same model."""
    profile = config.profile(AGENT, default_specs())
    tier = profile.tier_order[-1]
    request = LLMRequest(
        step="turn-1",
        tier=tier,
        messages=[
            Message(role="system", content=system_prompt(profile)),
            Message(role="user", content=TASK),
        ],
        tools=model_tools(profile),
    )
    return litellm_arguments(config.tiers[tier][0], request, list(request.messages), None)


async def direct_ttft(arguments: dict[str, Any]) -> float:
    """ms from the call to the first chunk with text (litellm called directly)."""
    started = time.perf_counter()
    stream = await litellm.acompletion(**arguments)
    first = None
    async for chunk in stream:
        text = chunk.choices[0].delta.content if chunk.choices else None
        if text and first is None:
            first = (time.perf_counter() - started) * 1000
    assert first is not None, "the model streamed no text"
    return first


async def steward_ttft(client: Client, config: StewardConfig, queue: str) -> tuple[float, float]:
    """(ms to the first delta a watcher reads, ms from the run's start to its first delta
    batch in history) for one agent run.
    """
    started = time.perf_counter()
    handle = await start_run(client, config, AGENT, TASK, "bench", task_queue=queue)
    seen = None
    async for event in follow(client, handle.id):
        if isinstance(event, TextDelta) and seen is None:
            seen = (time.perf_counter() - started) * 1000
    await handle.result()
    assert seen is not None, "the watcher saw no text"
    return seen, first_batch_ms(await handle.fetch_history())


def first_batch_ms(history: WorkflowHistory) -> float:
    start = history.events[0].event_time.ToNanoseconds()
    for event in history.events:
        if (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and event.workflow_execution_signaled_event_attributes.signal_name == PUBLISH
        ):
            return (event.event_time.ToNanoseconds() - start) / 1e6
    raise AssertionError("no streamed text in the run's history")


async def ttft_rows(
    env: WorkflowEnvironment, label: str, config: StewardConfig, rounds: int
) -> str:
    queue = f"bench-stream-{uuid.uuid4().hex[:8]}"
    arguments = direct_arguments(config)
    direct: list[float] = []
    watched: list[float] = []
    in_history: list[float] = []
    async with running_workers(env.client, config, queue, activities=activities_for_tests(config)):
        await direct_ttft(arguments)  # warm up both paths (and load the local model)
        await steward_ttft(env.client, config, queue)
        for _ in range(rounds):
            direct.append(await direct_ttft(arguments))
            seen, batch = await steward_ttft(env.client, config, queue)
            watched.append(seen)
            in_history.append(batch)
    d, w, h = (statistics.median(x) for x in (direct, watched, in_history))
    return (
        f"  {label:<34} litellm direct {d:7.1f}ms | Steward: watcher {w:7.1f}ms "
        f"(+{w - d:.0f}), in history {h:7.1f}ms (+{h - d:.0f})"
    )


# --- what a stream costs a run in history ---------------------------------------------------


@dataclasses.dataclass
class Cost:
    events: int
    bytes: int
    signals: int
    deltas: int


def cost_of(history: WorkflowHistory, deltas: int) -> Cost:
    return Cost(
        events=len(history.events),
        bytes=sum(event.ByteSize() for event in history.events),
        signals=sum(
            1
            for event in history.events
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ),
        deltas=deltas,
    )


async def one_costed_run(
    client: Client,
    config: StewardConfig,
    queue: str,
    watch: Callable[[Client, str], Coroutine[Any, Any, int]] | None,
) -> Cost:
    handle = await start_run(client, config, AGENT, TASK, "bench", task_queue=queue)
    watcher: asyncio.Task[int] | None = (
        asyncio.create_task(watch(client, handle.id)) if watch else None
    )
    result = await handle.result()
    assert result.status == "completed", result
    deltas = await asyncio.wait_for(watcher, timeout=30) if watcher else 0
    return cost_of(await handle.fetch_history(), deltas)


async def query_watcher(client: Client, workflow_id: str) -> int:
    return sum([1 async for event in follow(client, workflow_id) if isinstance(event, TextDelta)])


async def update_watcher(client: Client, workflow_id: str) -> int:
    """Workflow Streams' own subscriber: long-polls by update until the run ends."""
    stream = WorkflowStreamClient.create(client, workflow_id)
    count = 0
    async for item in stream.subscribe([TOPIC]):
        count += isinstance(item.data, dict) and item.data.get("kind") == "text"
    return count


async def cost_rows(env: WorkflowEnvironment, config: StewardConfig) -> list[str]:
    rows = []
    for label, stream, watch in (
        ("deltas off", False, None),
        ("deltas on, nobody watching", True, None),
        ("deltas on, a query watcher", True, query_watcher),
        ("deltas on, an update subscriber", True, update_watcher),
    ):
        queue = f"bench-cost-{uuid.uuid4().hex[:8]}"
        activities = dataclasses.replace(
            activities_for_tests(config),
            llm=LLMActivities(config.tiers, allow_paid=False, stream_to_runs=stream),
        )
        async with running_workers(env.client, config, queue, activities=activities):
            await one_costed_run(env.client, config, queue, None)  # warm up
            costs = [await one_costed_run(env.client, config, queue, watch) for _ in range(3)]
        median = costs[len(costs) // 2]
        rows.append(
            f"  {label:<32} {median.events:4d} events {median.bytes:7,d} bytes, "
            f"{median.signals} signals" + (f" ({median.deltas} deltas seen)" if watch else "")
        )
    return rows


async def measure() -> list[str]:
    scratch = Path(tempfile.mkdtemp(prefix="steward-bench-stream-"))
    env = await WorkflowEnvironment.start_local(
        plugins=[steward_plugin()],
        dev_server_existing_path=str(devserver.temporal_binary()),
        search_attributes=sa.ALL,
        dev_server_extra_args=[*devserver.tuning_args(), "--db-filename", str(scratch / "s.db")],
        dev_server_log_level="error",
    )
    lines = [
        "",
        f"streaming: time to first token ({ROUNDS} interleaved rounds on the fake, first token "
        f"after {FAKE_LATENCY * 1000:.0f}ms, a word every {FAKE_CHUNK * 1000:.0f}ms; "
        f"{LOCAL_ROUNDS} on the local model; tuned server, watcher polling every 100ms):",
    ]
    try:
        install_fake_model(AnswerFake(latency=FAKE_LATENCY, chunk_delay=FAKE_CHUNK))
        fake = bench_config("fake/bench", "native")
        lines.append(await ttft_rows(env, "fake model (native tools)", fake, ROUNDS))
        try:
            from activities.local_model import LOCAL_MODEL, register_local_model

            register_local_model()
        except Exception as err:  # no weights: the fake's figures stand alone
            lines.append(f"  local model: not measured ({err})")
        else:
            local = bench_config(LOCAL_MODEL, "auto")
            lines.append(
                await ttft_rows(env, "local SmolLM2 (decision schema)", local, LOCAL_ROUNDS)
            )
        words = len(ANSWER.split())
        lines.append(
            f"stream cost per run in history (one streamed answer of {words} words at "
            f"{FAKE_CHUNK * 1000:.0f}ms a word, median of 3):"
        )
        lines += await cost_rows(env, fake)
    finally:
        await env.shutdown()
    return lines


if __name__ == "__main__":
    for line in asyncio.run(measure()):
        print(line)
    os._exit(0)
