"""A model call's streamed text on its way to the run: batches delivered whole, in order.

The stream client is replaced by one whose every flush (a signal to the run) takes a
while, so a call that ends while a batch is on its way shows what becomes of that batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.testing import ActivityEnvironment

from activities import stream
from activities.stream import TextDeltas
from steward.events import TextDelta

FLUSH_SECONDS = 0.3


@dataclass
class SlowStream:
    """Records what is published and each flush, begun and finished."""

    published: list[TextDelta] = field(default_factory=list)
    flushes: list[str] = field(default_factory=list)
    made: int = 0

    def topic(self, name: str, *, type: Any = None) -> SlowStream:
        return self

    def publish(self, value: TextDelta, *, force_flush: bool = False) -> None:
        self.published.append(value)

    async def flush(self) -> None:
        self.flushes.append("begun")
        await asyncio.sleep(FLUSH_SECONDS)
        self.flushes.append("finished")


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> SlowStream:
    client = SlowStream()

    def made(**_: Any) -> SlowStream:
        client.made += 1
        return client

    monkeypatch.setattr(WorkflowStreamClient, "from_within_activity", made)
    return client


async def test_a_call_that_ends_with_a_batch_on_its_way_lets_it_arrive(slow: SlowStream) -> None:
    async def call() -> None:
        async with TextDeltas("draft", 0) as deltas:
            await asyncio.sleep(stream.HOLD.total_seconds() + 0.02)
            deltas.add("Dear Dana, ")
            await asyncio.sleep(0.05)  # the first batch is being signalled now
            deltas.add("your parcel ships today.")

    await ActivityEnvironment().run(call)

    # Every flush begun was finished (none was cancelled mid-signal), and the text
    # arrived once, in order.
    assert slow.flushes == ["begun", "finished", "begun", "finished"]
    assert [(d.start, d.text) for d in slow.published] == [
        (0, "Dear Dana, "),
        (11, "your parcel ships today."),
    ]


async def test_a_call_shorter_than_the_hold_makes_no_client_and_sends_nothing(
    slow: SlowStream,
) -> None:
    async def call() -> None:
        async with TextDeltas("classify", 0) as deltas:
            deltas.add('{"category": "shipping"}')

    await ActivityEnvironment().run(call)

    assert (slow.made, slow.published, slow.flushes) == (0, [], [])


async def test_a_call_that_ends_before_its_first_batch_went_sends_nothing(
    slow: SlowStream,
) -> None:
    # Longer than the hold, but its text came all at once at the end (as on a worker too
    # busy to send sooner): the activity's result brings that answer to the run as soon.
    async def call() -> None:
        async with TextDeltas("draft", 0) as deltas:
            await asyncio.sleep(stream.HOLD.total_seconds() + 0.05)
            deltas.add("Dear Dana, your parcel ships today.")

    await ActivityEnvironment().run(call)

    assert (slow.made, slow.published, slow.flushes) == (0, [], [])
