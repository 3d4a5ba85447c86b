"""A run's event stream, workflow side: one Workflow Streams log per run, topic `events`.

The workflow appends what it decides (`steward.events`: a model turn, its whole answer,
tool calls, approvals, questions, cost, the end). Those appends are workflow state, not
commands: they cost no history event, and replay rebuilds the same log. The model activity
appends the streamed text by the stream's publish signal (`activities.stream`), in
batches. Watchers read the log by the stream's poll *query*, which never writes to
history (`steward.watch`); Workflow Streams clients that poll by update work too.

Continue-as-new carries only the stream's offset, so a watcher's position stays valid in
the next run of the chain while the log itself starts empty there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

from steward.events import TOPIC, RunEvent


class RunEvents:
    """The run's stream. Construct it from the workflow's `__init__` (Workflow Streams
    registers its handlers there).
    """

    def __init__(self, offset: int = 0) -> None:
        self.stream = WorkflowStream(WorkflowStreamState(base_offset=offset) if offset else None)
        self._topic = self.stream.topic(TOPIC)

    def publish(self, event: RunEvent) -> None:
        """Append an event for watchers (no history event; replay appends it again)."""
        self._topic.publish(event)

    @property
    def offset(self) -> int:
        """Events in the chain's stream so far: where the next run of the chain starts."""
        state = self.stream.get_state()
        return state.base_offset + len(state.log)

    def detach(self) -> None:
        """Release polling subscribers before continuing as new (they follow the chain)."""
        self.stream.detach_pollers()


def carried_offset(sent: object) -> int:
    """The stream offset a continued run's input carries (`resume.stream_offset`), else 0.

    Read before the input is validated, because the stream is made in `__init__`; a
    malformed value only means a watcher starts from the new run's first event.
    """
    resume: Any = sent.get("resume") if isinstance(sent, Mapping) else None
    offset = resume.get("stream_offset") if isinstance(resume, Mapping) else None
    if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
        return offset
    return 0
