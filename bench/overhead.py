"""Overhead, side by side: one small agent task four ways, on one server, interleaved.

The task is what an agent step costs at its smallest: a model call that asks for one
tool, the tool (an HTTP GET to a loopback page), and a model call that answers. It runs

- (a) as plain async Python: the fake model's latency, the GET, the latency again;
- (r) as raw Temporal, the floor: a minimal hand-written workflow calling a model
  activity, Steward's `http_get` activity and the model activity again, with Steward's
  data converter and payload codec (`bench/raw.py`);
- (b) as a Steward agent run: `AgentWorkflow` with one granted tool, `http_get`, whose
  read risk the policy allows without approval, the fake model answering through litellm;
- (c) as a pydantic-ai agent on its Temporal integration (`bench/peer.py`).

The durable runs use one dev server started with Steward's tuning, a fake model with the
same latency, and a worker each in its own process (started with this Python), so their
memory is separable and none shares a GIL with the client or another. The page is served
by a process of its own. Rounds are interleaved (a, r, b, c, a, r, b, c, ...) so drift in
the machine hits all four alike; so are the throughput runs at each concurrency.

Reported: median run latency; overhead per step over (a), with three steps (model, tool,
model); runs per second at 1, 10 and 100 concurrent runs; CPU time per run of each worker
and of the server; worker memory (from /proc: VmRSS idle and after the load, VmHWM);
history events and bytes per step, and the events by type; where a durable run's time
goes, from its history's event times; Steward's figures as ratios over raw Temporal and
over pydantic-ai, against issue 18's targets; the machine's load average, since a loaded
machine moves every number. `python -m bench.overhead` runs this section alone;
BENCH_OVERHEAD_ROUNDS and BENCH_OVERHEAD_RUNS (runs at each concurrency, as "20,100,200")
make it shorter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.handler import Call
from bench import steward_plugin
from bench.raw import RawAnswer, RawTask
from steward import devserver
from steward import search_attributes as sa
from steward.config import StewardConfig, load_config
from steward.runs import start_run
from tests.support.fake_model import FakeModel, FakeReply, install_fake_model

LATENCY: Final = float(os.environ.get("BENCH_MODEL_LATENCY", "0.02"))
ROUNDS: Final = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", "20"))
CONCURRENCY: Final = (1, 10, 100)


def runs_at(given: str | None = os.environ.get("BENCH_OVERHEAD_RUNS")) -> dict[int, int]:
    """Runs measured at each concurrency: 20, 100 and 200, or as BENCH_OVERHEAD_RUNS says."""
    if not given:
        return {1: 20, 10: 100, 100: 200}
    counts = [int(count) for count in given.split(",")]
    if len(counts) != len(CONCURRENCY) or min(counts) < 1:
        raise ValueError(
            f"BENCH_OVERHEAD_RUNS={given!r}: expected {len(CONCURRENCY)} counts of runs, "
            f"one for each concurrency {CONCURRENCY}, as '20,100,200'"
        )
    return dict(zip(CONCURRENCY, counts, strict=True))


RUNS_AT: Final = runs_at()
STEPS: Final = 3  # model, tool, model
RUN_TIMEOUT: Final = 120.0
AGENT: Final = "bench"
PAGE: Final = b"hello from the bench page\n"
ANSWER: Final = json.dumps({"action": "answer", "answer": "ok"})
_URL = re.compile(r"https?://\S+")
_READY = "ready"
LABELS: Final = {
    "plain": "(a) plain",
    "raw": "(r) raw Temporal",
    "steward": "(b) Steward",
    "peer": "(c) pydantic-ai",
}
DURABLE: Final = ("raw", "steward", "peer")

# One TLS context for every call, as Steward's http_get tool keeps one.
TLS = httpx.create_ssl_context()


def bench_config(scratch: Path) -> StewardConfig:
    """The shipped config with the fake model, loopback fetches, and a one-tool agent."""
    base = load_config("examples/steward.yaml").model_dump()
    base["tiers"] = {name: [{"model": "fake/bench"}] for name in base["tiers"]}
    base["outbox"] = str(scratch / "outbox")
    base["http"]["allow_hosts"] = ["127.0.0.1"]
    base["agents"][AGENT] = {
        "kind": "agent",
        "description": "The overhead bench: fetches a page, then answers.",
        "instructions": "You are a helpful helpdesk agent. Be brief.",
        "tools": ["http_get"],
    }
    return StewardConfig.model_validate(base)


class BenchFake(FakeModel):
    """Steward's fake model answering from the conversation, so concurrent runs need no queue.

    With no tool result yet it asks for `http_get` on the URL in the task; with one, it
    answers. Calls are not recorded, so the worker's memory is the stack's, not the fake's.
    """

    def _take(self, request: Call) -> FakeReply:
        contents = [str(message.get("content") or "") for message in request.messages]
        if any(content.startswith("Result of http_get") for content in contents):
            return FakeReply(ANSWER)
        match = _URL.search(" ".join(contents))
        assert match is not None, "no URL in the task"
        return FakeReply(json.dumps({"action": "http_get", "arguments": {"url": match.group()}}))


# --- the four ways to run the task --------------------------------------------------------


async def plain_run(url: str) -> None:
    """(a): no orchestration; the tool's GET made as Steward's http_get makes it."""
    await asyncio.sleep(LATENCY)  # the model asks for the tool
    async with httpx.AsyncClient(follow_redirects=False, timeout=15, verify=TLS) as client:
        response = await client.get(url)
    assert response.content == PAGE
    await asyncio.sleep(LATENCY)  # the model answers


@dataclass
class Stack:
    """What the four runners need: the client, queues, the page, and the ids of runs."""

    client: Client
    peer_client: Client
    config: StewardConfig
    url: str
    steward_queue: str
    peer_queue: str
    raw_queue: str
    ids: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in DURABLE})

    def task(self) -> str:
        return f"Fetch {self.url} and say ok."

    async def steward_run(self, queue: str | None = None, kind: str = "steward") -> None:
        """(b): a Steward agent run, start to result.

        `queue` and `kind` let a comparison add another Steward worker (a changed build)
        as a kind of its own.
        """
        handle = await start_run(
            self.client,
            self.config,
            AGENT,
            self.task(),
            "bench",
            task_queue=queue or self.steward_queue,
        )
        async with asyncio.timeout(RUN_TIMEOUT):  # a dead worker must not hang the bench
            result = await handle.result()
        assert result.status == "completed", result
        assert [a.outcome for a in result.actions] == ["done"], result.actions
        assert "HTTP 200" in result.actions[0].output, result.actions[0].output
        self.ids[kind].append(handle.id)

    async def raw_run(self) -> None:
        """(r): the hand-written workflow, started by name with Steward's client (its
        converter and codec), start to result.
        """
        workflow_id = f"raw-{uuid.uuid4().hex[:10]}"
        async with asyncio.timeout(RUN_TIMEOUT):
            result = await self.client.execute_workflow(
                "RawAgentWorkflow",
                RawTask(task=self.task()),
                id=workflow_id,
                task_queue=self.raw_queue,
                result_type=RawAnswer,
            )
        assert result.answer == "ok", result
        assert [output.startswith("HTTP 200") for output in result.tool_outputs] == [True], result
        self.ids["raw"].append(workflow_id)

    async def peer_run(self) -> None:
        """(c): the pydantic-ai agent's workflow, start to result.

        Started by name with a client as pydantic-ai documents it (its plugin, no payload
        codec): the peer's worker cannot decrypt Steward's payloads, and encryption is a
        cost of Steward's the comparison should show, not hide.
        """
        workflow_id = f"peer-{uuid.uuid4().hex[:10]}"
        async with asyncio.timeout(RUN_TIMEOUT):
            output = await self.peer_client.execute_workflow(
                "PeerAgentWorkflow",
                self.task(),
                id=workflow_id,
                task_queue=self.peer_queue,
                result_type=str,
            )
        assert output == "ok", output
        self.ids["peer"].append(workflow_id)

    def runners(self) -> dict[str, Callable[[], Awaitable[None]]]:
        return {
            "plain": lambda: plain_run(self.url),
            "raw": self.raw_run,
            "steward": self.steward_run,
            "peer": self.peer_run,
        }


# --- history: size and where the time goes -------------------------------------------------

PHASES: Final = (
    "workflow tasks queued",
    "workflow tasks",
    "activities queued",
    "model activities",
    "tool activities",
    "other activities",
    "rest of server time",
    "client: start, result",
)
BESIDE: Final = "workflow tasks beside"
"""Workflow tasks (queued and running) scheduled while an activity ran: Steward's model
activity signals streamed text to its run, and the run's worker handles each signal as the
call goes on. They take CPU, not the run's path, so they are shown apart from `PHASES`."""
MODEL_ACTIVITIES: Final = ("complete", "raw_complete", "__model_request")
TOOL_ACTIVITIES: Final = ("http_get", "__call_tool")
"""Activity type names (or their ends, for pydantic-ai's generated names) by what they do."""


