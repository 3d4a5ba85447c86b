"""`steward models`: tiers in order, cheap reachability checks, and real probes over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import activities.local_model as local_model
from activities.llm import PROVIDER_LOCAL
from steward.cli import app
from steward.cli import models as models_cli
from tests.support.openai_stub import OpenAIStub, running_stub

REPO = Path(__file__).resolve().parent.parent
CANARY = "sk-canary-cli-4d2f8a6b"
KEY_ENV = "STEWARD_TEST_CLI_MODEL_KEY"
UNSET_ENV = "STEWARD_TEST_CLI_UNSET_KEY"
runner = CliRunner()


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with running_stub() as server:
        yield server


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(path: Path, tiers: dict[str, list[dict[str, Any]]]) -> str:
    path.write_text(yaml.safe_dump({"tiers": tiers}, sort_keys=False))
    return str(path)


def models(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["models", *args], env={UNSET_ENV: None, **(env or {})})
    return result.exit_code, result.output


def test_lists_tiers_in_config_order_with_cheap_checks(stub: OpenAIStub, tmp_path: Path) -> None:
    dead = closed_port()
    config = write_config(
        tmp_path / "steward.yaml",
        {
            # Deliberately not alphabetical: the config's order is cheapest to strongest.
            "fast": [{"model": "steward-local/smollm2"}],
            "strong": [
                {"model": "openai/gpt-4o-mini", "api_base": stub.base_url, "api_key_env": KEY_ENV},
                {"model": "openai/qwen2.5", "api_base": f"http://127.0.0.1:{dead}/v1"},
            ],
            "best": [
                {"model": "anthropic/claude-sonnet-4", "api_key_env": UNSET_ENV},
                {"model": "openai/gpt-4o", "api_key_env": KEY_ENV},
                {"model": "openai/gpt-4o"},
                {"model": "openai/x", "api_base": f"http://user:hunter2@127.0.0.1:{stub.port}/v1"},
            ],
        },
    )

    code, output = models("--config", config, env={KEY_ENV: CANARY})

    assert code == 1, output  # a deployment is unreachable
    lines = output.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == ["fast", "strong", "best"]
    expected = [
        ("steward-local/smollm2", "ok: weights present"),
        (f"openai/gpt-4o-mini  api_base={stub.base_url}  key from ${KEY_ENV}", "ok: 127.0.0.1:"),
        ("openai/qwen2.5", f"unreachable: cannot connect to 127.0.0.1:{dead}"),
        ("anthropic/claude-sonnet-4", f"unreachable: ${UNSET_ENV} is not set"),
        (f"openai/gpt-4o  key from ${KEY_ENV}", f"ok: ${KEY_ENV} is set"),
        ("openai/gpt-4o", "unknown: no api_base or key to check"),
        (f"api_base=http://127.0.0.1:{stub.port}/v1", "ok: 127.0.0.1:"),
    ]
    deployments = [line for line in lines if line.startswith("  ") and line.strip()[0].isdigit()]
    checks = [line.strip() for line in lines if line.startswith("       ")]
    assert len(deployments) == len(checks) == len(expected)
    for deployment, check, (described, found) in zip(deployments, checks, expected, strict=True):
        assert described in deployment
        assert check.startswith(found), check
    assert CANARY not in output
    assert "hunter2" not in output
    assert stub.requests == []  # the cheap checks call no model


def test_probe_calls_each_deployment_and_reports_latency_or_the_error(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    dead = closed_port()
    config = write_config(
        tmp_path / "steward.yaml",
        {
            "fast": [
                {"model": "openai/gpt-4o-mini", "api_base": stub.base_url, "api_key_env": KEY_ENV}
            ],
            "strong": [
                {"model": "openai/gpt-4o", "api_base": stub.base_url, "api_key_env": KEY_ENV},
                {"model": "openai/qwen2.5", "api_base": f"http://127.0.0.1:{dead}/v1"},
            ],
        },
    )
    stub.reply("OK", prompt_tokens=9, completion_tokens=1)
    stub.fail("invalid_api_key")

    code, output = models("--config", config, "--probe", env={KEY_ENV: CANARY})

    assert code == 1, output
    checks = [line.strip() for line in output.splitlines() if line.startswith("       ")]
    assert checks[0].startswith("ok: answered in ")
    assert "(9+1 tokens, $0.000002)" in checks[0]  # gpt-4o-mini's price for 9 + 1 tokens
    assert checks[1].startswith("unreachable: ModelAuthError: openai/gpt-4o: ")
    assert checks[2].startswith("unreachable: ModelConnectionError: ")
    assert [sent.body["max_tokens"] for sent in stub.requests] == [5, 5]
    assert {sent.headers["authorization"] for sent in stub.requests} == {f"Bearer {CANARY}"}
    assert CANARY not in output


def test_an_all_reachable_config_exits_zero(stub: OpenAIStub, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "s.yaml", {"fast": [{"model": "openai/m", "api_base": stub.base_url}]}
    )
    stub.reply("OK")
    assert models("--config", config)[0] == 0
    assert models("--config", config, "--probe")[0] == 0


def test_a_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    code, output = models("--config", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "does not exist" in output


def test_litellm_is_not_imported_without_probe(tmp_path: Path) -> None:
    config = write_config(tmp_path / "s.yaml", {"fast": [{"model": "steward-local/smollm2"}]})
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from steward.cli import app\n"
        f"result = CliRunner().invoke(app, ['models', '--config', {config!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('litellm', 'llama_cpp')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_the_local_model_constants_agree_with_the_activity() -> None:
    assert models_cli.LOCAL_PROVIDER == PROVIDER_LOCAL
    assert models_cli.LOCAL_WEIGHTS_PACKAGE == local_model.GGUF_PACKAGE
    assert models_cli.LOCAL_WEIGHTS_FILE == local_model.GGUF_FILENAME


def test_models_explains_itself() -> None:
    result = runner.invoke(app, ["models", "--help"])
    assert result.exit_code == 0
    assert "cheapest first" in result.output
    assert "--probe" in result.output
