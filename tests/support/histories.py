"""Record workflow histories for the replay tests (`STEWARD_RECORD_HISTORIES=1 pytest`).

Committed histories replay against today's workflow code in every test run, so a change
that would break running workflows fails the suite. Before a history is written, what
would describe the recording machine is scrubbed: stack traces, worker identities
(pid@host) and absolute paths inside payloads (temporary outboxes, say). None of it
matters to replay. Recorded histories are written decrypted (see `record_history`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowHistory

from steward.codec import codec_from_environment
from steward.decoding import decode_history

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def history_id(name: str) -> str:
    """The workflow id for a recorded run: fixed when recording, so replay can reuse it
    (approval ids contain the workflow id); unique otherwise, so tests never collide.
    """
    return name if recording() else f"{name}-{uuid.uuid4().hex[:8]}"


def recording() -> bool:
    """Whether this test run records histories."""
    return os.environ.get("STEWARD_RECORD_HISTORIES") == "1"


async def readable_history(handle: WorkflowHandle[Any, Any]) -> WorkflowHistory:
    """The run's history with its payloads decrypted (the tests' key ring), as the trace
    and the eval recorder read it.
    """
    return await decode_history(await handle.fetch_history(), codec_from_environment())


async def record_history(handle: WorkflowHandle[Any, Any]) -> None:
    """Write the run's history to tests/histories/WORKFLOW_ID.json when recording is on.

    Decrypted first: committed histories are plaintext, readable by anyone and replayable
    under any key ring (the codec passes plaintext payloads through).
    """
    if not recording():
        return
    history = await readable_history(handle)
    HISTORIES.mkdir(exist_ok=True)
    scrubbed = scrub(json.loads(history.to_json()))
    (HISTORIES / f"{handle.id}.json").write_text(json.dumps(scrubbed, indent=2) + "\n")


ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:tmp|work|home|root|var|private|Users)/[^\s\"'\\]*")


def scrub(node: Any) -> Any:
    """The history JSON without stack traces, worker identities or absolute paths."""
    if isinstance(node, list):
        return [scrub(item) for item in node]
    if not isinstance(node, dict):
        return node
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key == "stackTrace":
            cleaned[key] = ""
        elif key == "identity" and isinstance(value, str):
            cleaned[key] = "steward-test-worker"
        elif key == "data" and isinstance(value, str):
            decoded = base64.b64decode(value).decode("utf-8", errors="surrogateescape")
            cleaned[key] = base64.b64encode(
                ABSOLUTE_PATH.sub("<path>", decoded).encode("utf-8", errors="surrogateescape")
            ).decode()
        elif isinstance(value, str):
            cleaned[key] = ABSOLUTE_PATH.sub("<path>", value)
        else:
            cleaned[key] = scrub(value)
    return cleaned
