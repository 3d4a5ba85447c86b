"""Test fixtures: one Temporal dev server for the session, a fresh task queue per test,
the real workflows and activity classes with a fake model that answers from a queue.

Tests never reach a paid model: STEWARD_FORBID_PAID_MODELS makes the model activity
refuse any provider other than the local model and the fake. Payloads are encrypted, as
everywhere: every client, worker and subprocess of the tests uses the test key ring below
(set in the environment, so the CLI and worker processes the tests start use it too).
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["STEWARD_FORBID_PAID_MODELS"] = "1"
# Tests never sign with a developer's own keys; each test that signs makes its own.
os.environ["STEWARD_KEYS_DIR"] = tempfile.mkdtemp(prefix="steward-test-keys-")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
# The tests' key ring: one fixed key, so a failing test's histories can be read afterwards.
# It guards nothing. Set in the environment, so every process the tests start shares it.
os.environ["STEWARD_CODEC"] = "on"
os.environ["STEWARD_CODEC_KEYS"] = (
    "test-1:" + base64.b64encode(b"steward-test-key-not-a-secret!!!").decode()
)
os.environ.pop("STEWARD_CODEC_KEYS_FILE", None)

from steward import devserver
from steward import search_attributes as sa
from steward.codec import EncryptionCodec, codec_from_environment
from steward.config import StewardConfig, load_config
from steward.plugin import StewardPlugin
from tests.support.fake_model import FakeModel, install_fake_model

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CODEC = codec_from_environment()
assert isinstance(CODEC, EncryptionCodec)


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """The session's Temporal dev server (tuned like the embedded one)."""
    environment = await WorkflowEnvironment.start_local(
        plugins=[StewardPlugin(CODEC, strict_sandbox=True)],
        dev_server_existing_path=str(devserver.temporal_binary()),
        search_attributes=sa.ALL,
        dev_server_extra_args=devserver.tuning_args(),
        dev_server_log_level="error",
    )
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server, for deadlines and timeouts."""
    environment = await WorkflowEnvironment.start_time_skipping(
        plugins=[StewardPlugin(CODEC, strict_sandbox=True)],
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    await environment.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace="default",
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in sa.ALL
            },
        )
    )
    yield environment
    await environment.shutdown()


@pytest.fixture
def client(env: WorkflowEnvironment) -> Client:
    """A client of the session server."""
    return env.client


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue, so tests never share workers."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def fake_model() -> Iterator[FakeModel]:
    """The fake model, installed as litellm provider `fake`, with an empty queue."""
    fake = FakeModel()
    install_fake_model(fake)
    yield fake


@pytest.fixture
def config(tmp_path: Path) -> StewardConfig:
    """The example steward.yaml with every tier on the fake model, a private outbox and an
    empty private vector store (a playbook drafts ungrounded unless a test ingests).

    The playbook writes its draft (`draft: write`), so a test queues the reply's text; the
    composed draft of the example has tests of its own (tests/workflows/test_composed.py).
    """
    base = load_config(REPO / "examples" / "steward.yaml")
    agents = base.model_dump()["agents"]
    agents["support-reply"]["draft"] = "write"
    return StewardConfig.model_validate(
        base.model_dump()
        | {
            "agents": agents,
            "tiers": {name: [{"model": "fake/queued"}] for name in base.tiers},
            "outbox": str(tmp_path / "outbox"),
            "files": base.files.model_dump()
            | {"workspace": str(tmp_path / "workspace"), "published": str(tmp_path / "published")},
            "retrieval": base.retrieval.model_dump() | {"store": str(tmp_path / "qdrant")},
            "blobs": base.blobs.model_dump() | {"path": str(tmp_path / "blobs")},
        }
    )
