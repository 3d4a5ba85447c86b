"""`make bench`: what orchestration costs on top of the model call it orchestrates.

Measured side by side in one run, interleaved, with the fake model answering at once so
only Steward and Temporal are timed:

- the floor: the `complete` activity's code awaited directly (no Temporal);
- one agent step through Temporal: a one-turn AgentWorkflow run, start to result;
- the marginal cost of one more step: (a five-turn run - a one-turn run) / 4;
- completed runs per second at 1, 10 and 50 concurrent runs;
- the model layer's own cost per call (routing, budget check, ledger) against one step;
- the payload codec's cost per step (AES-256-GCM: encrypting and decrypting each payload
  one more step adds to history), against one step, and the marginal step with the codec
  off, interleaved with the same runs on the same server;
- the support playbook's cost on the shipped tickets routed by tier, against every call on
  the strongest tier (litellm's prices for gpt-4o-mini and gpt-4o, the fake's token counts);
- replay time per 1,000 history events and trace decrypting/building/rendering time, on
  the history of a 100-step agent run;
- replay's rate in events per second over the committed histories, as committed and
  encrypted, against a bare Replayer's floor (`bench/replay.py`, no server);
- retrieval: ingest throughput, query latency at 1k, 10k and 50k chunks, and a search as
  an activity against the same search called directly (`bench/retrieval.py`);
- a handoff to a specialist (a child workflow) against a direct tool call by the same
  parent agent, interleaved (`bench/handoffs.py`);
- streaming: time to first token through Steward against litellm called directly, on the
  fake and the local model, and what a run's stream costs in history events and bytes
  (`bench/streaming.py`);
- last, on a server of its own: the same small agent task as plain Python, as a minimal
  hand-written Temporal workflow (the floor, `bench/raw.py`), as a Steward run and on
  pydantic-ai's Temporal integration, side by side, ending with Steward's figures as
  ratios over raw Temporal's and pydantic-ai's against issue 18's targets
  (`bench/overhead.py`).

Each is measured on a persisted dev server (SQLite file, like the embedded one) with
Steward's tuning and with the server's defaults, so the effect of the tuning is visible.
Worker and client share this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.llm import LLMActivities
from bench import evals as eval_bench
from bench import handoffs as handoff_bench
from bench import long_runs as long_runs_bench
from bench import overhead as side_by_side
from bench import replay as replay_bench
from bench import retrieval as retrieval_bench
from bench import steward_plugin
from bench import streaming as streaming_bench
from steward import devserver
from steward import search_attributes as sa
from steward.budget import next_call_exceeds
from steward.codec import codec_from_environment, encrypted_key_id
from steward.config import Deployment, StewardConfig, load_config
from steward.decoding import decode_history, history_payloads
from steward.models import (
    AgentProfile,
    Budget,
    Ledger,
    LLMRequest,
    LLMResult,
    Message,
    ModelCallRecord,
    RunProgress,
    Usage,
)
from steward.plugin import StewardPlugin
from steward.replay import replay
from steward.routing import Step, choose_tier
from steward.runs import start_run
from steward.trace import build_trace, render_html, render_text
from tests.support.fake_model import FakeModel, install_fake_model
from tests.support.stack import activities_for_tests, running_workers

ANSWER = json.dumps({"action": "answer", "answer": "ok"})
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "25"))
CONCURRENCY = (1, 10, 50)
RUNS_PER_LEVEL = int(os.environ.get("BENCH_RUNS", "100"))


def config_for_bench(outbox: str) -> StewardConfig:
    base = load_config("examples/steward.yaml").model_dump()
    base["agents"]["support-reply"]["draft"] = "write"  # the fake's answer is the reply
    return StewardConfig.model_validate(
        base
        | {"tiers": {name: [{"model": "fake/bench"}] for name in base["tiers"]}, "outbox": outbox}
    )


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


async def agent_run(
    client: Client, config: StewardConfig, queue: str, fake: FakeModel, turns: int
) -> WorkflowHandle[Any, Any]:
    for _ in range(turns - 1):
        fake.queue("not json")  # an invalid turn: the loop tells the model and goes on
    fake.queue(ANSWER)
    handle = await start_run(client, config, "helpdesk", "say ok", "bench", task_queue=queue)
    result = await handle.result()
    assert result.status == "completed", result
    return handle


async def measure(
    label: str,
    env: WorkflowEnvironment,
    fake: FakeModel,
    config: StewardConfig,
    *,
    codec_off: bool = False,
) -> dict[str, Any]:
    """Direct call, one-step run, +1 step, throughput; with `codec_off`, also the one- and
    five-step runs of a client and workers without the codec, interleaved with the rest.
    """
    llm = LLMActivities({"fast": [Deployment(model="fake/bench")]}, allow_paid=False)
    request = LLMRequest(step="bench", tier="fast", messages=[Message(role="user", content="hi")])
    activity_env = ActivityEnvironment()
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    plain_queue = f"bench-plain-{uuid.uuid4().hex[:8]}"
    address = env.client.service_client.config.target_host
    plain = await Client.connect(address, plugins=[StewardPlugin(None)])
    direct: list[float] = []
    one: list[float] = []
    five: list[float] = []
    one_plain: list[float] = []
    five_plain: list[float] = []

    async def direct_call() -> None:
        fake.queue(ANSWER)
        await activity_env.run(llm.complete, request)

    async with AsyncExitStack() as workers:
        await workers.enter_async_context(
            running_workers(env.client, config, queue, activities=activities_for_tests(config))
        )
        if codec_off:
            await workers.enter_async_context(
                running_workers(plain, config, plain_queue, activities=activities_for_tests(config))
            )
            await agent_run(plain, config, plain_queue, fake, 1)
        await agent_run(env.client, config, queue, fake, 1)  # warm up the worker and caches
        for _ in range(ROUNDS):  # interleaved, so drift in the machine hits all alike
            direct.append(await timed(direct_call))
            one.append(await timed(lambda: agent_run(env.client, config, queue, fake, 1)))
            five.append(await timed(lambda: agent_run(env.client, config, queue, fake, 5)))
            if codec_off:
                one_plain.append(
                    await timed(lambda: agent_run(plain, config, plain_queue, fake, 1))
                )
                five_plain.append(
                    await timed(lambda: agent_run(plain, config, plain_queue, fake, 5))
                )
        codec_cost = codec_step_cost(
            await (await agent_run(env.client, config, queue, fake, 1)).fetch_history(),
            await (await agent_run(env.client, config, queue, fake, 5)).fetch_history(),
        )
        throughput: dict[int, float] = {}
        for level in CONCURRENCY:
            semaphore = asyncio.Semaphore(level)

            async def bounded(gate: asyncio.Semaphore) -> None:
                async with gate:
                    await agent_run(env.client, config, queue, fake, 1)

            started = time.perf_counter()
            await asyncio.gather(*(bounded(semaphore) for _ in range(RUNS_PER_LEVEL)))
            throughput[level] = RUNS_PER_LEVEL / (time.perf_counter() - started)
    d, o, f = (statistics.median(x) for x in (direct, one, five))
    measured = {
        "label": label,
        "direct": d,
        "one": o,
        "step": (f - o) / 4,
        "throughput": throughput,
    }
    measured["codec"] = codec_cost
    if codec_off:
        o_plain, f_plain = statistics.median(one_plain), statistics.median(five_plain)
        measured["step_plain"] = (f_plain - o_plain) / 4
    return measured


def codec_step_cost(
    one: WorkflowHistory, five: WorkflowHistory, rounds: int = 200
) -> dict[str, float]:
    """What the payload codec costs per agent step, in CPU: each payload one more step adds
    to history encrypted once (by its writer) and decrypted once (by its reader), with the
    bench's key ring, from a one-step and a five-step run's stored payloads.
    """
    codec = codec_from_environment()
    assert codec is not None, "the bench measures the codec: it cannot be off"

    def stored(history: WorkflowHistory) -> list[Payload]:
        return [p for p in history_payloads(history) if encrypted_key_id(p) is not None]

    def seconds_per_round(payloads: list[Payload]) -> float:
        plain = [codec.decrypt(payload) for payload in payloads]
        started = time.perf_counter()
        for _ in range(rounds):
            for payload in plain:
                codec.decrypt(codec.encrypt(payload))
        return (time.perf_counter() - started) / rounds

    short, long = stored(one), stored(five)
    return {
        "us": (seconds_per_round(long) - seconds_per_round(short)) / 4 * 1e6,
        "payloads": (len(long) - len(short)) / 4,
        "bytes": (sum(p.ByteSize() for p in long) - sum(p.ByteSize() for p in short)) / 4,
    }


def model_layer_overhead_us(iterations: int = 20_000) -> float:
    """Routing + budget check + ledger bookkeeping for one call, in microseconds."""
    profile = AgentProfile(
        name="bench", kind="agent", tier_order=["fast", "strong"], budget=Budget(max_cost_usd=5.0)
    )
    ledger = Ledger()
    result = LLMResult(
        text="x",
        model="m",
        tier="fast",
        latency_ms=1.0,
        attempt=1,
        usage=Usage(input_tokens=500, output_tokens=50, cost_usd=0.0001),
    )
    started = time.perf_counter()
    for _ in range(iterations):
        choose_tier(Step("plan", difficulty="high"), profile, ledger)
        next_call_exceeds(profile.budget, ledger)
        ledger.add_call(result)
        ModelCallRecord.of("plan", result)
    return (time.perf_counter() - started) / iterations * 1e6


PRICES = {"fast": "gpt-4o-mini", "strong": "gpt-4o"}
TICKETS = sorted(Path("examples/tickets").glob("*.txt"))


DRAFT = (
    "Dear customer, thank you for writing to us about your order. We have opened a case "
    "and a specialist is reviewing your account right now. You will hear from us within "
    "one business day with the next steps. If anything changes in the meantime, reply to "
    "this email and quote your order number. We are sorry for the trouble this has caused."
)
"""The support draft the fake writes: one its draft guardrail passes (a repeated sentence
is written again, and the fake has no second draft queued)."""


async def waiting_for_approval(handle: WorkflowHandle[Any, Any]) -> RunProgress:
    """The run's progress once its approval waits; an error, not a wait forever, if the run
    ends first or waits for nothing within a minute."""
    async with asyncio.timeout(60):
        while True:
            progress: RunProgress = await handle.query("progress", result_type=RunProgress)
            if progress.pending:
                return progress
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                raise AssertionError(f"{handle.id} ended without asking for approval: {progress}")
            await asyncio.sleep(0.02)


async def routed_costs(
    env: WorkflowEnvironment, fake: FakeModel, config: StewardConfig
) -> list[tuple[str, float, float]]:
    """(ticket, routed cost, all-strongest cost) for each shipped ticket."""
    import litellm

    def price(model: str, prompt: int, completion: int) -> float:
        cost_in, cost_out = litellm.cost_per_token(
            model=model, prompt_tokens=prompt, completion_tokens=completion
        )
        return float(cost_in + cost_out)

    rows = []
    queue = f"bench-cost-{uuid.uuid4().hex[:8]}"
    async with running_workers(env.client, config, queue, activities=activities_for_tests(config)):
        for ticket in TICKETS:
            fake.queue('{"category": "billing", "urgency": "normal"}', output_tokens=12)
            fake.queue(DRAFT, output_tokens=180)
            handle = await start_run(
                env.client,
                config,
                "support-reply",
                ticket.read_text(),
                "bench",
                task_queue=queue,
            )
            progress = await waiting_for_approval(handle)
            await handle.terminate("bench: cost measured, nothing to send")
            calls = progress.model_calls
            routed = sum(price(PRICES[c.tier], c.input_tokens, c.output_tokens) for c in calls)
            strongest = sum(price(PRICES["strong"], c.input_tokens, c.output_tokens) for c in calls)
            rows.append((ticket.stem, routed, strongest))
    return rows


async def long_run_history(
    env: WorkflowEnvironment, fake: FakeModel, config: StewardConfig, steps: int = 100
) -> WorkflowHistory:
    """The history of one agent run of `steps` model calls."""
    data = config.model_dump()
    data["agents"]["helpdesk"]["max_turns"] = steps
    long = StewardConfig.model_validate(data)
    queue = f"bench-long-{uuid.uuid4().hex[:8]}"
    async with running_workers(env.client, long, queue, activities=activities_for_tests(long)):
        for _ in range(steps - 1):
            fake.queue("not json")
        fake.queue(ANSWER)
        handle = await start_run(env.client, long, "helpdesk", "go", "bench", task_queue=queue)
        await handle.result()
        return await handle.fetch_history()


async def history_costs(history: WorkflowHistory, rounds: int = 5) -> dict[str, float]:
    """Median replay ms per 1,000 events, and ms to decrypt the history (the codec), build
    and render the trace."""
    replays, decrypts, builds, texts, htmls = [], [], [], [], []
    codec = codec_from_environment()
    for _ in range(rounds):
        started = time.perf_counter()
        (report,) = await replay([history])
        replays.append((time.perf_counter() - started) * 1000 / len(history.events) * 1000)
        assert report.ok, report
        started = time.perf_counter()
        readable = await decode_history(history, codec)
        decrypts.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        trace = build_trace(readable)
        builds.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        render_text(trace)
        texts.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        render_html(trace)
        htmls.append((time.perf_counter() - started) * 1000)
    return {
        "events": float(len(history.events)),
        "replay_per_1000": statistics.median(replays),
        "decrypt": statistics.median(decrypts),
        "build": statistics.median(builds),
        "text": statistics.median(texts),
        "html": statistics.median(htmls),
    }


async def main() -> None:
    # Only the figures: litellm and the SDK log every call and shutdown at INFO otherwise.
    logging.basicConfig(level=logging.WARNING)
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "temporalio"):
        logging.getLogger(name).setLevel(logging.ERROR)
    fake = FakeModel()
    install_fake_model(fake)
    scratch = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    config = config_for_bench(str(scratch / "outbox"))
    results = []
    costs: list[tuple[str, float, float]] = []
    for label, extra in (("tuned", devserver.tuning_args()), ("defaults", [])):
        env = await WorkflowEnvironment.start_local(
            plugins=[steward_plugin()],
            dev_server_existing_path=str(devserver.temporal_binary()),
            search_attributes=sa.ALL,
            dev_server_extra_args=[*extra, "--db-filename", str(scratch / f"{label}.db")],
            dev_server_log_level="error",
        )
        try:
            results.append(await measure(label, env, fake, config, codec_off=label == "tuned"))
            if label == "tuned":
                costs = await routed_costs(env, fake, config)
                long_history = await long_run_history(env, fake, config)
        finally:
            await env.shutdown()

    print(
        f"\nSteward bench: fake model (no latency), {ROUNDS} interleaved rounds, "
        f"{RUNS_PER_LEVEL} runs per concurrency level, {os.cpu_count()} cores"
    )
    print(f"tuned server settings: {' '.join(devserver.tuning_args())}\n")
    header = f"{'server':<9} {'direct call':>12} {'1-step run':>11} {'ratio':>7} {'+1 step':>9}"
    header += "".join(f" {f'runs/s @{c}':>12}" for c in CONCURRENCY)
    print(header)
    for r in results:
        line = (
            f"{r['label']:<9} {r['direct']:>10.2f}ms {r['one']:>9.1f}ms "
            f"{r['one'] / r['direct']:>6.0f}x {r['step']:>7.1f}ms"
        )
        line += "".join(f" {r['throughput'][c]:>12.1f}" for c in CONCURRENCY)
        print(line)
    tuned, default = results
    overhead = model_layer_overhead_us()
    print(
        f"\nmodel layer per call (routing, budget, ledger): {overhead:.1f} us, "
        f"{overhead / 1000 / tuned['step']:.2%} of one step through Temporal"
    )
    codec = tuned["codec"]
    print(
        f"payload codec per step (AES-256-GCM, {codec['payloads']:.0f} payloads, "
        f"{codec['bytes'] / 1024:.1f} KB): {codec['us']:.0f} us CPU, "
        f"{codec['us'] / 1000 / tuned['step']:.2%} of one step through Temporal "
        f"({tuned['step']:.1f} ms); +1 step with the codec off: {tuned['step_plain']:.1f} ms "
        "(interleaved, same server)"
    )
    print("\nsupport playbook cost, routed by tier vs every call on the strongest tier:")
    for name, routed, strongest in costs:
        print(
            f"  {name:<20} ${routed:.6f} vs ${strongest:.6f}  ({1 - routed / strongest:.0%} saved)"
        )
    history = await history_costs(long_history)
    print(
        f"\n100-step agent run: {history['events']:.0f} events; replay "
        f"{history['replay_per_1000']:.0f} ms per 1,000 events; trace: decrypt "
        f"{history['decrypt']:.0f} ms, build {history['build']:.0f} ms, text "
        f"{history['text']:.0f} ms, html {history['html']:.0f} ms"
    )
    print(
        f"\ntuning: 1-step run {default['one'] / tuned['one']:.1f}x faster, "
        f"+1 step {default['step'] / max(tuned['step'], 1e-9):.1f}x faster than on defaults"
    )
    for line in await replay_bench.measure():
        print(line)
    await eval_bench.main(scratch)
    for line in await retrieval_bench.measure():
        print(line)
    for line in await handoff_bench.measure():  # installs its own fake model
        print(line)
    for line in await long_runs_bench.measure():
        print(line)
    for line in await streaming_bench.measure():  # installs its own fake model
        print(line)
    print(side_by_side.report(await side_by_side.measure()))


if __name__ == "__main__":
    asyncio.run(main())
    # Temporal's native runtime can abort the interpreter while it finalizes, after every
    # figure is printed (like the CLI, exit without finalization once output is flushed).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
