"""`make chaos`: Steward under real faults, checked for exactly-once effects.

It starts its own persisted dev server on a free loopback port and a real worker as a
separate process (`tests/support/worker_proc.py`, every tier on the fake model answering
from a script file, so a restarted worker answers the same way; each worker is forked from
one process that did the imports, so a restart costs what a crash costs). It starts N runs:
half support-reply playbooks, whose reply needs an approval, half helpdesk agent runs that
answer without a tool. Then, all at once:

- an approver script sends each decision at a random time (approve or reject, by the
  `decide` update through `steward.runs.decide` or by the signal), and sends a few of them
  a second time, identically, straight to the workflow;
- the worker is killed with SIGKILL every few seconds and started again;
- the dev server is killed once and started again on the same database, just as two
  decisions are on their way;
- replies go to a real SMTP server (aiosmtpd on loopback), which refuses connections for a
  window (`--smtp-outage` seconds) while approved replies are being sent;
- a few waiting runs get oversized `decide` signals (almost 2 MB each), which Temporal
  stores in their history before the run can refuse them.

At the end it checks, from the server, the SMTP server and the outbox rather than from its
own bookkeeping: every run is COMPLETED, each decision was honoured exactly once (the
run's result holds that decision and no other), every duplicate was refused, and the SMTP
server received exactly one message (by Message-ID, derived from the call's idempotency
key) per approved reply and none for a rejected one, each with its send record. It
prints the counts and exits non-zero, naming each violation, when one fails.

By default the kills begin once every run has made its model calls and waits for its
approval (or has finished): a model call killed in flight is retried only when its
start-to-close timeout (MODEL_CALL_TIMEOUT, 3 minutes) expires, because the call does not
heartbeat. `--from-start` kills from the first second anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import yaml
from aiosmtpd.controller import Controller
from temporalio.api.enums.v1 import (
    EventType,
    TaskQueueKind,
    TaskQueueType,
    WorkflowTaskFailedCause,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError

from activities.tools.email import SENT_RECORDS, message_id_for
from bench import share_key_ring, steward_plugin
from steward import devserver, queues
from steward import search_attributes as sa
from steward.config import StewardConfig, load_config
from steward.models import (
    ApprovalDecision,
    ApprovalRequest,
    DecisionReceipt,
    RunProgress,
    RunResult,
    idempotency_key,
    run_tag,
)
from steward.runs import RunError, decide, decide_by_signal, find_request, start_run
from tests.support.smtp_server import Inbox, Received

REPO = Path(__file__).resolve().parent.parent
TICKETS = sorted((REPO / "examples" / "tickets").glob("*.txt"))
QUEUE = "chaos"
REQUESTER = "chaos-requester"
APPROVERS = ("demo-approver", "alice")
SEND_CALL_ID = "send-reply"
SEND_TIMEOUT_SECONDS = 3.0
FAT_SIGNAL_BYTES = 1_900_000
"""Just under Temporal's 2 MB payload limit: the most one signal can add to a history."""
"""send_email's start-to-close timeout here, so a send killed in flight is retried soon."""

# One answer serves every step: the playbook reads category and urgency from it (and sends
# it as the reply), the agent reads its action. The fake ignores the prompt.
REPLY = json.dumps(
    {
        "category": "shipping",
        "urgency": "normal",
        "action": "answer",
        "answer": "Your parcel left our warehouse today; it arrives within three days.",
    }
)
ANSWER = json.loads(REPLY)["answer"]
ATTEMPT_SECONDS = 15.0
"""How long one try at a decision may take before the approver script tries again."""
POLL_SECONDS = 0.25
CHECK_SECONDS = 120.0
FROM_START_TIMEOUT = 600.0
"""Room for a model call killed in flight: it is retried after MODEL_CALL_TIMEOUT (3 min)."""


class ChaosError(Exception):
    """The chaos harness itself could not run (not a finding about Steward)."""


@dataclass(frozen=True)
class ChaosOptions:
    """What to run and how hard to shake it."""

    runs: int = 100
    seed: int = 0
    kills: int = 10
    alive: tuple[float, float] = (1.0, 4.0)
    """A worker lives this long (uniformly at random) once it polls, then dies."""
    window: float = 30.0
    """Decisions are sent at random times within this many seconds of the chaos starting."""
    server_restarts: int = 1
    duplicates: int | None = None
    """Decisions sent twice; default: a tenth of the approvals, at least 2."""
    reject_share: float = 0.25
    signal_share: float = 0.25
    send_delay: float = 0.5
    """The worker holds send_email this long after delivering: a kill there must not resend."""
    smtp_outage: float = 20.0
    """The SMTP server refuses connections this long, once, while replies are sent (0: never)."""
    fat_signals: int = 3
    """Waiting runs that get three oversized `decide` signals each."""
    from_start: bool = False
    timeout: float = 300.0
    work_dir: Path | None = None


@dataclass
class RunPlan:
    """One run and, if it needs an approval, the decision the script will send."""

    workflow_id: str
    needs_approval: bool
    approve: bool = True
    approver: str = APPROVERS[0]
    via: Literal["update", "signal"] = "update"
    duplicate: bool = False
    at: float = 0.0
    run_id: str = ""
    """The run's first execution's run id, once started: approvals and keys are scoped to it."""

    @property
    def request_id(self) -> str:
        return f"{self.workflow_id}:{run_tag(self.run_id)}-1"

    @property
    def reason(self) -> str:
        return f"chaos: {'approved' if self.approve else 'rejected'} by script"


