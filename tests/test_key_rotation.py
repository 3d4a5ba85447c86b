"""Rotating the codec's key on a live run: history written with key A, key B added as the
newest, the run finishes with B; old payloads still decode, new ones use B; and a ring
without a key the history needs fails naming that key, in the trace, replay, evals from
history and the cost report, never with garbled payloads.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from steward import costs
from steward.cli import app
from steward.codec import EncryptionCodec, KeyRing, MissingKey, encrypted_key_id, key_line
from steward.config import StewardConfig
from steward.decoding import decode_history, history_payloads
from steward.models import RunResult
from steward.plugin import StewardPlugin
from steward.runs import decide, start_run
from steward.trace import build_trace
from tests.support.fake_model import FakeModel
from tests.support.stack import running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

KEY_A, KEY_B = key_line("rot-a"), key_line("rot-b")


def codec_of(ring: str) -> EncryptionCodec:
    return EncryptionCodec(KeyRing.parse(ring, "STEWARD_CODEC_KEYS"))


async def client_with(env: WorkflowEnvironment, ring: str) -> Client:
    address = env.client.service_client.config.target_host
    return await Client.connect(address, plugins=[StewardPlugin(codec_of(ring))])


async def steward(ring: str, env: WorkflowEnvironment, *args: str) -> tuple[int, str]:
    variables = {
        "STEWARD_CODEC_KEYS": ring,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
    }
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=variables)
    return result.exit_code, result.output


async def test_a_key_added_mid_run_old_payloads_decode_new_ones_use_it(
    env: WorkflowEnvironment, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    queue_happy_path(fake_model)
    before = await client_with(env, KEY_A)
    async with running_workers(before, config, task_queue):
        handle = await start_run(
            before, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)

    # B is added as the newest key; workers restart with the new ring and replay the run
    rotated = await client_with(env, f"{KEY_A}\n{KEY_B}")
    async with running_workers(rotated, config, task_queue, max_cached_workflows=0):
        _, outcome = await decide(rotated, request.id, "alice", approve=True)
        assert outcome is not None and outcome.status == "approved"
        result = await rotated.get_workflow_handle(handle.id, result_type=RunResult).result()
    assert result.status == "completed"

    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    (completed,) = [
        event.workflow_execution_completed_event_attributes.result.payloads[0]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    ]
    assert encrypted_key_id(started) == "rot-a"
    assert encrypted_key_id(completed) == "rot-b"
    assert {encrypted_key_id(p) for p in history_payloads(history)} >= {"rot-a", "rot-b"}

    # the rotated ring reads the whole run, old and new payloads alike
    trace = build_trace(await decode_history(history, rotated.data_converter.payload_codec))
    assert trace.run.status == "completed"
    assert [c.step for c in trace.model_calls] == ["classify", "draft"]
    code, out = await steward(f"{KEY_A}\n{KEY_B}", env, "replay", handle.id)
    assert code == 0 and f"ok    {handle.id}" in out, out

    # a ring that lost A refuses, naming A, everywhere a history is read
    with pytest.raises(MissingKey) as missing:
        await decode_history(history, codec_of(KEY_B))
    assert missing.value.key_ids == ("rot-a",)
    code, out = await steward(KEY_B, env, "trace", handle.id)
    assert code == 2 and "'rot-a', which is not in STEWARD_CODEC_KEYS" in out, out
    code, out = await steward(KEY_B, env, "replay", handle.id)
    assert code == 1 and "MissingKey" in out and "'rot-a'" in out, out
    code, out = await steward(KEY_B, env, "eval", "--from-history", handle.id, "--no-worker")
    assert code == 2 and "'rot-a'" in out, out

    # and a ring without B cannot read the result, nor count its cost, and says why
    old_only = await client_with(env, KEY_A)
    with pytest.raises(MissingKey, match="'rot-b'"):
        await old_only.get_workflow_handle(handle.id, result_type=RunResult).result()
    async with asyncio.timeout(20):  # visibility is eventually consistent
        while True:
            runs = await costs.collect(
                old_only, since=timedelta(minutes=30), target="support-reply", limit=10_000
            )
            listed = [r for r in runs if r.workflow_id == handle.id and r.status != "running"]
            if listed:
                break
            await asyncio.sleep(0.2)
    (ours,) = listed
    assert ours.ledger is None
    assert (
        ours.error is not None and ours.error.startswith("MissingKey") and "'rot-b'" in ours.error
    )
