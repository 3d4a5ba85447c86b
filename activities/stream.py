"""Publish a model call's text, as it streams in, to its run's event stream.

A model activity runs on a worker, not in the workflow, so its text reaches the run's
stream (`steward.events`) the way Workflow Streams lets any client publish: a signal to
the workflow carrying a batch. Every signal is an event in the run's history (with the
workflow task it wakes, about four), so text is sent in few batches, each batch one
`TextDelta` holding all the text since the last: the first piece once the call has run
for `HOLD` (at once if it comes later), then after `FIRST_WAIT`, the wait doubling up to
`LONGEST_WAIT`, and whatever is left when the call ends. A call of a few seconds costs
its run a handful of signals, one of a minute about thirty, however many tokens it
streams (`make bench` measures it). A call that ends before its first batch was sent
(within `HOLD`, or later on a worker too busy to send it sooner) streams nothing: its
answer reaches the run with the activity's result as soon, and its signals would have
doubled the run's history and cost each step a workflow task or more, most of all on a
worker already loaded.

Watching is a convenience, never a reason for a model call to fail: a batch that cannot
be delivered is logged and dropped (the workflow's own `ModelAnswered` still shows the
whole answer), and outside a workflow-started activity nothing is published at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from types import TracebackType
from typing import Final

from temporalio import activity
from temporalio.contrib.workflow_streams import TopicHandle, WorkflowStreamClient

from steward.events import TOPIC, TextDelta

HOLD: Final = timedelta(milliseconds=100)
"""How long a call runs before any of its text is sent: a shorter call sends none. A
provider's or the local model's first token rarely comes sooner, so watchers lose nothing;
a fast call (a cache, a small model on a GPU) no longer pays a signal per answer."""

FIRST_WAIT: Final = timedelta(milliseconds=250)
"""Wait after the first batch (sent once the call has run `HOLD`) before the second."""

LONGEST_WAIT: Final = timedelta(seconds=2)
"""Longest wait between batches: the wait doubles up to this."""

GIVE_UP_AFTER: Final = timedelta(seconds=30)
"""How long a batch that fails to send is retried before it is dropped."""

SETTLE: Final = timedelta(seconds=2)
"""How long a call that has its answer waits for a batch still on its way to the run."""


class TextDeltas:
    """The streamed text of one model call (step, deployment, attempt), batched to its run.

    Use as an async context manager around the call; `add` each piece of text as it
    arrives. Leaving the block sends what is left once a batch has gone, also when the
    call failed, so a watcher sees how far the failed attempt got before the retry
    replaces it.
    """

    def __init__(self, step: str, deployment: int, *, enabled: bool = True) -> None:
        self.step = step
        self.deployment = deployment
        self.sent = 0
        self._pending = ""
        self._client: WorkflowStreamClient | None = None
        self._topic: TopicHandle[TextDelta] | None = None
        self._attempt = 1
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()
        self._publishing = False
        """Whether text goes to a run: the client to send it is made on the first batch,
        so the many calls shorter than `HOLD` never make one."""
        if not enabled or not activity.in_activity():
            return
        info = activity.info()
        self._attempt = info.attempt
        self._publishing = info.workflow_id is not None

    async def __aenter__(self) -> TextDeltas:
        if self._publishing:
            self._sender = asyncio.create_task(self._send_batches())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._sender is None:
            return
        # A batch on its way is delivered first (cancelled mid-signal, it was neither known
        # to have arrived nor sent again in order), unless it is still retrying after
        # `SETTLE`: the answer is not held back for a watcher.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE.total_seconds()), self._sending:
                pass  # no batch is on its way now; nothing runs before the cancel below
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender
        if self.sent == 0:
            # Nothing streamed yet (a call shorter than `HOLD`, or one whose batch the
            # sender had not begun when it ended, as on a busy worker): its answer is in
            # the activity's result, arriving now, and a batch would only cost the run a
            # signal and a workflow task.
            return
        try:
            await self._send()
        except Exception as failure:
            # The answer (or the failure) is what the activity returns; a watcher that
            # misses the last text still gets the whole answer from the workflow.
            activity.logger.warning(
                "streamed text of %s not delivered to the run: %s", self.step, failure
            )

    def add(self, text: str) -> None:
        """Queue `text` (the next piece of the answer) for the run's watchers."""
        if not self._publishing:
            self.sent += len(text)
            return
        self._pending += text
        if self.sent == 0:
            self._wake.set()  # the first text goes at once

    async def _send_batches(self) -> None:
        await asyncio.sleep(HOLD.total_seconds())
        await self._wake.wait()
        wait = FIRST_WAIT
        while True:
            try:
                async with self._sending:
                    await self._send()
            except Exception as failure:
                activity.logger.warning("streamed text of %s delayed: %s", self.step, failure)
            await asyncio.sleep(wait.total_seconds())
            wait = min(wait * 2, LONGEST_WAIT)

    async def _send(self) -> None:
        if not self._publishing:
            return
        if self._client is None or self._topic is None:
            try:
                self._client = WorkflowStreamClient.from_within_activity(
                    max_retry_duration=GIVE_UP_AFTER
                )
            except RuntimeError:
                self._publishing = False  # no client (an activity run on its own, in a test)
                return
            self._topic = self._client.topic(TOPIC, type=TextDelta)
        if self._pending:
            text, self._pending = self._pending, ""
            self._topic.publish(
                TextDelta(
                    step=self.step,
                    deployment=self.deployment,
                    attempt=self._attempt,
                    start=self.sent,
                    text=text,
                )
            )
            self.sent += len(text)
        await self._client.flush()