@dataclass
class Report:
    """Everything counted; `violations` says what broke, empty when nothing did."""

    runs: int = 0
    needing_approval: int = 0
    completed: int = 0
    not_completed: dict[str, str] = field(default_factory=dict)
    approvals_sent: int = 0
    rejections_sent: int = 0
    sent_by_signal: int = 0
    faults_met: int = 0
    """Tries at a decision that failed on a missing worker or server, and were repeated."""
    resent_after_fault: int = 0
    """Decisions sent again because a fault hid whether the first one arrived."""
    honoured: int = 0
    duplicates_sent: int = 0
    duplicates_refused: int = 0
    refused_duplicates: dict[str, str] = field(default_factory=dict)
    """Request id -> why its repeated decision was refused."""
    refusals_recorded: int = 0
    emails_expected: int = 0
    emails_written: int = 0
    idempotency_records: int = 0
    sends_found_done: int = 0
    notices_expected: int = 0
    notices_written: int = 0
    leftover_temp_files: int = 0
    smtp_received: int = 0
    """Messages the SMTP server accepted (a resend after a kill mid-send counts again)."""
    smtp_message_ids: int = 0
    smtp_outage_seconds: float = 0.0
    sends_retried: int = 0
    """send_email attempts that failed and were retried (the outage, kills)."""
    fat_signals_sent: int = 0
    continued_as_new: int = 0
    worker_kills: int = 0
    worker_exits: int = 0
    server_restarts: int = 0
    activity_timeouts: Counter[str] = field(default_factory=Counter)
    workflow_task_timeouts: int = 0
    workflow_task_failures: Counter[str] = field(default_factory=Counter)
    model_calls_made: int = 0
    model_calls_needed: int = 0
    wall_seconds: float = 0.0
    chaos_seconds: float = 0.0
    slowest_run_seconds: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    violations: list[str] = field(default_factory=list)
    kept: Path | None = None
    """Where the logs, outbox and server database are, if they were kept."""

    def violation(self, text: str) -> None:
        self.violations.append(text)


