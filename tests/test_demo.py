"""`steward demo` end to end, as `make demo` runs it, with the real local model."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from tests.support.stack import mail_text

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.local_model
async def test_demo_runs_the_playbook_to_a_sent_reply(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    config = yaml.safe_load((REPO / "examples" / "steward.yaml").read_text())
    config["outbox"] = str(tmp_path / "outbox")
    config["retrieval"]["store"] = str(tmp_path / "qdrant")
    (tmp_path / "steward.yaml").write_text(yaml.safe_dump(config))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "steward.cli",
        "demo",
        "--config",
        str(tmp_path / "steward.yaml"),
        env=os.environ
        | {
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "STEWARD_HOME": str(tmp_path / "home"),
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = out.decode()
    assert process.returncode == 0, text
    assert "collection handbook: 10 files ingested" in text
    assert "grounding: 3 passages from handbook" in text
    assert "cites:  handbook/" in text  # the reply rests on the handbook
    assert "waits for a human approval" in text
    assert "steward approve support-reply-" in text and "--as demo-approver" in text
    assert "stdin is not a terminal: approving as demo-approver" in text
    assert ": completed" in text
    assert text.count("steward-local/smollm2") == 2  # classify and draft, by the real model
    messages = [mail_text(p) for p in (tmp_path / "outbox").glob("*.eml")]
    (reply,) = [m for m in messages if "X-Steward-Approval:" not in m]
    (notice,) = [m for m in messages if "X-Steward-Approval:" in m]
    assert "To: dana.whitfield@example.com" in reply
    assert "steward approve support-reply-" in notice
    assert (tmp_path / "home" / "worker.log").exists()
