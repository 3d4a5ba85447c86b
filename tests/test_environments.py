"""Environments: one steward.yaml, a namespace and overrides per environment.

The loader's rules (merge, refusals, the namespace) are checked on small files; the CLI is
checked end to end against a dev server of the test's own, started with every namespace
of the example config, so a run and an approval in one environment never show in another.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner

from steward import devserver
from steward import search_attributes as sa
from steward.cli import app
from steward.client import connect, connect_options
from steward.config import ConfigError, StewardConfig, load_config, merge
from steward.runs import start_run
from tests.support.fake_model import FakeModel
from tests.support.stack import running_workers, wait_for_approval
from tests.workflows.test_support import TICKET, queue_happy_path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "steward.yaml"
STAGING = "steward-staging"

BASE: dict[str, Any] = {
    "tiers": {"fast": [{"model": "fake/queued"}]},
    "approvers": {"leads": ["alice", "bob"], "ops": ["carol"]},
    "tools": {"send_email": {"approval": {"group": "leads", "timeout_seconds": 600}}},
    "http": {"allow_hosts": ["example.com", "docs.example.com"], "max_bytes": 5000},
    "environments": {
        "dev": {"namespace": "default"},
        "staging": {
            "namespace": "steward-staging",
            "overrides": {
                "tools": {"send_email": {"approval": {"required": 2}}},
                "http": {"allow_hosts": ["staging.example.com"]},
            },
        },
        "prod": {"namespace": "steward-prod"},
    },
}


def write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "steward.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def with_overrides(environment: str, overrides: dict[str, Any]) -> dict[str, Any]:
    return merge(BASE, {"environments": {environment: {"overrides": overrides}}})


def test_merge_merges_mappings_and_replaces_everything_else() -> None:
    merged = merge(
        {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "list": [1, 2], "keep": "x"},
        {"a": {"c": {"d": 20}, "f": 4}, "list": [3], "new": None},
    )
    assert merged == {
        "a": {"b": 1, "c": {"d": 20, "e": 3}, "f": 4},
        "list": [3],
        "keep": "x",
        "new": None,
    }


def test_overrides_merge_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    staging = load_config(path, environment="staging")
    approval = staging.tools["send_email"].approval
    assert approval is not None
    # Nested mappings merge: the group and timeout stay, `required` comes from the override.
    assert (approval.group, approval.timeout_seconds, approval.required) == ("leads", 600, 2)
    # Lists replace; the mapping around them merges.
    assert staging.http.allow_hosts == ["staging.example.com"]
    assert staging.http.max_bytes == 5000
    assert staging.environment == "staging" and staging.namespace == "steward-staging"

    plain = load_config(path)
    assert plain.environment is None and plain.namespace == "default"
    assert plain.http.allow_hosts == ["example.com", "docs.example.com"]
    assert plain.tools["send_email"].approval == approval.model_copy(update={"required": 1})
    assert plain.namespaces[0] == "default"  # in the file's order after it
    assert sorted(plain.namespaces) == ["default", "steward-prod", "steward-staging"]
    assert load_config(path, environment="dev").namespace == "default"


def test_unknown_environment_is_refused_naming_the_declared_ones(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"unknown environment 'qa'.*dev, prod, staging"):
        load_config(path, environment="qa")
    without = {key: value for key, value in BASE.items() if key != "environments"}
    with pytest.raises(ConfigError, match=r"unknown environment 'dev'.*: none"):
        load_config(write(tmp_path, without), environment="dev")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            {"tools": {"send_email": {"approval": {"required": 0}}}},
            "environments.prod.overrides.tools.send_email.approval.required",
        ),
        (
            {"tools": {"send_email": {"approval": {"group": "nobody"}}}},
            "environments.prod.overrides.tools.send_email.approval.group: no approver group",
        ),
        ({"http": {"allow_hosts": "example.com"}}, "environments.prod.overrides.http.allow_hosts"),
        ({"tiers": {"fast": []}}, "environments.prod.overrides.tiers.fast"),
        ({"unknown_section": 1}, "environments.prod.overrides.unknown_section"),
    ],
)
def test_override_that_breaks_the_config_is_refused_naming_it(
    tmp_path: Path, overrides: dict[str, Any], named: str
) -> None:
    path = write(tmp_path, with_overrides("prod", overrides))
    # Refused whichever environment is selected: a broken prod must not wait for prod.
    for environment in (None, "dev", "prod"):
        with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
            load_config(path, environment=environment)


def test_an_override_that_breaks_a_check_elsewhere_is_named(tmp_path: Path) -> None:
    # Shortening send_email's timeout leaves the (unchanged) SMTP timeout too long.
    raw = with_overrides("staging", {"tools": {"send_email": {"timeout_seconds": 5}}})
    path = write(tmp_path, raw | {"smtp": {"host": "localhost", "timeout_seconds": 10}})
    with pytest.raises(
        ConfigError, match=r"environments\.staging\.overrides \(merged\): \(top\): smtp\."
    ):
        load_config(path, environment="staging")


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        ({"dev": {}}, "environments.dev.namespace"),
        ({"dev": {"namespace": "has space"}}, "environments.dev.namespace"),
        ({"dev": {"namespace": "d", "overrides": {"environments": {}}}}, "cannot be overridden"),
        ({"bad name": {"namespace": "default"}}, "'bad name'"),
    ],
)
def test_malformed_environments_are_refused(
    tmp_path: Path, environments: dict[str, Any], message: str
) -> None:
    raw = {key: value for key, value in BASE.items() if key != "environments"}
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, raw | {"environments": environments}))


def test_the_example_declares_three_environments_that_load() -> None:
    assert load_config(EXAMPLE).namespaces == ["default", "steward-staging", "steward-prod"]
    prod = load_config(EXAMPLE, environment="prod")
    approval = prod.tools["send_email"].approval
    assert approval is not None and approval.required == 2
    assert len(prod.approvers[approval.group]) >= approval.required


def test_connect_uses_the_environment_namespace_over_temporal_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, BASE)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "from-temporal")
    monkeypatch.delenv("STEWARD_ENV", raising=False)
    assert connect_options()["namespace"] == "from-temporal"
    assert connect_options(load_config(path))["namespace"] == "from-temporal"
    assert connect_options(load_config(path, "staging"))["namespace"] == "steward-staging"
    # Given no settings, STEWARD_ENV selects the environment of the default steward.yaml.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEWARD_ENV", "prod")
    assert connect_options()["namespace"] == "steward-prod"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devserver.DevServer]:
    """A dev server of this module's own, with the example's namespaces."""
    state = tmp_path_factory.mktemp("steward-home")
    started = devserver.start(
        state,
        port=free_port(),
        ui_port=free_port(),
        namespaces=load_config(EXAMPLE).namespaces,
    )
    yield started
    devserver.stop(state)


@pytest.fixture
async def clients(server: devserver.DevServer) -> AsyncIterator[dict[str, Client]]:
    yield {
        namespace: await connect(target_host=server.address, namespace=namespace)
        for namespace in ("default", STAGING)
    }


async def steward(server: devserver.DevServer, *args: str, **env: str) -> tuple[int, str]:
    """The CLI in a subprocess against `server`, run from the repository (so it finds the
    example config), with `env` added to its environment."""
    environ = {
        k: v for k, v in os.environ.items() if k not in ("STEWARD_ENV", "TEMPORAL_NAMESPACE")
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "steward.cli",
        *args,
        env=environ | {"TEMPORAL_ADDRESS": server.address} | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_server_has_every_namespace_with_search_attributes(
    clients: dict[str, Client],
) -> None:
    for namespace in ("default", STAGING, "steward-prod"):
        response = await clients["default"].operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        registered = dict(response.custom_attributes)
        for key in sa.ALL:
            assert registered.get(key.name) == IndexedValueType.Value(
                f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}"
            ), (namespace, key.name)


async def test_dev_up_creates_namespaces_a_running_server_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("STEWARD_HOME", str(home))
    port, ui_port = free_port(), free_port()
    try:
        first = devserver.start(port=port, ui_port=ui_port)  # "default" only, as before
        raw = merge(BASE, {"environments": {"qa": {"namespace": "team-qa"}}})
        config = str(write(tmp_path, raw))
        up = ["dev", "up", "--config", config, "--port", str(port)]
        result = CliRunner().invoke(app, [*up, "--codec-port", str(free_port())])
        assert result.exit_code == 0, result.output
        assert "already running" in result.output
        # started before, without a codec server: the UI cannot decrypt, and `up` says so
        assert "its UI was started without this codec server" in result.output
        listed = result.output.split("namespaces: ")[1].strip().split(", ")
        assert sorted(listed) == ["default", "steward-prod", "steward-staging", "team-qa"]
        client = await connect(target_host=first.address)
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="team-qa")
        )
        assert {key.name for key in sa.ALL} <= set(response.custom_attributes)
    finally:
        devserver.stop(home)
        devserver.stop_codec_server(home)


async def test_a_staging_run_and_its_approvals_stay_in_staging(
    server: devserver.DevServer,
    clients: dict[str, Client],
    config: StewardConfig,
    fake_model: FakeModel,
) -> None:
    default, staging = clients["default"], clients[STAGING]
    # A run in default waits for an approval: `pending` shows it there, never in staging.
    queue_happy_path(fake_model)
    queue = f"env-{uuid.uuid4().hex[:8]}"
    async with running_workers(default, config, queue):
        handle = await start_run(
            default, config, "support-reply", TICKET, "demo-user", task_queue=queue
        )
        request = await wait_for_approval(handle)
        async with asyncio.timeout(20):  # visibility is eventually consistent
            while True:
                code, out = await steward(server, "pending")
                if request.id in out:
                    break
                await asyncio.sleep(0.2)
        code, out = await steward(server, "pending", STEWARD_ENV="staging")
        assert code == 0, out
        assert request.id not in out and "no approvals waiting" in out
        await handle.terminate("test done")

    # A run started in staging lands in staging's namespace and nowhere else.
    workflow_id = f"env-run-{uuid.uuid4().hex[:8]}"
    code, out = await steward(
        server, "--env", "staging", "run", "helpdesk", "hello", "--id", workflow_id
    )
    assert code == 0 and f"started {workflow_id}" in out, out
    assert f"/namespaces/{STAGING}/workflows/{workflow_id}" in out or "UI" not in out
    described = await staging.get_workflow_handle(workflow_id).describe()
    assert described.id == workflow_id
    with pytest.raises(RPCError) as missing:
        await default.get_workflow_handle(workflow_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND

    # No worker serves staging here: stop the run so `status` need not query it.
    await staging.get_workflow_handle(workflow_id).terminate("test done")
    code, out = await steward(server, "status", workflow_id, STEWARD_ENV="staging")
    assert code == 0 and f"{workflow_id}: terminated" in out, out
    code, out = await steward(server, "status", workflow_id)
    assert code == 2 and "not found" in out.lower(), out

    code, out = await steward(server, "pending", STEWARD_ENV="qa")
    assert code == 2 and "unknown environment 'qa'" in out, out
