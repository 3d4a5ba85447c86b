"""Histories as people read them: every payload through the codec, failures unpacked.

Temporal stores a history as the workers wrote it: with the codec on, each input, result,
signal and failure message is ciphertext. Replay, the trace, the eval recorder and
anything else that reads history events must decode them first. `decode_history` does
that once, for a whole history: every payload in every event (inputs, results, signals,
updates, memo, headers, failure details) goes through the codec in one batch, and each
failure whose message and stack trace travel encrypted (`encoded_attributes`) gets them
back in place. What comes out reads exactly like a history recorded without the codec,
so readers need not know.

A history encrypted with a key the ring lacks (or read with the codec off) is refused
before anything is decoded, naming every missing key id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadCodec

from steward.codec import (
    SWITCH_VARIABLE,
    EncryptionCodec,
    MissingKey,
    encrypted_key_id,
)

_PAYLOAD = Payload.DESCRIPTOR.full_name
_FAILURE = Failure.DESCRIPTOR.full_name


async def decode_history(history: WorkflowHistory, codec: PayloadCodec | None) -> WorkflowHistory:
    """A copy of `history` with its payloads decoded and its failures' messages restored."""
    events = [HistoryEvent() for _ in history.events]
    for copy, event in zip(events, history.events, strict=True):
        copy.CopyFrom(event)
    payloads: list[Payload] = []
    failures: list[Failure] = []
    for event in events:
        for node in _walk(event):
            if isinstance(node, Payload):
                payloads.append(node)
            else:
                failures.append(node)
    check_keys(history.workflow_id, payloads, codec)
    if codec is not None and payloads:
        for payload, decoded in zip(payloads, await codec.decode(payloads), strict=True):
            if decoded is not payload:
                payload.CopyFrom(decoded)
    for failure in failures:
        _unpack(failure)
    return WorkflowHistory(history.workflow_id, events)


def history_payloads(history: WorkflowHistory) -> list[Payload]:
    """Every payload in the history's events, in order (a view: do not modify them)."""
    return [node for event in history.events for node in _walk(event) if isinstance(node, Payload)]


def check_keys(workflow_id: str, payloads: list[Payload], codec: PayloadCodec | None) -> None:
    """MissingKey unless `codec` can decrypt every encrypted payload among `payloads`."""
    used = {key for key in map(encrypted_key_id, payloads) if key is not None}
    what = f"the history of {workflow_id}"
    if codec is None and used:
        raise MissingKey(
            f"{what} is encrypted (key {', '.join(sorted(used))}), but payload encryption is "
            f"off here ({SWITCH_VARIABLE}=off): set the workers' key ring to read it",
            used,
        )
    if isinstance(codec, EncryptionCodec):
        missing = {key for key in used if key not in codec.ring}
        if missing:
            raise MissingKey(codec.ring.missing_message(what, missing), missing)


def _walk(message: Message) -> Iterator[Payload | Failure]:
    """Each Payload and Failure inside `message`, at any depth (set fields only)."""
    if message.DESCRIPTOR.full_name == _FAILURE:
        assert isinstance(message, Failure)
        yield message
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None:
            continue
        if kind.GetOptions().map_entry:
            if kind.fields_by_name["value"].message_type is None:
                continue
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if item.DESCRIPTOR.full_name == _PAYLOAD:
                yield item
            else:
                yield from _walk(item)


def _unpack(failure: Failure) -> None:
    """Move a failure's encoded message and stack trace back where readers look."""
    if not failure.HasField("encoded_attributes"):
        return
    attributes = failure.encoded_attributes
    if attributes.metadata.get("encoding") != b"json/plain":
        return  # still encrypted (no codec) or unknown: leave it as it is
    try:
        fields = json.loads(attributes.data)
    except ValueError:
        return
    if isinstance(fields, dict):
        if isinstance(fields.get("message"), str):
            failure.message = fields["message"]
        if isinstance(fields.get("stack_trace"), str):
            failure.stack_trace = fields["stack_trace"]
        failure.ClearField("encoded_attributes")
