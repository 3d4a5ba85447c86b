"""OpenTelemetry for workers: Temporal's tracing integration plus GenAI spans for model calls.

Workflow and activity spans come from `temporalio.contrib.opentelemetry.TracingInterceptor`,
which creates workflow spans only when a task is not replaying, so a replayed history never
emits a span twice. Each model call also gets a `chat {model}` span with the OpenTelemetry
GenAI semantic conventions (`gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...), and
the workflows add a span per approval wait. Spans go to a local JSON-lines file by default
and to OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Attributes never carry credentials;
prompt and answer text are recorded only when `STEWARD_TRACE_CONTENT=1`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status, StatusCode, Tracer
from temporalio import activity
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from steward.models import LLMRequest, LLMResult

CONTENT_PREVIEW_CHARS = 1_000
"""Prompt and answer text kept in a span when content capture is on."""


class JsonLinesExporter(SpanExporter):
    """Append each finished span as one JSON line to a file (the offline default)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: TextIO = path.open("a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the batch and flush it."""
        for span in spans:
            self._out.write(span.to_json(indent=None) + "\n")
        self._out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        self._out.close()


def tracer_provider(service: str, spans_file: Path) -> TracerProvider:
    """A provider exporting to OTLP when configured, else to `spans_file`."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter: SpanExporter
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = JsonLinesExporter(spans_file)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def interceptors(tracer: Tracer) -> list[TracingInterceptor | Interceptor]:
    """What `StewardPlugin` carries to trace a worker process: starts, workflows and
    activities (OpenTelemetry's interceptor, for the client and the workers built from it),
    and a GenAI span around each model call (the workers').
    """
    return [
        TracingInterceptor(tracer, always_create_workflow_spans=True),
        ModelCallSpans(tracer, record_content=os.environ.get("STEWARD_TRACE_CONTENT") == "1"),
    ]


class ModelCallSpans(Interceptor):
    """Adds a GenAI span inside each `complete` activity."""

    def __init__(self, tracer: Tracer, *, record_content: bool = False) -> None:
        self.tracer = tracer
        self.record_content = record_content

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap activity execution."""
        return _ModelCallInbound(next, self)


class _ModelCallInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: ModelCallSpans) -> None:
        super().__init__(next)
        self.owner = owner

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        request = input.args[0] if input.args else None
        if activity.info().activity_type != "complete" or not isinstance(request, LLMRequest):
            return await super().execute_activity(input)
        with self.owner.tracer.start_as_current_span(f"chat {request.tier}") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.max_tokens": request.max_tokens,
                    "gen_ai.request.temperature": request.temperature,
                    "steward.step": request.step,
                    "steward.tier": request.tier,
                    "steward.routing_rule": request.rule,
                    "steward.deployment": request.deployment,
                    "steward.attempt": activity.info().attempt,
                }
            )
            if self.owner.record_content:
                span.set_attribute(
                    "gen_ai.prompt", request.messages[-1].content[:CONTENT_PREVIEW_CHARS]
                )
            try:
                result = await super().execute_activity(input)
            except Exception as err:
                # The activity's error is already classified and scrubbed of credentials.
                span.set_status(Status(StatusCode.ERROR, type(err).__name__))
                span.set_attribute("error.type", getattr(err, "type", None) or type(err).__name__)
                raise
            if isinstance(result, LLMResult):
                _describe_result(span, result, self.owner.record_content)
            return result


def _describe_result(span: Any, result: LLMResult, record_content: bool) -> None:
    provider = result.model.split("/", 1)[0] if "/" in result.model else "unknown"
    span.update_name(f"chat {result.model}")
    span.set_attributes(
        {
            "gen_ai.system": provider,
            "gen_ai.request.model": result.model,
            "gen_ai.response.model": result.model,
            "gen_ai.usage.input_tokens": result.usage.input_tokens,
            "gen_ai.usage.output_tokens": result.usage.output_tokens,
            "steward.latency_ms": result.latency_ms,
        }
    )
    if result.finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [result.finish_reason])
    if result.usage.cost_usd is not None:
        span.set_attribute("steward.cost_usd", result.usage.cost_usd)
    if record_content:
        span.set_attribute("gen_ai.completion", result.text[:CONTENT_PREVIEW_CHARS])