def plan_runs(options: ChaosOptions, rng: random.Random) -> list[RunPlan]:
    """Half the runs need an approval; some of those are rejected, sent by signal, doubled."""
    asking = options.runs // 2
    plans = [
        RunPlan(f"chaos-{index:03d}-reply", needs_approval=True) for index in range(asking)
    ] + [
        RunPlan(f"chaos-{index:03d}-answer", needs_approval=False)
        for index in range(asking, options.runs)
    ]
    approving = plans[:asking]
    duplicates = options.duplicates if options.duplicates is not None else max(2, asking // 10)
    rejected = set(rng.sample(range(asking), round(asking * options.reject_share)))
    by_signal = set(rng.sample(range(asking), round(asking * options.signal_share)))
    doubled = set(rng.sample(range(asking), min(duplicates, asking)))
    for index, plan in enumerate(approving):
        plan.approve = index not in rejected
        plan.approver = rng.choice(APPROVERS)
        plan.via = "signal" if index in by_signal else "update"
        plan.duplicate = index in doubled
        plan.at = rng.uniform(0, options.window)
    return plans


def time_server_restarts(
    options: ChaosOptions, rng: random.Random, plans: list[RunPlan]
) -> list[float]:
    """When the server dies, in seconds from the chaos start; two decisions meet each death."""
    times = sorted(rng.uniform(0.25, 0.75) * options.window for _ in range(options.server_restarts))
    pool = [plan for plan in plans if plan.needs_approval]
    for at in times:
        for plan in rng.sample(pool, min(2, len(pool))):
            pool.remove(plan)
            plan.at = max(0.0, at + rng.uniform(-0.2, 0.2))
    return times


def chaos_config(work: Path, smtp_port: int) -> tuple[StewardConfig, Path]:
    """examples/steward.yaml on the fake model, a private outbox, the loopback SMTP server,
    a quickly retried send.
    """
    base = load_config(REPO / "examples" / "steward.yaml")
    data = base.model_dump(mode="json", exclude_none=True)
    data["tiers"] = {name: [{"model": "fake/chaos"}] for name in base.tiers}
    data["outbox"] = str(work / "outbox")
    data["smtp"] = {
        "host": "127.0.0.1",
        "port": smtp_port,
        "starttls": False,
        "timeout_seconds": SEND_TIMEOUT_SECONDS / 2,
    }
    data["files"] |= {"workspace": str(work / "workspace"), "published": str(work / "published")}
    data["tools"]["send_email"]["timeout_seconds"] = SEND_TIMEOUT_SECONDS
    if "retrieval" in data:  # an embedded vector store of its own, never the demo's
        data["retrieval"]["store"] = str(work / "qdrant")
    # Nothing is ingested here: the playbook drafts from its instructions, without searching.
    data["agents"]["support-reply"].pop("collections", None)
    # The fake model's scripted draft is the reply's text: the playbook writes it.
    data["agents"]["support-reply"]["draft"] = "write"
    path = work / "steward.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return StewardConfig.model_validate(data), path


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The persisted dev server, killed and restarted on the same database and ports.

    Started, killed and stopped from threads: one lock orders them, so a restart still
    under way when the harness stops (it failed meanwhile) is stopped, not left running.
    """

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.ui_port = free_port()
        self.current: devserver.DevServer | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self._lock:
            if not self._stopped:
                self._start()

    def _start(self) -> None:
        # On a restart the port may be briefly taken: the killed server's clients keep
        # reconnecting, and one of their outgoing connections can be handed this very port
        # as its local end. Those attempts fail fast, so trying again shortly succeeds.
        for attempt in range(20):
            try:
                self.current = devserver.start(self.state, port=self.port, ui_port=self.ui_port)
                return
            except devserver.DevServerError as err:
                if "in use" not in str(err) or attempt == 19:
                    raise
                time.sleep(0.5)

    def kill(self) -> None:
        with self._lock:
            if self.current is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.current.pid, signal.SIGKILL)
            devserver.stop(self.state)  # reaps it and forgets the record; the database stays

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            devserver.stop(self.state)


# Workers of tests/support/worker_proc.py, forked from one process that did the slow imports
# (about 5 s of CPU here) once: a restart after a kill then costs what a crash costs, not
# Python's import time again. Each worker is its own process and process group, killed with
# SIGKILL. The forker ends when its stdin closes (this script gone, however it died), and a
# worker ends when its forker is gone.
WORKER_FORKER = """
import asyncio, os, signal, sys, threading, time, traceback
from tests.support import worker_proc

def lifeline(forker):
    while os.getppid() == forker:
        time.sleep(0.5)
    os._exit(0)

signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # dead workers are reaped at once
while sys.stdin.readline():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.dup2(2, 1)
        threading.Thread(target=lifeline, args=(os.getppid(),), daemon=True).start()
        try:
            asyncio.run(worker_proc.main())
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    print(pid, flush=True)
"""


class WorkerProcess:
    """The worker process, forked anew after each kill."""

    def __init__(self, work: Path, config_path: Path, address: str, send_delay: float) -> None:
        self.config_path = config_path
        self.script = work / "model-script.json"
        self.calls_log = work / "model-calls.jsonl"
        self.log = work / "worker.log"
        self.send_delay = send_delay
        self.forker: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.lock = asyncio.Lock()
        """Held while a worker is killed or started, so only one runs at a time."""
        # Only this server: no Temporal profile or credentials of the person running it.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")} | {
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_NAMESPACE": devserver.NAMESPACE,
            "TEMPORAL_CONFIG_FILE": str(work / "no-temporal-profile.toml"),
            "STEWARD_HOME": str(work / "home"),
            "STEWARD_FORBID_PAID_MODELS": "1",
            "PYTHONPATH": str(REPO),
        }

    def write_script(self, calls: int) -> None:
        """Every worker process reads the whole script: enough answers for every call."""
        self.script.write_text(json.dumps([REPLY] * calls), encoding="utf-8")

    async def start(self) -> None:
        """Fork a new worker (the first call waits for the forker's imports)."""
        forker = self._forker()
        assert forker.stdin is not None and forker.stdout is not None
        forker.stdin.write(b"fork\n")
        forker.stdin.flush()
        line = await asyncio.to_thread(forker.stdout.readline)
        if not line.strip():
            raise ChaosError(f"the worker forker exited:\n{self.log_tail()}")
        self.pid = int(line)

    def warm_up(self) -> None:
        """Start the forker's imports now; the first worker is forked from it later."""
        self._forker()

    def _forker(self) -> subprocess.Popen[bytes]:
        if self.forker is None or self.forker.poll() is not None:
            with self.log.open("ab") as out:
                self.forker = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        WORKER_FORKER,
                        "--queue",
                        QUEUE,
                        "--config",
                        str(self.config_path),
                        "--script",
                        str(self.script),
                        "--calls-log",
                        str(self.calls_log),
                        "--send-delay",
                        str(self.send_delay),
                    ],
                    cwd=REPO,
                    env=self.env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=out,
                    start_new_session=True,
                )
        return self.forker

    def kill(self) -> None:
        """SIGKILL the worker's whole process group; return once it is gone."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def exited(self) -> bool:
        return self.pid is not None and not _alive(self.pid)

    def stop(self) -> None:
        """Kill the worker, then the forker."""
        self.kill()
        if self.forker is not None:
            if self.forker.stdin is not None:
                self.forker.stdin.close()
            _kill(self.forker)

    def model_calls(self) -> int:
        if not self.calls_log.exists():
            return 0
        return len(self.calls_log.read_text(encoding="utf-8").splitlines())

    async def ready(self, client: Client) -> bool:
        """Wait until this worker polls both its queues (its identity holds its pid).

        False if it exited first. A worker restarted meanwhile is waited for instead.
        """
        wanted = (
            (QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
            (queues.privileged(QUEUE), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        )
        while self.pid is not None:
            pid = self.pid
            polling = [await self._polled_by(client, name, kind, pid) for name, kind in wanted]
            if all(polling):
                return True
            if not _alive(pid) and pid == self.pid:
                return False
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _polled_by(
        self, client: Client, name: str, kind: TaskQueueType.ValueType, pid: int
    ) -> bool:
        try:
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=devserver.NAMESPACE,
                    task_queue=TaskQueue(name=name, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                    task_queue_type=kind,
                )
            )
        except RPCError:
            return False  # the server is away: not polled yet
        return any(poller.identity.startswith(f"{pid}@") for poller in described.pollers)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def connect_to(server: Server) -> Client:
    return await Client.connect(
        server.address, namespace=devserver.NAMESPACE, plugins=[steward_plugin()]
    )


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def retrying(action: Callable[[], Awaitable[int]], deadline: float) -> int:
    """Call through server restarts: an RPC error means try again shortly."""
    while True:
        try:
            return await action()
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(POLL_SECONDS)


async def wait_none_running(client: Client, deadline: float) -> None:
    """Until the server lists no running workflow (through server restarts)."""
    while True:
        running = await retrying(lambda: count(client, "ExecutionStatus = 'Running'"), deadline)
        if not running:
            return
        await asyncio.sleep(POLL_SECONDS)


async def wait_settled(
    client: Client, config: StewardConfig, plans: list[RunPlan], deadline: float
) -> None:
    """Until every agent run finished and every playbook waits, its approvers notified."""
    asking = sum(plan.needs_approval for plan in plans)
    while time.monotonic() < deadline:
        done = await retrying(lambda: count(client, "ExecutionStatus = 'Completed'"), deadline)
        waiting = await retrying(lambda: count(client, sa.PENDING_QUERY), deadline)
        if done == len(plans) - asking and waiting == asking:
            if len(outbox_files(Path(config.outbox))[1]) >= asking:
                return
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError("runs did not reach their approvals before the deadline")


class Approver:
    """The script that decides: each decision at its time, through every fault."""

    def __init__(self, client: Client, report: Report) -> None:
        self.client = client
        self.report = report

    async def decide(self, plan: RunPlan, start: float) -> None:
        await asyncio.sleep(max(0.0, start + plan.at - time.monotonic()))
        request = await self.wait_for_request(plan)
        if plan.duplicate:
            await self.decide_twice(plan, request)
        else:
            await self.decide_once(plan)

    async def wait_for_request(self, plan: RunPlan) -> ApprovalRequest:
        """The run's request once it waits: until then, nothing can decide it."""
        while True:
            try:
                async with asyncio.timeout(ATTEMPT_SECONDS):
                    return await find_request(self.client, plan.request_id)
            except (RunError, RPCError, TimeoutError) as err:
                # RPCError: the server died under the query (a transport error, not retried
                # by `find_request`, which leaves a dead server to its caller).
                if "no pending approval" not in str(err):
                    self.report.faults_met += 1  # not "not yet": no worker or server to ask
                await asyncio.sleep(POLL_SECONDS)

    async def decide_once(self, plan: RunPlan) -> None:
        """As `steward approve` does it; a try whose fate a fault hid is made again."""
        uncertain = False  # whether an earlier try may have reached the run
        while True:
            try:
                async with asyncio.timeout(ATTEMPT_SECONDS):
                    send = decide_by_signal if plan.via == "signal" else decide
                    await send(
                        self.client,
                        plan.request_id,
                        plan.approver,
                        approve=plan.approve,
                        reason=plan.reason,
                    )
                return
            except RunError as err:
                text = str(err)
                if "cannot read approvals" in text:
                    self.report.faults_met += 1  # no worker or no server to ask
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                if uncertain and ("already decided" in text or "no pending approval" in text):
                    return  # an earlier try landed
                self.report.violation(f"{plan.request_id}: a valid decision was refused: {text}")
                return
            except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
                uncertain = True
                self.report.faults_met += 1
                self.report.resent_after_fault += 1
                await asyncio.sleep(POLL_SECONDS)

    async def decide_twice(self, plan: RunPlan, request: ApprovalRequest) -> None:
        """The same decision twice at once, straight to the workflow (past the CLI's check).

        At most one copy may count. The refusal of an update copy is answered here; the
        run records a refused signal copy, which the final check reads back.
        """
        decision = ApprovalDecision(
            request_id=plan.request_id,
            args_digest=request.args_digest,
            approver=plan.approver,
            approve=plan.approve,
            reason=plan.reason,
        )
        handle = self.client.get_workflow_handle(plan.workflow_id)
        self.report.duplicates_sent += 1
        answers = await asyncio.gather(*(self._copy(handle, plan.via, decision) for _ in range(2)))
        refusals = [answer for answer, _ in answers if answer is not None]
        uncertain = any(faulted for _, faulted in answers)
        if plan.via == "update":
            if not refusals:
                self.report.violation(f"{plan.request_id}: the same decision was accepted twice")
            elif len(refusals) == 2 and not uncertain:
                self.report.violation(f"{plan.request_id}: both copies refused: {refusals[0]}")
            else:
                self.report.refused_duplicates[plan.request_id] = refusals[0]

    async def _copy(
        self, handle: WorkflowHandle[Any, Any], via: str, decision: ApprovalDecision
    ) -> tuple[str | None, bool]:
        """(why the copy was refused, or None; whether a fault made it be sent again)."""
        faulted = False
        while True:
            try:
                async with asyncio.timeout(ATTEMPT_SECONDS):
                    if via == "signal":
                        await handle.signal("decide", decision)
                    else:
                        await handle.execute_update("decide", decision, result_type=DecisionReceipt)
                return None, faulted
            except WorkflowUpdateFailedError as err:
                return str(err.cause), faulted
            except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                if isinstance(err, RPCError) and "completed" in str(err).lower():
                    return "the run had already ended", faulted
                faulted = True
                self.report.faults_met += 1
                await asyncio.sleep(POLL_SECONDS)


