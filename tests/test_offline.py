"""Workers stay on this machine: `steward worker` and the eval worker reach nothing but loopback.

Each worker is started the way a person starts it from a shell: its own process, with
none of the environment `make` exports (no LITELLM_* or OMP_* variables), only the
Temporal address, a key for the model stubs, and two traps. An audit hook
(`tests/support/netaudit/sitecustomize.py`) records every connection and name lookup the
process makes, and every proxy variable names a host under `.invalid`, which can never
resolve, so a library that would fetch through a proxy is recorded too. The worker then
serves a real run whose model calls go to loopback stubs of OpenAI, Anthropic and Gemini
(litellm's first Anthropic call is where it fetches a table of its own from GitHub unless
told not to). Afterwards the record must hold loopback connections (the model calls, at
least) and nothing else.

The hook sees what Python does; native code (the Temporal core's gRPC, llama.cpp) is not
audited, and connects only where it is told (TEMPORAL_ADDRESS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from temporalio.client import Client

from steward import codec
from steward.config import load_config
from steward.runs import start_run
from tests.conftest import REPO
from tests.support.providers import PROVIDERS, ProviderStub, Reply, Seen, running

AUDIT_HOOK = REPO / "tests" / "support" / "netaudit"
KEY_ENV = "STEWARD_TEST_PROVIDER_KEY"
UNRESOLVABLE_PROXY = "http://proxy.invalid:3128"


def answer(seen: Seen) -> Reply:
    if seen.schema is not None:  # the playbook's classification
        return Reply(text=json.dumps({"category": "shipping", "urgency": "high"}))
    return Reply(text="Dear Dana, your parcel ships today. Best regards, The Support Team")


@contextmanager
def stubs() -> Iterator[dict[str, ProviderStub]]:
    with (
        running(PROVIDERS["openai"][0](answer)) as openai,
        running(PROVIDERS["anthropic"][0](answer)) as anthropic,
        running(PROVIDERS["gemini"][0](answer)) as gemini,
    ):
        yield {"openai": openai, "anthropic": anthropic, "gemini": gemini}


def worker_config(tmp: Path, servers: dict[str, ProviderStub]) -> Path:
    """The example config with its tiers on the stubs: the playbook classifies through
    Anthropic (structured output: the call that needs litellm's beta-header table) and
    drafts through OpenAI; the helpdesk's turns go to Gemini.
    """
    data = yaml.safe_load((REPO / "examples" / "steward.yaml").read_text())

    def tier(provider: str) -> list[dict[str, Any]]:
        stub = servers[provider]
        return [
            {"model": PROVIDERS[provider][1], "api_base": stub.base_url, "api_key_env": KEY_ENV}
        ]

    data["tiers"] = {"fast": tier("anthropic"), "strong": tier("openai"), "plan": tier("gemini")}
    data["agents"]["support-reply"]["tiers"] = {"classify": "fast", "draft": "strong"}
    data["agents"]["support-reply"]["draft"] = "write"  # a provider writes its reply
    data["agents"]["helpdesk"]["tiers"] = {"plan": "plan"}
    data["agents"]["researcher"]["tiers"] = {"plan": "plan"}
    data["outbox"] = str(tmp / "outbox")
    data["retrieval"]["store"] = str(tmp / "qdrant")
    data.pop("environments", None)
    path = tmp / "steward.yaml"
    path.write_text(yaml.safe_dump(data))
    load_config(path)  # a config the worker will take
    return path


def shell_environment(tmp: Path, client: Client, audit: Path, **extra: str) -> dict[str, str]:
    """A shell's environment: none of make's variables, the traps set."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        # The audit hook first, then the code under test (this worktree, not an install).
        "PYTHONPATH": f"{AUDIT_HOOK}{os.pathsep}{REPO}",
        "STEWARD_NET_AUDIT": str(audit),
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "STEWARD_FORBID_PAID_MODELS": "1",
        # the tests' key ring, so the worker reads what the test's client wrote
        **{name: os.environ[name] for name in (codec.SWITCH_VARIABLE, codec.KEYS_VARIABLE)},
        KEY_ENV: "stub-key-not-a-secret",
        **{name: UNRESOLVABLE_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
        **{name.lower(): UNRESOLVABLE_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
        **extra,
    }


@asynccontextmanager
async def worker(command: list[str], env: dict[str, str], cwd: Path) -> AsyncIterator[None]:
    log = (cwd / "worker.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, env=env, cwd=cwd, stdout=log, stderr=log
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.close()


def audited(audit: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(loopback, everything else) in the audit record."""
    entries = (
        [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []
    )
    local: list[dict[str, Any]] = []
    away: list[dict[str, Any]] = []
    for entry in entries:
        (local if is_local(entry["host"]) else away).append(entry)
    return local, away


def is_local(host: Any) -> bool:
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a name to look up: that lookup leaves the machine


async def serve_runs(client: Client, config: Path, queue: str) -> None:
    settings = load_config(config)
    reply = await start_run(
        client,
        settings,
        "support-reply",
        "From: Dana <dana@example.com>\nSubject: Parcel\n\nWhere is my parcel?",
        "dana",
        task_queue=queue,
    )
    agent = await start_run(client, settings, "helpdesk", "Say hello", "dana", task_queue=queue)
    async with asyncio.timeout(120):
        await agent.result()
        while True:  # the playbook stops at its approval: its model calls are made by then
            progress = await reply.query("progress")
            if progress["pending"]:
                break
            await asyncio.sleep(0.2)
    await reply.terminate("network audit: the model calls were what mattered")


@pytest.mark.parametrize(
    ("command", "queue"),
    [
        (["-m", "steward.cli", "worker", "--queue", "QUEUE", "--config", "CONFIG"], "offline"),
        (["-m", "evals.worker", "--queue", "QUEUE", "--config", "CONFIG"], "offline-eval"),
    ],
    ids=["steward-worker", "eval-worker"],
)
async def test_a_worker_started_from_a_shell_reaches_only_loopback(
    client: Client, tmp_path: Path, command: list[str], queue: str
) -> None:
    audit = tmp_path / "net.jsonl"
    queue = f"{queue}-{os.getpid()}-{tmp_path.name}"
    with stubs() as servers:
        config = worker_config(tmp_path, servers)
        stub_ports = {name: urlsplit(stub.base_url).port for name, stub in servers.items()}
        args = [{"QUEUE": queue, "CONFIG": str(config)}.get(arg, arg) for arg in command]
        async with worker(args, shell_environment(tmp_path, client, audit), tmp_path):
            await serve_runs(client, config, queue)

    local, away = audited(audit)
    assert away == [], f"the worker reached beyond loopback: {away}"
    # The hook saw the worker's own connections: one to each provider's stub at least.
    ports = {entry["port"] for entry in local if entry["kind"] == "connect"}
    for provider, stub in servers.items():
        assert stub_ports[provider] in ports, provider
        assert stub.requests and not stub.refused, provider


async def test_the_audit_catches_litellm_fetching_when_offline_mode_is_turned_off(
    client: Client, tmp_path: Path
) -> None:
    # The same worker, told litellm may fetch its own tables: the first Anthropic call
    # reaches for GitHub (here: through the unresolvable proxy), and the audit says so.
    audit = tmp_path / "net.jsonl"
    queue = f"online-{os.getpid()}"
    with stubs() as servers:
        config = worker_config(tmp_path, servers)
        env = shell_environment(tmp_path, client, audit, LITELLM_OFFLINE_MODE="false")
        command = ["-m", "steward.cli", "worker", "--queue", queue, "--config", str(config)]
        async with worker(command, env, tmp_path):
            await serve_runs(client, config, queue)

    _, away = audited(audit)
    assert away and {entry["host"] for entry in away} == {"proxy.invalid"}
