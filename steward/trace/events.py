"""Reading raw history events for the trace: payloads, failures, times and previews.

History stores payloads as encoded bytes and failures as protobuf chains; the trace wants
Steward's pydantic models and one readable error per failure. Decoding uses the same
pydantic data converter the workers use, so what the trace shows is what the workflow saw.
Nothing here talks to a server, and nothing here holds keys: payloads encrypted by the
codec are decrypted for the whole history before the trace reads it
(`steward.decoding.decode_history`, which `steward trace` and the eval scorer call), and a
payload still encrypted here is shown as such.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ValidationError
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.contrib.pydantic import pydantic_data_converter

from steward.models import ResolvedRun
from steward.trace.model import ErrorInfo

PREVIEW_CHARS = 200
"""How much of a prompt, answer or input the trace quotes."""

M = TypeVar("M", bound=BaseModel)

_CONVERTER = pydantic_data_converter.payload_converter
# Failures that only say "this activity/child failed"; the cause below them says why.
_WRAPPERS = frozenset(
    {
        "activity_failure_info",
        "child_workflow_execution_failure_info",
        "nexus_operation_execution_failure_info",
    }
)


def kind(event: HistoryEvent) -> str:
    """The event type without its prefix, e.g. ACTIVITY_TASK_SCHEDULED."""
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def event_time(stamp: Timestamp) -> datetime:
    """An event timestamp as an aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=UTC)


def seconds(duration: Duration) -> float:
    """A protobuf duration in seconds."""
    return duration.ToTimedelta().total_seconds()


def decode(payload: Payload) -> Any:
    """One payload as plain JSON values, or a marker saying why it cannot be read.

    A payload encrypted by a codec, or in an encoding this converter does not know, is
    shown as such rather than failing the whole trace.
    """
    try:
        return _CONVERTER.from_payloads([payload])[0]
    except (KeyError, RuntimeError, ValueError) as err:
        encoding = payload.metadata.get("encoding", b"?").decode(errors="replace")
        return f"<undecodable payload ({encoding}): {err}>"


def first(payloads: Payloads) -> Any:
    """The first payload of a Payloads message, decoded, or None when there is none."""
    return decode(payloads.payloads[0]) if payloads.payloads else None


def indexed(fields: Mapping[str, Payload]) -> dict[str, Any]:
    """Search attributes from an upsert or start event, decoded."""
    return {name: decode(payload) for name, payload in fields.items()}


def typed(model: type[M], value: Any) -> M | None:
    """`value` as a Steward model, or None if it is not one.

    Fields this version does not know are dropped before giving up, so a history written
    by newer code still reads as far as today's models go.
    """
    if not isinstance(value, dict):
        return None
    for candidate in (value, {k: v for k, v in value.items() if k in model.model_fields}):
        try:
            return model.model_validate(candidate)
        except ValidationError:
            continue
    return None


def root_failure(failure: Failure) -> Failure:
    """The failure that says why: below "activity task failed" and similar wrappers."""
    while failure.WhichOneof("failure_info") in _WRAPPERS and failure.HasField("cause"):
        failure = failure.cause
    return failure


def error_info(failure: Failure) -> ErrorInfo:
    """The root of a failure chain as a type and a message."""
    root = root_failure(failure)
    info = root.WhichOneof("failure_info")
    if info == "application_failure_info":
        app = root.application_failure_info
        return ErrorInfo(
            type=app.type or "ApplicationError",
            message=root.message,
            non_retryable=app.non_retryable,
        )
    if info == "timeout_failure_info":
        name = TimeoutType.Name(root.timeout_failure_info.timeout_type).removeprefix(
            "TIMEOUT_TYPE_"
        )
        return ErrorInfo(type=f"Timeout({name})", message=root.message or f"{name} timeout")
    label = (info or "failure").removesuffix("_failure_info").replace("_", " ").title()
    return ErrorInfo(type=label.replace(" ", ""), message=root.message)


def preview(text: Any, limit: int = PREVIEW_CHARS) -> str:
    """A value as one line of at most `limit` characters."""
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False, default=str)
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def last_user_message(messages: Iterable[Any]) -> str:
    """The content of the last user message in a model request, as sent."""
    content = ""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            content = str(message.get("content", ""))
        elif getattr(message, "role", None) == "user":
            content = str(message.content)
    return content


def span(seconds: float | None) -> str:
    """A duration for people."""
    if seconds is None:
        return "?"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


LOCAL_ACTIVITY_MARKER = "core_local_activity"
"""The marker a local activity's result is recorded in (Temporal's Python SDK)."""


def local_activity(event: HistoryEvent) -> tuple[str, Payloads] | None:
    """A local activity's type and result, when `event` is the marker recording one."""
    marker = event.marker_recorded_event_attributes
    if kind(event) != "MARKER_RECORDED" or marker.marker_name != LOCAL_ACTIVITY_MARKER:
        return None
    data = first(marker.details["data"]) if "data" in marker.details else None
    activity_type = data.get("activity_type") if isinstance(data, dict) else None
    if not isinstance(activity_type, str):
        return None
    return activity_type, marker.details["result"] if "result" in marker.details else Payloads()


def resolved_run(events: Iterable[HistoryEvent]) -> ResolvedRun | None:
    """What the workers resolved for a run (its `resolve_run` result), if it got that far:
    from the local activity's marker (runs since CURRENT_PATCH) or the activity's result.
    """
    scheduled: dict[int, str] = {}
    for event in events:
        name = kind(event)
        local = local_activity(event)
        if local is not None and local[0] == "resolve_run":
            return typed(ResolvedRun, first(local[1]))
        if name == "ACTIVITY_TASK_SCHEDULED":
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif name == "ACTIVITY_TASK_COMPLETED":
            done = event.activity_task_completed_event_attributes
            if scheduled.get(done.scheduled_event_id) == "resolve_run":
                return typed(ResolvedRun, first(done.result))
    return None
