"""Publish a model call's text, as it streams in, to its run's event stream.

A model activity runs on a worker, not in the workflow, so its deltas reach the run's
stream (`steward.events`) the way Workflow Streams lets any client publish: a signal to the
workflow carrying a batch of items. Every signal is an event in the run's history, so the
deltas are batched: the first is sent at once (a watcher sees the first tokens without
waiting), the rest every `FLUSH_EVERY`, and whatever is left when the call ends. A call
therefore costs its run a few signals, however many tokens it streams (`make bench`
measures it).

Watching is a convenience, never a reason for a model call to fail: a batch that cannot
be delivered is logged and dropped (the workflow's own `ModelAnswered` still shows the
whole answer), and outside a workflow-started activity nothing is published at all.
"""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Final

from temporalio import activity
from temporalio.contrib.workflow_streams import TopicHandle, WorkflowStreamClient

from steward.events import TOPIC, TextDelta

FLUSH_EVERY: Final = timedelta(milliseconds=500)
"""How often streamed text is sent to the run after the first delta (one signal each)."""

GIVE_UP_AFTER: Final = timedelta(seconds=30)
"""How long a batch that fails to send is retried before it is dropped."""


class TextDeltas:
    """The text deltas of one model call (step, deployment, attempt), batched to its run.

    Use as an async context manager around the call; `add` each piece of text as it
    arrives. Leaving the block sends what is left, also when the call failed, so a
    watcher sees how far the failed attempt got before the retry replaces it.
    """

    def __init__(self, step: str, deployment: int, *, enabled: bool = True) -> None:
        self.step = step
        self.deployment = deployment
        self.sent = 0
        self._client: WorkflowStreamClient | None = None
        self._topic: TopicHandle[TextDelta] | None = None
        self._attempt = 1
        if not enabled or not activity.in_activity():
            return
        info = activity.info()
        self._attempt = info.attempt
        if info.workflow_id is None:
            return
        try:
            self._client = WorkflowStreamClient.from_within_activity(
                batch_interval=FLUSH_EVERY, max_retry_duration=GIVE_UP_AFTER
            )
        except RuntimeError:
            return  # no client to publish with (an activity run on its own, in a test)
        self._topic = self._client.topic(TOPIC, type=TextDelta)

    async def __aenter__(self) -> TextDeltas:
        if self._client is not None:
            await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._client is None:
            return
        try:
            await self._client.__aexit__(kind, error, trace)
        except Exception as failure:
            # The answer (or the failure) is what the activity returns; a watcher that
            # misses the last deltas still gets the whole answer from the workflow.
            activity.logger.warning(
                "streamed text of %s not delivered to the run: %s", self.step, failure
            )

    def add(self, text: str) -> None:
        """Queue `text` (the next piece of the answer) for the run's watchers."""
        if self._topic is None or not text:
            self.sent += len(text)
            return
        first = self.sent == 0
        self._topic.publish(
            TextDelta(
                step=self.step,
                deployment=self.deployment,
                attempt=self._attempt,
                start=self.sent,
                text=text,
            ),
            force_flush=first,
        )
        self.sent += len(text)