def history_size(history: WorkflowHistory) -> tuple[int, int]:
    """(events, serialized bytes) of a history."""
    return len(history.events), sum(event.ByteSize() for event in history.events)


def event_types(history: WorkflowHistory) -> Counter[str]:
    """How many events of each type a history holds ("activity task scheduled": 3, ...)."""
    return Counter(
        EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower().replace("_", " ")
        for event in history.events
    )


def phases(history: WorkflowHistory, run_ms: float) -> dict[str, float]:
    """Milliseconds one run spent in each phase, from its events' server times.

    Queued is scheduled to started: the server handing a task to a poller. A workflow
    task runs from started to completed: the worker's processing and the server recording
    its reply. An activity runs from started to completed, the fake model's latency or the
    GET included; activities are told apart by their type's name. A workflow task
    scheduled while an activity runs is counted apart (`BESIDE`), since the run waits on
    the activity meanwhile. The rest of the server time is what lies between (the start,
    a task waiting for the one beside it to finish, the last task's reply to the run's
    completion); the client's part is the run's latency as the client measured it minus
    the time between the first and last events.
    """
    spent = dict.fromkeys((*PHASES, BESIDE), 0.0)
    at = {event.event_id: _ms(event) for event in history.events}
    activity_type: dict[int, str] = {}
    running: list[tuple[float, float]] = []  # each activity's (scheduled, completed) times
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activity_type[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            running.append((at[scheduled_id], at[event.event_id]))
    scheduled_of: dict[int, int] = {}  # a workflow task's started event -> its scheduled one

    def beside(scheduled_id: int) -> bool:
        return any(begun < at[scheduled_id] < ended for begun, ended in running)

    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            scheduled_id = event.workflow_task_started_event_attributes.scheduled_event_id
            scheduled_of[event.event_id] = scheduled_id
            phase = BESIDE if beside(scheduled_id) else "workflow tasks queued"
            spent[phase] += at[event.event_id] - at[scheduled_id]
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            started_id = event.workflow_task_completed_event_attributes.started_event_id
            phase = BESIDE if beside(scheduled_of[started_id]) else "workflow tasks"
            spent[phase] += at[event.event_id] - at[started_id]
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            scheduled_id = event.activity_task_started_event_attributes.scheduled_event_id
            spent["activities queued"] += at[event.event_id] - at[scheduled_id]
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attributes = event.activity_task_completed_event_attributes
            name = activity_type[attributes.scheduled_event_id]
            spent[_activity_phase(name)] += at[event.event_id] - at[attributes.started_event_id]
    server = _ms(history.events[-1]) - _ms(history.events[0])
    spent["rest of server time"] = server - sum(spent[phase] for phase in PHASES)
    spent["client: start, result"] = run_ms - server
    return spent


def _activity_phase(name: str) -> str:
    if name.endswith(MODEL_ACTIVITIES):
        return "model activities"
    if name.endswith(TOOL_ACTIVITIES):
        return "tool activities"
    return "other activities"


def _ms(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e6


# --- processes -----------------------------------------------------------------------------


def worker_argv(kind: str, address: str, queue: str, scratch: Path) -> list[str]:
    """The command that runs one worker (`raw`, `steward` or `peer`) in its own process."""
    return [
        sys.executable,
        "-m",
        "bench.overhead",
        "worker",
        kind,
        "--address",
        address,
        "--queue",
        queue,
        "--scratch",
        str(scratch),
        "--latency",
        str(LATENCY),
    ]


@dataclass
class Child:
    """A child process, what it printed after 'ready', and the task reading the rest."""

    process: asyncio.subprocess.Process
    said: str
    reader: asyncio.Task[None]


async def spawn(argv: Sequence[str]) -> Child:
    """Start a child and wait for its first stdout line ('ready ...')."""
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    async with asyncio.timeout(120):
        line = (await process.stdout.readline()).decode().strip()
    if not line.startswith(_READY):
        raise RuntimeError(f"{' '.join(argv[3:5])} did not start (exit {process.returncode})")
    # Keep reading, so a chatty child never blocks on a full pipe.
    reader = asyncio.create_task(_relay(process.stdout))
    return Child(process, line.removeprefix(_READY).strip(), reader)


async def _relay(stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        sys.stderr.write(line.decode(errors="replace"))


async def stop(child: Child) -> None:
    """Terminate the child (killing it if it lingers) and finish reading its output."""
    process = child.process
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    # A reader left pending at exit makes the interpreter abort as it finalizes.
    await child.reader


def _exit_on_sigterm() -> None:
    # The children hold nothing worth a graceful shutdown, and a Temporal worker's can wait
    # on its pollers for a long time.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def server_pid(db: Path) -> int:
    """The dev server process serving this database file."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start-dev" in argv and os.fsencode(db) in argv:
            return int(proc.name)
    raise RuntimeError(f"no dev server process found for {db}")


def memory_mb(pid: int) -> dict[str, float]:
    """A process's resident memory now (VmRSS) and at its peak (VmHWM), in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


# --- the measurement -----------------------------------------------------------------------


async def timed(action: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


async def throughput(action: Callable[[], Awaitable[None]], level: int, runs: int) -> float:
    """Completed runs per second with `level` runs in flight."""
    gate = asyncio.Semaphore(level)

    async def bounded() -> None:
        async with gate:
            await action()

    started = time.perf_counter()
    await asyncio.gather(*(bounded() for _ in range(runs)))
    return runs / (time.perf_counter() - started)


@dataclass
class Result:
    """Medians and totals of one measurement; `report` prints them."""

    latency: dict[str, float]
    phases: dict[str, dict[str, float]]
    runs_per_second: dict[str, dict[int, float]]
    cpu_ms_per_run: dict[str, float]
    server_cpu_ms_per_run: dict[str, float]
    memory: dict[str, dict[str, float]]
    history: dict[str, tuple[float, float]]  # median events and bytes of a run's history
    event_types: dict[str, Counter[str]]  # of the run whose history has the median length
    load: tuple[str, str]  # the machine's load averages before and after
    runs_at: dict[int, int]


async def measure_with(stack: Stack, pids: dict[str, int], server_pid: int) -> Result:
    """Interleaved latency rounds, throughput per concurrency, CPU, memory, histories.

    The server's CPU time is split by kind of run during the throughput runs (one kind at a
    time), less what it spends idle meanwhile, measured while the plain runs go.
    """
    load_before = _load()
    runners = stack.runners()
    for run in runners.values():  # warm up workers, connections and caches
        for _ in range(3):
            await run()
    idle = {kind: memory_mb(pid)["VmRSS"] for kind, pid in pids.items()}
    cpu_before = {kind: cpu_ms(pid) for kind, pid in pids.items()}
    latencies: dict[str, list[float]] = {kind: [] for kind in runners}
    for kind in stack.ids:
        stack.ids[kind].clear()
    for _ in range(ROUNDS):
        for kind, run in runners.items():
            latencies[kind].append(await timed(run))
    ids = {kind: list(done) for kind, done in stack.ids.items()}
    rates: dict[str, dict[int, float]] = {kind: {} for kind in runners}
    server_spent = dict.fromkeys(runners, 0.0)
    wall_spent = dict.fromkeys(runners, 0.0)
    for level in CONCURRENCY:
        for kind, run in runners.items():
            server_before, started = cpu_ms(server_pid), time.perf_counter()
            rates[kind][level] = await throughput(run, level, RUNS_AT[level])
            server_spent[kind] += cpu_ms(server_pid) - server_before
            wall_spent[kind] += time.perf_counter() - started
    runs = ROUNDS + sum(RUNS_AT.values())
    cpu = {kind: (cpu_ms(pid) - cpu_before[kind]) / runs for kind, pid in pids.items()}
    idle_rate = server_spent["plain"] / wall_spent["plain"]  # CPU ms per second
    server_cpu = {
        kind: (server_spent[kind] - idle_rate * wall_spent[kind]) / sum(RUNS_AT.values())
        for kind in pids
    }
    memory = {kind: memory_mb(pid) | {"idle": idle[kind]} for kind, pid in pids.items()}
    histories = {
        kind: [await stack.client.get_workflow_handle(i).fetch_history() for i in ids[kind]]
        for kind in ids
    }
    spent = {
        kind: [phases(h, ms) for h, ms in zip(histories[kind], latencies[kind], strict=True)]
        for kind in ids
    }
    sizes = {kind: [history_size(h) for h in histories[kind]] for kind in ids}
    # Steward's histories vary a little from run to run (how a streamed answer is batched
    # to watchers depends on timing), so a typical one is the one of median length.
    typical = {
        kind: sorted(histories[kind], key=lambda h: len(h.events))[len(histories[kind]) // 2]
        for kind in ids
    }
    return Result(
        latency={kind: statistics.median(values) for kind, values in latencies.items()},
        phases={
            kind: {p: statistics.median(run[p] for run in spent[kind]) for p in (*PHASES, BESIDE)}
            for kind in ids
        },
        runs_per_second=rates,
        cpu_ms_per_run=cpu,
        server_cpu_ms_per_run=server_cpu,
        memory=memory,
        history={
            kind: (
                statistics.median(events for events, _ in sizes[kind]),
                statistics.median(size for _, size in sizes[kind]),
            )
            for kind in ids
        },
        event_types={kind: event_types(typical[kind]) for kind in ids},
        load=(load_before, _load()),
        runs_at=dict(RUNS_AT),
    )


async def peer_client(address: str) -> Client:
    """A client for the peer, as pydantic-ai documents it (imported only when measuring)."""
    from bench import peer

    return await peer.connect(address)


async def measure(server_args: Sequence[str] | None = None) -> Result:
    """Start the server, the page and the three workers; measure; stop everything."""
    scratch = Path(tempfile.mkdtemp(prefix="steward-overhead-"))
    env = await WorkflowEnvironment.start_local(
        plugins=[steward_plugin()],
        dev_server_existing_path=str(devserver.temporal_binary()),
        search_attributes=sa.ALL,
        dev_server_extra_args=[
            *(devserver.tuning_args() if server_args is None else server_args),
            "--db-filename",
            str(scratch / "temporal.db"),
        ],
        dev_server_log_level="error",
    )
    children: list[Child] = []
    try:
        address = env.client.service_client.config.target_host
        page = await spawn([sys.executable, "-m", "bench.overhead", "page"])
        children.append(page)
        queues = {kind: f"overhead-{kind}-{uuid.uuid4().hex[:8]}" for kind in DURABLE}
        pids = {}
        for kind, queue in queues.items():
            worker = await spawn(worker_argv(kind, address, queue, scratch))
            children.append(worker)
            pids[kind] = worker.process.pid
        stack = Stack(
            client=env.client,
            peer_client=await peer_client(address),
            config=bench_config(scratch),
            url=f"http://127.0.0.1:{page.said}/page",
            steward_queue=queues["steward"],
            peer_queue=queues["peer"],
            raw_queue=queues["raw"],
        )
        return await measure_with(stack, pids, server_pid(scratch / "temporal.db"))
    finally:
        for child in reversed(children):
            await stop(child)
        await env.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)


def report(result: Result, server_args: Sequence[str] | None = None) -> str:
    """The comparison as text."""
    args = devserver.tuning_args() if server_args is None else server_args
    durable = [kind for kind in result.latency if kind != "plain"]
    runs = ", ".join(str(result.runs_at[c]) for c in CONCURRENCY)
    lines = [
        "\nOverhead, side by side: model call -> tool (HTTP GET on loopback) -> model call; "
        f"fake model {LATENCY * 1000:.0f} ms per call; {ROUNDS} interleaved rounds; "
        f"{runs} runs at concurrency {', '.join(map(str, CONCURRENCY))}; "
        f"{os.cpu_count()} cores; each worker in its own process",
        f"server settings: {' '.join(args) or '(defaults)'}",
        f"load average (1, 5, 15 min) before: {result.load[0]}, after: {result.load[1]}",
        "",
        f"{'':<16} {'median run':>11} {'overhead/step':>14}"
        + "".join(f" {f'runs/s @{c}':>12}" for c in CONCURRENCY),
    ]
    for kind, latency in result.latency.items():
        label = LABELS.get(kind, kind)
        per_step = "" if kind == "plain" else f"{overhead_per_step(result, kind):.1f}ms"
        lines.append(
            f"{label:<16} {latency:>9.1f}ms {per_step:>14}"
            + "".join(f" {result.runs_per_second[kind][c]:>12.1f}" for c in CONCURRENCY)
        )
    lines += [
        "",
        f"{'':<16} {'CPU/run: worker':>16} {'server':>7} {'worker RSS: idle':>17}"
        f" {'after load':>11} {'peak':>7} {'events/step':>12} {'bytes/step':>11}",
    ]
    for kind in durable:
        mem = result.memory[kind]
        events, size = result.history[kind]
        lines.append(
            f"{LABELS.get(kind, kind):<16} {result.cpu_ms_per_run[kind]:>14.1f}ms"
            f" {result.server_cpu_ms_per_run[kind]:>5.1f}ms {mem['idle']:>15.0f}MB"
            f" {mem['VmRSS']:>9.0f}MB {mem['VmHWM']:>5.0f}MB"
            f" {events / STEPS:>12.1f} {size / STEPS:>11.0f}"
        )
    lines += ["", "events in a run's history, by type (the run of median length):"]
    lines.append(f"  {'':<34}" + "".join(f" {LABELS.get(kind, kind):>16}" for kind in durable))
    seen = sorted(
        {name for kind in durable for name in result.event_types[kind]},
        key=lambda name: -max(result.event_types[kind][name] for kind in durable),
    )
    for name in [*seen, "total"]:
        counts = [
            result.event_types[kind].total() if name == "total" else result.event_types[kind][name]
            for kind in durable
        ]
        lines.append(f"  {name:<34}" + "".join(f" {count:>16}" for count in counts))
    lines += [
        "",
        "where a durable run's time goes (ms per run, medians, from history event times):",
    ]
    versus = "steward" in durable and "raw" in durable
    lines.append(
        f"  {'':<22}"
        + "".join(f" {LABELS.get(kind, kind):>16}" for kind in durable)
        + (f" {'Steward - raw':>16}" if versus else "")
    )
    for phase in (*PHASES, BESIDE):
        spent = result.phases
        lines.append(
            f"  {phase:<22}"
            + "".join(f" {spent[kind][phase]:>16.1f}" for kind in durable)
            + (f" {spent['steward'][phase] - spent['raw'][phase]:>+16.1f}" if versus else "")
        )
    lines.append(
        f"  ({BESIDE}: scheduled while an activity ran, such as a signal of streamed text; "
        "not part of the run's path, nor of the sum above)"
    )
    return "\n".join([*lines, *ratios(result)])


# Issue 18's targets for Steward: over raw Temporal, over pydantic-ai, and on its own.
OVER_RAW: Final = {"overhead per step @1": ("<=", 1.25), "runs/s @10": (">=", 0.9)}
OVER_PEER: Final = {f"runs/s @{c}": (">=", 1.5) for c in CONCURRENCY}
OWN: Final = {"worker CPU per run": 25.0, "worker RSS idle": 200.0, "events per step": 7.0}
UNITS: Final = {"worker CPU per run": "ms", "worker RSS idle": "MB", "events per step": ""}


def figures(result: Result, kind: str) -> dict[str, float]:
    """A durable kind's figures that Steward's are compared on, by name."""
    events, size = result.history[kind]
    return {
        "overhead per step @1": overhead_per_step(result, kind),
        **{f"runs/s @{c}": result.runs_per_second[kind][c] for c in CONCURRENCY},
        "worker CPU per run": result.cpu_ms_per_run[kind],
        "server CPU per run": result.server_cpu_ms_per_run[kind],
        "worker RSS idle": result.memory[kind]["idle"],
        "worker RSS after load": result.memory[kind]["VmRSS"],
        "events per step": events / STEPS,
        "bytes per step": size / STEPS,
    }


def ratios(result: Result) -> list[str]:
    """Steward's figures over raw Temporal's and the peer's, and against issue 18's targets."""
    others = [kind for kind in ("raw", "peer") if kind in result.latency]
    if "steward" not in result.latency or not others:
        return []
    steward = figures(result, "steward")
    theirs = {kind: figures(result, kind) for kind in others}
    targets = {"raw": OVER_RAW, "peer": OVER_PEER}
    heads = {"raw": "Steward/raw", "peer": "Steward/peer"}
    lines = [
        "",
        "Steward's figures over raw Temporal's and pydantic-ai's (above 1x, Steward's is the "
        "larger: worse for times, CPU, memory and sizes, better for runs/s); issue 18's "
        "targets in brackets:",
        f"  {'':<22}" + "".join(f" {heads[kind]:>26}" for kind in others),
    ]
    for name, value in steward.items():
        cells = []
        for kind in others:
            ratio = value / theirs[kind][name] if theirs[kind][name] > 0 else math.nan
            target = targets[kind].get(name)
            judged = f" [{target[0]}{target[1]}x {_judge(ratio, *target)}]" if target else ""
            cells.append(f"{ratio:.2f}x{judged}")
        lines.append(f"  {name:<22}" + "".join(f" {cell:>26}" for cell in cells))
    own = [
        f"{name} {steward[name]:.1f}{UNITS[name]} [<={bound:g}{UNITS[name]} "
        f"{_judge(steward[name], '<=', bound)}]"
        + (f" (raw Temporal: {theirs['raw'][name]:.1f}{UNITS[name]})" if "raw" in theirs else "")
        for name, bound in OWN.items()
    ]
    lines.append("Steward's own targets: " + "; ".join(own))
    return lines


def _judge(value: float, comparison: str, bound: float) -> str:
    met = value <= bound if comparison == "<=" else value >= bound
    return "met" if met else "missed"


def overhead_per_step(result: Result, kind: str) -> float:
    """Milliseconds a durable run adds to the plain one, per step (median runs)."""
    return (result.latency[kind] - result.latency["plain"]) / STEPS


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# --- child processes -----------------------------------------------------------------------


class PageHandler(BaseHTTPRequestHandler):
    """Answers every GET with PAGE (the benches' tool call fetches it)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line per request would swamp the bench's output


class _PageServer(ThreadingHTTPServer):
    request_queue_size = 1024  # 100 runs connect at once; the default backlog is 5
    daemon_threads = True


def serve_page() -> None:
    """Serve PAGE on a free loopback port until terminated; print the port first."""
    _exit_on_sigterm()
    server = _PageServer(("127.0.0.1", 0), PageHandler)
    print(_READY, server.server_address[1], flush=True)
    server.serve_forever()


async def steward_worker(address: str, queue: str, scratch: Path, latency: float) -> None:
    """Steward's default worker (workflows, model calls, non-privileged tools)."""
    from activities.llm import LLMActivities
    from activities.tools.email import OutboxActivities
    from workers.build import (
        Activities,
        authority,
        build_workers,
        file_activities,
        http_activities,
        retrieval_activities,
    )

    install_fake_model(BenchFake(latency=latency))
    config = bench_config(scratch)
    activities = Activities(
        llm=LLMActivities(config.tiers, allow_paid=False),
        outbox=OutboxActivities(Path(config.outbox), config.sender),
        authority=authority(config),
        files=file_activities(config),
        http=http_activities(config),
        # Granted to the example's agents; a worker must serve every granted tool.
        retrieval=retrieval_activities(config, environ={}),
    )
    client = await Client.connect(address, plugins=[steward_plugin()])
    (worker,) = build_workers(client, activities, task_queue=queue, role="default")
    async with worker:
        print(_READY, flush=True)
        await asyncio.Event().wait()


async def raw_worker(address: str, queue: str, scratch: Path, latency: float) -> None:
    """The raw Temporal worker: the same fake model, model name and tool settings."""
    from activities.tools.http_get import HttpActivities
    from bench import raw

    install_fake_model(BenchFake(latency=latency))
    config = bench_config(scratch)
    # Every tier of the bench's config is the one fake deployment Steward's runs call.
    deployment = next(iter(config.tiers.values()))[0]
    await raw.run_worker(
        address,
        queue,
        raw.ModelActivities(deployment.model, timeout_seconds=deployment.timeout_seconds),
        HttpActivities(
            config.http.allow_hosts,
            max_bytes=config.http.max_bytes,
            timeout_seconds=config.http.timeout_seconds,
        ),
    )


async def peer_worker(address: str, queue: str, latency: float) -> None:
    from bench import peer

    os.environ[peer.LATENCY_ENV] = str(latency)
    await peer.run_worker(address, queue)


def child(argv: Sequence[str]) -> None:
    """Entry point of the bench's child processes."""
    parser = argparse.ArgumentParser(prog="python -m bench.overhead")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("page")
    worker = commands.add_parser("worker")
    worker.add_argument("kind", choices=DURABLE)
    worker.add_argument("--address", required=True)
    worker.add_argument("--queue", required=True)
    worker.add_argument("--scratch", type=Path, required=True)
    worker.add_argument("--latency", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "page":
        serve_page()
        return
    _exit_on_sigterm()
    if args.kind == "steward":
        asyncio.run(steward_worker(args.address, args.queue, args.scratch, args.latency))
    elif args.kind == "raw":
        asyncio.run(raw_worker(args.address, args.queue, args.scratch, args.latency))
    else:
        asyncio.run(peer_worker(args.address, args.queue, args.latency))


async def main() -> None:
    print(report(await measure()))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1:])
    else:
        asyncio.run(main())
        # Temporal's Rust runtime can abort the interpreter as it finalizes (SIGABRT,
        # "PyGILState_Release: thread state ... must be current"; temporalio/sdk-python#300),
        # turning a finished bench into a failure. Nothing is left to clean up here.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
