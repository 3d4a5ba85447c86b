"""Each process imports what its role serves: workflows, the worker builder and a
privileged worker load none of the heavy libraries behind the activities they refer to,
and a default worker loads litellm with its first model call (quietly, as before).

Each check runs in a fresh interpreter: the test process itself has litellm loaded (the
fake model is a litellm provider).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from steward.config import StewardConfig
from steward.errors import MODEL_BAD_REQUEST

REPO = Path(__file__).resolve().parent.parent

HEAVY = ("litellm", "qdrant_client", "mcp", "llama_cpp", "wordllama", "boto3")
"""Libraries only some activities use, and slow or large to import (litellm: seconds and
some 200 MB); boto3 serves only an S3 blob store."""

PRELUDE = f"""
import json, sys

def heavy():
    return sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
"""

BUILD = """
import asyncio
from pathlib import Path

from temporalio.activity import _Definition
from temporalio.client import Client

from steward.codec import codec_from_environment
from steward.config import StewardConfig
from steward.errors import MODEL_BAD_REQUEST
from steward.plugin import StewardPlugin
from workers.build import build_workers, default_activities

target, role, config_file = sys.argv[1:]


async def build():
    config = StewardConfig.model_validate_json(Path(config_file).read_text())
    client = await Client.connect(target, plugins=[StewardPlugin(codec_from_environment())])
    activities = default_activities(config, allow_paid=False, role=role)
    workers = build_workers(client, activities, task_queue="role-imports", role=role)
    names = sorted(
        _Definition.must_from_callable(fn).name
        for worker in workers
        for fn in worker.config()["activities"] or ()
    )
    return activities, names
"""


def run(probe: str, cwd: Path, *args: str) -> Any:
    """What `probe` printed last (one JSON line), run in a fresh interpreter in `cwd`."""
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + probe, *args],
        cwd=cwd,
        env=os.environ | {"PYTHONPATH": str(REPO), "STEWARD_HOME": str(cwd / ".steward")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, f"the probe printed more than its answer: {done.stdout}"
    return json.loads(lines[0])


@pytest.fixture
def config_file(config: StewardConfig, tmp_path: Path) -> Path:
    """The tests' config (every tier on the fake model), where a probe can read it."""
    path = tmp_path / "steward.json"
    path.write_text(config.model_dump_json())
    return path


def test_workflows_and_the_worker_builder_import_no_heavy_library(tmp_path: Path) -> None:
    probe = (
        "import workflows.agent, workflows.support, workflows.ingest, workflows.eval\n"
        "import workers.build, workers.run\n"
        "print(json.dumps(heavy()))\n"
    )
    assert run(probe, tmp_path) == []


def test_a_privileged_worker_builds_and_imports_only_what_it_serves(
    client: Client, config_file: Path, tmp_path: Path
) -> None:
    probe = BUILD + (
        "activities, names = asyncio.run(build())\n"
        "print(json.dumps({'activities': names, 'llm': activities.llm is None,"
        " 'retrieval': activities.retrieval is None, 'heavy': heavy()}))\n"
    )
    target = client.service_client.config.target_host
    found = run(probe, tmp_path, target, "privileged", str(config_file))
    assert found == {
        "activities": ["call_mcp_tool", "notify_approvers", "publish_file", "send_email"],
        "llm": True,
        "retrieval": True,
        "heavy": [],
    }


def test_a_default_worker_imports_litellm_with_its_first_model_call(
    client: Client, config_file: Path, tmp_path: Path
) -> None:
    # The tiers name the fake provider, which this process never installs: litellm fails
    # the call, and with its debug output on it would print a banner to stdout first.
    probe = BUILD + (
        "from temporalio.exceptions import ApplicationError\n"
        "from temporalio.testing import ActivityEnvironment\n"
        "from steward.models import LLMRequest, Message\n"
        "activities, names = asyncio.run(build())\n"
        "built = heavy()\n"
        "request = LLMRequest(step='probe', tier='fast',"
        " messages=[Message(role='user', content='hi')])\n"
        "try:\n"
        "    asyncio.run(ActivityEnvironment().run(activities.llm.complete, request))\n"
        "except ApplicationError as err:\n"
        "    failed = err.type\n"
        "import litellm\n"
        "print(json.dumps({'built': built, 'served': 'complete' in names,"
        " 'failed': failed, 'called': heavy(), 'quiet': litellm.suppress_debug_info}))\n"
    )
    target = client.service_client.config.target_host
    found = run(probe, tmp_path, target, "default", str(config_file))
    assert found["built"] == [] and found["served"]
    # Classified by litellm's error class (the provider is unknown: a bad request).
    assert found["failed"] == MODEL_BAD_REQUEST
    assert found["called"] == ["litellm"]
    assert found["quiet"] is True
