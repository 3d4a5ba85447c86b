"""Record workflow histories for the replay tests (`STEWARD_RECORD_HISTORIES=1 pytest`).

Committed histories replay against today's workflow code in every test run, so a change
that would break running workflows fails the suite.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def history_id(name: str) -> str:
    """The workflow id for a recorded run: fixed when recording, so replay can reuse it
    (approval ids contain the workflow id); unique otherwise, so tests never collide.
    """
    return name if recording() else f"{name}-{uuid.uuid4().hex[:8]}"


def recording() -> bool:
    """Whether this test run records histories."""
    return os.environ.get("STEWARD_RECORD_HISTORIES") == "1"


async def record_history(handle: WorkflowHandle[Any, Any]) -> None:
    """Write the run's history to tests/histories/WORKFLOW_ID.json when recording is on."""
    if not recording():
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{handle.id}.json").write_text(history.to_json())
