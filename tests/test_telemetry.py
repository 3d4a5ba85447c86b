"""OpenTelemetry: one span per workflow, activity, model call and approval wait, even when
every workflow task replays from the start, and no secret in any attribute."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from steward.codec import codec_from_environment
from steward.config import StewardConfig
from steward.plugin import StewardPlugin
from steward.runs import decide, start_run
from tests.support.fake_model import FakeModel
from tests.support.stack import running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path
from workers.telemetry import interceptors, tracer_provider

CANARY = "sk-canary-span-7d1e0b"


async def test_spans_are_emitted_once_with_genai_attributes(
    env: WorkflowEnvironment,
    config: StewardConfig,
    fake_model: FakeModel,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    data = config.model_dump()
    for deployments in data["tiers"].values():
        for deployment in deployments:
            deployment["api_key_env"] = "OPENAI_API_KEY"
    config = StewardConfig.model_validate(data)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    client = await Client.connect(
        env.client.service_client.config.target_host,
        plugins=[
            StewardPlugin(
                codec_from_environment(), strict_sandbox=True, interceptors=interceptors(tracer)
            )
        ],
    )
    queue_happy_path(fake_model)
    async with running_workers(
        client,
        config,
        task_queue,
        max_cached_workflows=0,
    ):
        handle = await start_run(
            client, config, "support-reply", TICKET, "demo-user", task_queue=task_queue
        )
        request = await wait_for_approval(handle)
        await decide(client, request.id, "alice", approve=True)
        await handle.result()

    spans = exporter.get_finished_spans()
    names = [span.name for span in spans]
    assert names.count("RunWorkflow:SupportReplyWorkflow") == 1
    assert names.count("RunActivity:complete") == 2
    assert names.count("RunActivity:send_email") == 1
    assert names.count("approval send_email") == 1
    chats = [span for span in spans if span.name == "chat fake/queued"]
    assert len(chats) == 2
    for chat in chats:
        attributes = dict(chat.attributes or {})
        assert attributes["gen_ai.request.model"] == "fake/queued"
        assert int(str(attributes["gen_ai.usage.input_tokens"])) > 0
        assert attributes["steward.tier"] in ("fast", "strong")
        assert "gen_ai.prompt" not in attributes  # content capture is off by default
    (wait,) = [span for span in spans if span.name == "approval send_email"]
    assert dict(wait.attributes or {})["steward.approval.approver"] == "alice"
    assert fake_model.calls[0].api_key == CANARY  # the key was used ...
    for span in spans:  # ... and is in no span
        assert CANARY not in str(dict(span.attributes or {})), span.name
        assert CANARY not in str([event.attributes for event in span.events]), span.name
    assert os.environ["OPENAI_API_KEY"] == CANARY


def test_spans_go_to_a_file_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    provider = tracer_provider("steward-test", tmp_path / "spans.jsonl")
    with provider.get_tracer("t").start_as_current_span("hello") as span:
        span.set_attribute("steward.step", "x")
    provider.shutdown()
    (line,) = (tmp_path / "spans.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["name"] == "hello" and record["attributes"]["steward.step"] == "x"


def test_spans_go_to_otlp_when_an_endpoint_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[tuple[str, str]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        provider = tracer_provider("steward-test", tmp_path / "unused.jsonl")
        with provider.get_tracer("t").start_as_current_span("hello"):
            pass
        provider.shutdown()
    finally:
        server.shutdown()
    assert received == [("/v1/traces", "application/x-protobuf")]
    assert not (tmp_path / "unused.jsonl").exists()