class Chaos:
    """One chaos run: its processes, its schedule and its checks."""

    def __init__(self, options: ChaosOptions, work: Path) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.plans = plan_runs(options, self.rng)
        self.server_deaths = time_server_restarts(options, self.rng, self.plans)
        self.smtp_port = free_port()
        self.inbox = Inbox()
        self.smtp: Controller | None = None
        self.config, config_path = chaos_config(work, self.smtp_port)
        self.server = Server(work / "server")
        self.worker = WorkerProcess(work, config_path, self.server.address, options.send_delay)
        self.report = Report(runs=options.runs)
        self.began = time.monotonic()

    def log(self, text: str) -> None:
        print(f"  {time.monotonic() - self.began:6.1f}s  {text}", flush=True)

    async def run(self) -> Report:
        report = self.report
        deadline = self.began + self.options.timeout
        try:
            self.worker.warm_up()  # its imports overlap the server's start
            self._smtp_up()
            await asyncio.to_thread(self.server.start)
            self.log(f"dev server up at {self.server.address} (SQLite, Steward's tuning)")
            client = await connect_to(self.server)
            self.worker.write_script(4 * self.options.runs + 20)
            async with asyncio.timeout(60):
                await self.worker.start()
                if not await self.worker.ready(client):
                    raise ChaosError(f"the worker exited at start:\n{self.worker.log_tail()}")
            self.log("worker up")
            try:
                async with asyncio.timeout_at(self._loop_time(deadline)):
                    await self._shake(client, deadline)
            except TimeoutError as err:
                report.violation(str(err) or f"runs still running after {self.options.timeout:g}s")
            report.wall_seconds = time.monotonic() - self.began
            report.load = os.getloadavg()
            try:
                async with asyncio.timeout(CHECK_SECONDS):
                    await self.worker.ready(client)  # queries of finished runs replay on it
                    await self._check(client)
            except TimeoutError:
                report.violation(f"the final check did not finish within {CHECK_SECONDS:g}s")
        finally:
            self.worker.stop()
            await asyncio.to_thread(self.server.stop)
            self._smtp_down()
        return report

    def _smtp_up(self) -> None:
        self.smtp = Controller(self.inbox, hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()

    def _smtp_down(self) -> None:
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None

    def _loop_time(self, monotonic_deadline: float) -> float:
        loop = asyncio.get_running_loop()
        return loop.time() + (monotonic_deadline - time.monotonic())

    async def _shake(self, client: Client, deadline: float) -> None:
        plans = self.plans
        handles = await asyncio.gather(
            *(
                start_run(
                    client,
                    self.config,
                    "support-reply" if plan.needs_approval else "helpdesk",
                    TICKETS[index % len(TICKETS)].read_text(encoding="utf-8")
                    if plan.needs_approval
                    else "Tell the team the nightly backup finished.",
                    REQUESTER,
                    task_queue=QUEUE,
                    workflow_id=plan.workflow_id,
                )
                for index, plan in enumerate(plans)
            )
        )
        for plan, handle in zip(plans, handles, strict=True):
            plan.run_id = handle.first_execution_run_id or ""
        self.log(f"started {len(handles)} runs ({sum(p.needs_approval for p in plans)} ask)")
        if not self.options.from_start:
            await wait_settled(client, self.config, plans, deadline)
            self.log("every run made its model calls; agent runs done, playbooks waiting")

        start = time.monotonic()
        approver = Approver(client, self.report)
        supervisor = asyncio.create_task(self._supervise())
        try:
            await asyncio.gather(
                self._kill_worker(client),
                self._restart_server(start),
                self._smtp_outage(start),
                self._fat_signals(client, start),
                *(approver.decide(plan, start) for plan in plans if plan.needs_approval),
            )
            self.log("every decision sent; the worker is left alone")
            await wait_none_running(client, deadline)
            self.report.chaos_seconds = time.monotonic() - start
            self.log("no run is left running")
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor

    async def _kill_worker(self, client: Client) -> None:
        for _ in range(self.options.kills):
            await self.worker.ready(client)
            await asyncio.sleep(self.rng.uniform(*self.options.alive))
            async with self.worker.lock:
                self.worker.kill()
                self.report.worker_kills += 1
                await self.worker.start()
            self.log(f"worker killed (SIGKILL) and restarted, #{self.report.worker_kills}")

    async def _smtp_outage(self, start: float) -> None:
        """Take the SMTP server away once, a third into the decisions, then bring it back."""
        if self.options.smtp_outage <= 0:
            return
        await asyncio.sleep(max(0.0, start + self.options.window / 3 - time.monotonic()))
        await asyncio.to_thread(self._smtp_down)
        self.log(f"SMTP server down for {self.options.smtp_outage:g}s (connections refused)")
        await asyncio.sleep(self.options.smtp_outage)
        await asyncio.to_thread(self._smtp_up)
        self.report.smtp_outage_seconds = self.options.smtp_outage
        self.log("SMTP server back")

    async def _fat_signals(self, client: Client, start: float) -> None:
        """Oversized decisions to a few runs before their real one: refused, never fatal."""
        pool = [plan for plan in self.plans if plan.needs_approval]
        chosen = self.rng.sample(pool, min(self.options.fat_signals, len(pool)))
        for plan in chosen:
            bulky = {
                "request_id": plan.request_id,
                "args_digest": "0" * 16,
                "approver": plan.approver,
                "approve": True,
                "reason": "x" * FAT_SIGNAL_BYTES,
            }
            for _ in range(3):
                try:
                    await client.get_workflow_handle(plan.workflow_id).signal("decide", bulky)
                    self.report.fat_signals_sent += 1
                except RPCError as err:
                    self.report.faults_met += 1  # the server was away; that is its chaos
                    self.log(f"oversized signal not delivered ({err.status.name})")
            await asyncio.sleep(self.rng.uniform(0, self.options.window / 3))

    async def _restart_server(self, start: float) -> None:
        for at in self.server_deaths:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            await asyncio.to_thread(self.server.kill)
            self.log("dev server killed (SIGKILL)")
            await asyncio.to_thread(self.server.start)
            self.report.server_restarts += 1
            self.log("dev server restarted on the same database")

    async def _supervise(self) -> None:
        """Restart a worker that died on its own (e.g. while the server was away)."""
        while True:
            async with self.worker.lock:
                if self.worker.exited():
                    self.report.worker_exits += 1
                    self.log("worker exited on its own; restarted")
                    await self.worker.start()
            await asyncio.sleep(POLL_SECONDS)

    async def _check(self, client: Client) -> None:
        report = self.report
        approving = [plan for plan in self.plans if plan.needs_approval]
        report.needing_approval = len(approving)
        report.approvals_sent = sum(plan.approve for plan in approving)
        report.rejections_sent = len(approving) - report.approvals_sent
        report.sent_by_signal = sum(plan.via == "signal" for plan in approving)
        report.model_calls_made = self.worker.model_calls()
        report.model_calls_needed = 2 * len(approving) + len(self.plans) - len(approving)
        for plan in self.plans:
            await self._check_run(client, plan)
        self._check_outbox(approving)
        self._check_duplicates(approving)
        stray = await count(client, "ExecutionStatus = 'Running'")
        if stray:
            report.violation(f"{stray} workflow(s) still running at the end")
        report.continued_as_new = await count(client, "ExecutionStatus = 'ContinuedAsNew'")
        total = await count(client, "ExecutionStatus != 'ContinuedAsNew'")
        if total != len(self.plans):
            report.violation(
                f"{total} workflow executions on the server, {len(self.plans)} started"
            )

    async def _check_run(self, client: Client, plan: RunPlan) -> None:
        report = self.report
        handle: WorkflowHandle[object, RunResult] = client.get_workflow_handle(
            plan.workflow_id, result_type=RunResult
        )
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.COMPLETED:
            status = described.status.name if described.status else "?"
            report.not_completed[plan.workflow_id] = status
            report.violation(f"{plan.workflow_id} is {status}, not COMPLETED")
            return
        report.completed += 1
        if described.close_time is not None:
            took = (described.close_time - described.start_time).total_seconds()
            report.slowest_run_seconds = max(report.slowest_run_seconds, took)
        await self._count_faults(handle)
        result = await handle.result()
        if not plan.needs_approval:
            if result.status != "completed" or result.answer != ANSWER or result.approvals:
                report.violation(f"{plan.workflow_id}: unexpected result {result.status}")
            return
        outcomes = [o for o in result.approvals if o.request_id == plan.request_id]
        expected = "approved" if plan.approve else "rejected"
        if (
            len(result.approvals) == 1
            and len(outcomes) == 1
            and outcomes[0].status == expected
            and outcomes[0].approver == plan.approver
            and result.status == ("completed" if plan.approve else "rejected")
        ):
            report.honoured += 1
        else:
            got = [(o.request_id, o.status, o.approver) for o in result.approvals]
            report.violation(
                f"{plan.workflow_id}: sent {expected} by {plan.approver}, the run recorded "
                f"{got} and ended {result.status}"
            )
        sends = [a for a in result.actions if a.tool == "send_email"]
        outcome = "done" if plan.approve else "rejected"
        if [a.outcome for a in sends] != [outcome]:
            report.violation(
                f"{plan.workflow_id}: send_email outcomes {[a.outcome for a in sends]}, "
                f"expected [{outcome!r}]"
            )
        elif "by an earlier attempt" in sends[0].output:
            report.sends_found_done += 1
        if plan.duplicate or plan.via == "signal":
            progress: RunProgress = await handle.query("progress", result_type=RunProgress)
            refused = [r for r in progress.refused if r.request_id == plan.request_id]
            report.refusals_recorded += len(refused)
            decided = [r.reason for r in refused if "already decided" in r.reason]
            if plan.duplicate and plan.via == "signal" and decided:
                report.refused_duplicates[plan.request_id] = decided[0]

    async def _count_faults(self, handle: WorkflowHandle[object, RunResult]) -> None:
        """What the faults cost this run, as its history shows."""
        report = self.report
        activity_types: dict[int, str] = {}
        async for event in handle.fetch_history_events():
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                activity_types[event.event_id] = attributes.activity_type.name
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                # Attempts that failed and were retried leave no event of their own: the
                # started event of the last attempt counts them and keeps the last failure.
                started = event.activity_task_started_event_attributes
                if activity_types.get(started.scheduled_event_id) == "send_email":
                    report.sends_retried += started.attempt - 1
                if started.attempt > 1 and started.last_failure.HasField("timeout_failure_info"):
                    name = activity_types.get(started.scheduled_event_id, "?")
                    report.activity_timeouts[name] += started.attempt - 1
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                scheduled = event.activity_task_timed_out_event_attributes.scheduled_event_id
                report.activity_timeouts[activity_types.get(scheduled, "?")] += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                report.workflow_task_timeouts += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                cause = event.workflow_task_failed_event_attributes.cause
                report.workflow_task_failures[WorkflowTaskFailedCause.Name(cause)] += 1

    def _check_outbox(self, approving: list[RunPlan]) -> None:
        report = self.report
        found = check_outbox(self.config, approving, list(self.inbox.received))
        report.smtp_received = len(self.inbox.received)
        report.smtp_message_ids = found.message_ids
        report.emails_expected = found.emails_expected
        report.emails_written = found.emails_written
        report.idempotency_records = found.idempotency_records
        report.notices_expected = found.notices_expected
        report.notices_written = found.notices_written
        report.leftover_temp_files = found.leftover_temp_files
        report.violations.extend(found.violations)

    def _check_duplicates(self, approving: list[RunPlan]) -> None:
        refused = self.report.refused_duplicates
        for plan in approving:
            if plan.duplicate and plan.request_id not in refused:
                self.report.violation(f"{plan.request_id}: the repeated decision was not refused")
        self.report.duplicates_refused = sum(1 for plan in approving if plan.request_id in refused)


@dataclass
class OutboxCheck:
    """What the SMTP server and the outbox hold against what the decisions allow."""

    emails_expected: int = 0
    emails_written: int = 0
    message_ids: int = 0
    idempotency_records: int = 0
    notices_expected: int = 0
    notices_written: int = 0
    leftover_temp_files: int = 0
    violations: list[str] = field(default_factory=list)


def check_outbox(
    config: StewardConfig, approving: list[RunPlan], received: list[Received]
) -> OutboxCheck:
    """One message per approved reply at the SMTP server, with its send record; none for a
    rejection; one approval notice per request in the outbox.

    A message's Message-ID and its record's file name come from its call's idempotency
    key, so a second send of one call cannot pass for another message; a send that was
    not idempotent (a new key per attempt) would show as an id or a record no approved
    call owns. A worker killed after the server took a message and before the record was
    written resends it with the same Message-ID: counted (`smtp_received`), not lost.
    """
    outbox = Path(config.outbox)
    check = OutboxCheck()
    messages, notices = outbox_files(outbox)
    records, _ = outbox_files(outbox / SENT_RECORDS)
    keys = {
        plan.workflow_id: idempotency_key(plan.workflow_id, SEND_CALL_ID, plan.run_id)
        for plan in approving
        if plan.approve
    }
    expected_ids = {message_id_for(key, config.sender): wid for wid, key in keys.items()}
    got_ids = {str(item.message["Message-ID"]) for item in received}
    check.emails_expected = len(keys)
    check.emails_written = len(records)
    check.message_ids = len(got_ids)
    check.idempotency_records = len(records & {_file_name(key) for key in keys.values()})
    for message_id, workflow_id in expected_ids.items():
        if message_id not in got_ids:
            check.violations.append(f"{workflow_id}: approved, but the SMTP server got nothing")
    for message_id in sorted(got_ids - expected_ids.keys()):
        check.violations.append(f"the SMTP server got {message_id}, which no approved call owns")
    if check.idempotency_records != len(keys) or len(records) != len(keys):
        check.violations.append(
            f"{len(records)} send records for {len(keys)} approved replies "
            f"({check.idempotency_records} of them named by their call's key)"
        )
    if messages:
        check.violations.append(f"{len(messages)} replies went to the outbox, not the server")
    wanted_notices = {
        _file_name(idempotency_key(plan.workflow_id, f"{plan.request_id}-opened", plan.run_id))
        for plan in approving
    }
    check.notices_expected = len(wanted_notices)
    check.notices_written = len(notices)
    if notices != wanted_notices:
        check.violations.append(
            f"approval notices: {len(wanted_notices - notices)} missing, "
            f"{len(notices - wanted_notices)} unexpected"
        )
    check.leftover_temp_files = len(list(outbox.rglob(".sending-*"))) if outbox.is_dir() else 0
    return check


def outbox_files(outbox: Path) -> tuple[set[str], set[str]]:
    """The names of the delivered messages and of the approval notices, apart."""
    messages: set[str] = set()
    notices: set[str] = set()
    for path in outbox.glob("*.eml") if outbox.is_dir() else ():
        notice = "\nX-Steward-Approval:" in path.read_text(encoding="utf-8", errors="replace")
        (notices if notice else messages).add(path.name)
    return messages, notices


def _file_name(key: str) -> str:
    return f"{key.replace(':', '_')}.eml"


async def run_chaos(options: ChaosOptions) -> Report:
    """Run the chaos and check it; the processes it started are gone when it returns.

    It works in `options.work_dir` (new or empty), else in a temporary directory that is
    removed afterwards unless something failed (then `Report.kept` names it).
    """
    if options.runs < 2:
        raise ChaosError("--runs must be at least 2 (half ask for approval)")
    share_key_ring()  # before any worker process copies the environment
    if options.work_dir is not None:
        options.work_dir.mkdir(parents=True, exist_ok=True)
        if any(options.work_dir.iterdir()):
            raise ChaosError(f"{options.work_dir} is not empty: its server would resume old runs")
        kept = await Chaos(options, options.work_dir).run()
        kept.kept = options.work_dir
        return kept
    work = Path(tempfile.mkdtemp(prefix="steward-chaos-"))
    report: Report | None = None
    try:
        report = await Chaos(options, work).run()
    finally:
        if report is None or not report.violations:  # interrupted, or nothing to look at
            shutil.rmtree(work, ignore_errors=True)
    if report.violations:
        report.kept = work
    return report


def render(report: Report, options: ChaosOptions) -> str:
    """The counts as a table, then the verdict."""
    timeouts = ", ".join(f"{k} {v}" for k, v in sorted(report.activity_timeouts.items()))
    failures = ", ".join(f"{k} {v}" for k, v in sorted(report.workflow_task_failures.items()))
    gate = sum("already decided" in why for why in report.refused_duplicates.values())
    ended = len(report.refused_duplicates) - gate
    rows: list[tuple[str, object, object]] = [
        ("runs started", report.runs, ""),
        ("  needing an approval", report.needing_approval, ""),
        ("  completed (Temporal status COMPLETED)", report.completed, report.runs),
        ("  failed, stuck or still running", len(report.not_completed), 0),
        (
            "decisions sent: approve / reject",
            f"{report.approvals_sent} / {report.rejections_sent}",
            "",
        ),
        ("  of them by signal (the rest by update)", report.sent_by_signal, ""),
        ("  tries that met a dead worker or server", report.faults_met, ""),
        ("  decisions re-sent, fate unknown", report.resent_after_fault, ""),
        ("  honoured exactly once (run result)", report.honoured, report.needing_approval),
        ("duplicate decisions sent", report.duplicates_sent, ""),
        ("  refused", report.duplicates_refused, report.duplicates_sent),
        ("    by the run's approval gate", gate, ""),
        ("    by the server (run already ended)", ended, ""),
        ("  refusals the runs recorded (signals)", report.refusals_recorded, ""),
        ("emails: approved replies", report.emails_expected, ""),
        (
            "  distinct Message-IDs the SMTP server got",
            report.smtp_message_ids,
            report.emails_expected,
        ),
        ("  messages it got (a kill mid-send resends)", report.smtp_received, ""),
        (
            "  send records, named by idempotency key",
            report.idempotency_records,
            report.emails_expected,
        ),
        ("  send attempts retried (outage, kills)", report.sends_retried, ""),
        ("  sends retried, found already done", report.sends_found_done, ""),
        ("  temp files left by killed sends", report.leftover_temp_files, ""),
        ("SMTP server down (connections refused)", f"{report.smtp_outage_seconds:g} s", ""),
        ("oversized signals (1.9 MB) sent to waiting runs", report.fat_signals_sent, ""),
        ("  runs continued as new to stay small", report.continued_as_new, ""),
        ("approval notices written", report.notices_written, report.notices_expected),
        ("worker kills (SIGKILL), each restarted", report.worker_kills, options.kills),
        ("worker exits on its own", report.worker_exits, ""),
        ("server restarts (SIGKILL)", report.server_restarts, options.server_restarts),
        ("activity timeouts (killed in flight)", timeouts or "0", ""),
        ("workflow task timeouts", report.workflow_task_timeouts, ""),
        ("workflow task failures", failures or "0", ""),
        (
            "model calls made / needed",
            f"{report.model_calls_made} / {report.model_calls_needed}",
            "",
        ),
        ("wall time", f"{report.wall_seconds:.1f} s", ""),
        ("  chaos phase (first decision to last run)", f"{report.chaos_seconds:.1f} s", ""),
        ("  slowest run, start to end", f"{report.slowest_run_seconds:.1f} s", ""),
        ("load average 1 / 5 / 15 min", " / ".join(f"{x:.2f}" for x in report.load), ""),
    ]
    width = max(len(label) for label, _, _ in rows)
    lines = [
        f"Steward chaos: {options.runs} runs, seed {options.seed}, {os.cpu_count()} CPUs; "
        f"dev server tuning: {' '.join(devserver.tuning_args())}",
        f"{'':{width}}  {'count':>12}  {'expected':>8}",
    ]
    lines += [f"{label:{width}}  {value!s:>12}  {want!s:>8}" for label, value, want in rows]
    if report.violations:
        lines.append(f"FAILED: {len(report.violations)} violation(s)")
        lines += [f"  - {text}" for text in report.violations]
        if report.kept is not None:
            lines.append(f"worker log, outbox and server database: {report.kept}")
    else:
        lines.append(
            "OK: every run completed, every decision honoured once, every duplicate refused, "
            "every approved reply reached the SMTP server under its one Message-ID"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> ChaosOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = ChaosOptions()
    parser.add_argument("--runs", type=int, default=defaults.runs, help="runs to start")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--kills", type=int, default=defaults.kills, help="worker SIGKILLs")
    parser.add_argument(
        "--alive",
        type=float,
        nargs=2,
        default=defaults.alive,
        metavar=("MIN", "MAX"),
        help="seconds a worker lives once it polls, before the next kill",
    )
    parser.add_argument(
        "--window", type=float, default=defaults.window, help="seconds decisions are spread over"
    )
    parser.add_argument(
        "--server-restarts", type=int, default=defaults.server_restarts, help="server SIGKILLs"
    )
    parser.add_argument("--duplicates", type=int, default=None, help="decisions sent twice")
    parser.add_argument(
        "--smtp-outage",
        type=float,
        default=defaults.smtp_outage,
        help="seconds the SMTP server refuses connections, once (0: never)",
    )
    parser.add_argument(
        "--fat-signals",
        type=int,
        default=defaults.fat_signals,
        help="waiting runs that get three oversized decide signals",
    )
    parser.add_argument(
        "--from-start", action="store_true", help="kill while runs make their model calls too"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"give up after this many seconds (default {defaults.timeout:g}, "
        f"{FROM_START_TIMEOUT:g} with --from-start)",
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="work in DIR (new or empty) and keep it"
    )
    args = parser.parse_args(argv)
    return ChaosOptions(
        runs=args.runs,
        seed=args.seed if args.seed is not None else random.randrange(1_000_000),
        kills=args.kills,
        alive=(args.alive[0], args.alive[1]),
        window=args.window,
        server_restarts=args.server_restarts,
        duplicates=args.duplicates,
        smtp_outage=args.smtp_outage,
        fat_signals=args.fat_signals,
        from_start=args.from_start,
        timeout=args.timeout or (FROM_START_TIMEOUT if args.from_start else defaults.timeout),
        work_dir=args.keep,
    )


async def _until_stopped(options: ChaosOptions) -> Report:
    """run_chaos, cancelled (so it cleans up) by SIGTERM as by Ctrl-C."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_chaos(options)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    try:
        report = asyncio.run(_until_stopped(options))
    except (ChaosError, devserver.DevServerError) as err:
        print(f"chaos could not run: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("chaos interrupted; its processes are stopped", file=sys.stderr)
        return 130
    print(render(report, options))
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
