"""`make bench`, long runs: history bytes per turn of a long conversation, blobs on and off.

An agent reads a different 100 KB page every turn (http_get on loopback, fake model). With
blobs on, each page is stored once by content address and history carries a reference;
with blobs off, each page is in history once as the tool's result and again in every model
request while it stays in the window (`context_chars`, 200,000 by default). Both chains
continue as new at the default limits; the figures are totals over every run of the chain,
measured side by side on one tuned dev server.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.llm import LLMActivities
from activities.tools.http_get import HttpActivities
from bench import steward_plugin
from steward import devserver
from steward import search_attributes as sa
from steward.config import StewardConfig, load_config
from steward.runs import start_run
from tests.support.fake_model import FakeModel, install_fake_model
from tests.support.stack import activities_for_tests, running_workers
from tests.support.web_server import Site, web_server

TURNS = 60


def _config(scratch: Path) -> StewardConfig:
    base = load_config("examples/steward.yaml")
    data = base.model_dump()
    data["tiers"] = {name: [{"model": "fake/queued"}] for name in base.tiers}
    data["agents"]["helpdesk"] |= {"tools": ["http_get"], "max_turns": TURNS + 1}
    data["http"] = {"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5, "max_bytes": 200_000}
    data["outbox"] = str(scratch / "outbox")
    data["blobs"] = {"path": str(scratch / "blobs")}
    data["retrieval"] = base.retrieval.model_dump() | {"store": str(scratch / "qdrant")}
    return StewardConfig.model_validate(data)


def _activities(config: StewardConfig, *, blobs: bool) -> Any:
    activities = activities_for_tests(config)
    http = HttpActivities(["127.0.0.1"], max_bytes=200_000, timeout_seconds=5)
    if blobs:
        return dataclasses.replace(activities, http=http)
    llm = LLMActivities(config.tiers, allow_paid=False)
    return dataclasses.replace(activities, http=http, blobs=None, llm=llm)


async def _conversation(
    client: Client, config: StewardConfig, fake: FakeModel, site: Site, *, blobs: bool
) -> dict[str, float]:
    queue = f"bench-long-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]  # pages differ between the two chains
    for turn in range(TURNS):
        url = site.url(f"/big/{tag}-{turn}")
        fake.queue(json.dumps({"action": "http_get", "arguments": {"url": url}}))
    fake.queue(json.dumps({"action": "answer", "answer": "done"}))
    async with running_workers(client, config, queue, _activities(config, blobs=blobs)):
        started = time.perf_counter()
        handle = await start_run(client, config, "helpdesk", "read", "bench", task_queue=queue)
        result = await handle.result()
        wall = time.perf_counter() - started
    assert result.status == "completed", result.answer
    assert len(result.actions) == TURNS and fake.pending == 0, "the fake answered out of turn"
    runs = [run async for run in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    sizes, events = [], 0
    for run in runs:
        history = await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        sizes.append(sum(event.ByteSize() for event in history.events))
        events += len(history.events)
    return {
        "bytes_per_turn": sum(sizes) / TURNS,
        "largest_run": max(sizes),
        "runs": len(runs),
        "events_per_turn": events / TURNS,
        "ms_per_turn": wall * 1000 / TURNS,
    }


async def measure() -> list[str]:
    """The two chains side by side, as printable lines."""
    # Its own fake: an earlier section may have installed one that answers differently.
    fake = install_fake_model(FakeModel())
    scratch = Path(tempfile.mkdtemp(prefix="steward-bench-long-"))
    config = _config(scratch)
    env = await WorkflowEnvironment.start_local(
        plugins=[steward_plugin()],
        dev_server_existing_path=str(devserver.temporal_binary()),
        search_attributes=sa.ALL,
        dev_server_extra_args=[*devserver.tuning_args(), "--db-filename", str(scratch / "t.db")],
        dev_server_log_level="error",
    )
    try:
        with web_server() as site:
            on = await _conversation(env.client, config, fake, site, blobs=True)
            off = await _conversation(env.client, config, fake, site, blobs=False)
    finally:
        await env.shutdown()
    stored = [p.stat().st_size for p in (scratch / "blobs").rglob("*") if p.is_file()]
    lines = [
        f"\nlong conversation: {TURNS} turns, a new 100 KB page each turn, window "
        f"{config.agents['helpdesk'].context_chars:,} chars, continue-as-new at defaults",
        f"{'':<12} {'history/turn':>13} {'largest run':>12} {'runs':>5} "
        f"{'events/turn':>12} {'ms/turn':>8}",
    ]
    for label, row in (("blobs on", on), ("blobs off", off)):
        lines.append(
            f"{label:<12} {row['bytes_per_turn'] / 1000:>10.1f} KB "
            f"{row['largest_run'] / 1e6:>9.2f} MB {row['runs']:>5.0f} "
            f"{row['events_per_turn']:>12.1f} {row['ms_per_turn']:>8.1f}"
        )
    lines.append(
        f"history per turn {off['bytes_per_turn'] / on['bytes_per_turn']:.0f}x smaller with "
        f"blobs; blob store {len(stored)} blobs, "
        f"{statistics.fmean(stored) / 1000 if stored else 0:.0f} KB each"
    )
    return lines
