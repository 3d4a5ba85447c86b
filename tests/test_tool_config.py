"""The tools' settings in steward.yaml (smtp, files, http): defaults, clear errors, and which
worker serves each tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from temporalio.activity import _Definition
from temporalio.client import Client
from temporalio.worker import Worker

from steward.config import ConfigError, StewardConfig, load_config
from steward.models import RiskClass
from steward.tools import CATALOGUE, default_specs
from workers.build import build_workers, default_activities

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "steward.yaml"
BASE = "tiers: {fast: [{model: fake/queued}]}\n"


def load(tmp_path: Path, text: str) -> StewardConfig:
    path = tmp_path / "steward.yaml"
    path.write_text(BASE + text)
    return load_config(path)


def test_example_grants_and_specs() -> None:
    config = load_config(EXAMPLE)
    helpdesk = {tool.name: tool for tool in config.profile("helpdesk", default_specs()).tools}
    assert set(helpdesk) == {"send_email", "write_file", "http_get", "search_docs", "ask_human"}
    assert "one of ['handbook']" in helpdesk["search_docs"].description
    assert helpdesk["write_file"].risk == RiskClass.WRITE
    assert helpdesk["write_file"].scopes == ["files:write"]
    assert helpdesk["write_file"].approval is not None  # risk write needs approvers
    assert helpdesk["http_get"].risk == RiskClass.READ and not helpdesk["http_get"].privileged
    # ask_human has no registry entry: config knows it; it only reads from a person
    assert helpdesk["ask_human"].risk == RiskClass.READ and not helpdesk["ask_human"].side_effects
    publish = default_specs()["publish_file"]
    assert publish.risk == RiskClass.PUBLISH and publish.privileged
    assert publish.scopes == ["files:publish"]
    assert config.smtp is None  # the demo writes to the outbox
    assert config.http.allow_hosts == ["example.com"]


def test_defaults_without_the_sections(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.smtp is None
    assert (config.files.workspace, config.files.published) == (
        ".steward/workspace",
        ".steward/published",
    )
    assert config.files.max_bytes == 1_000_000
    assert config.http.allow_hosts == []  # nothing is fetched unless listed


def test_smtp_settings_load(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "smtp: {host: smtp.example.com, username_env: SMTP_USER, password_env: SMTP_PASSWORD}\n"
        "http: {allow_hosts: [Docs.Example.com, '::1']}\n",
    )
    assert config.smtp is not None
    assert (config.smtp.port, config.smtp.starttls) == (587, True)
    assert config.http.allow_hosts == ["docs.example.com", "::1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "smtp: {host: h, username_env: U, password_env: 'hunter2 secret!'}",
            "smtp.password_env: Value error, expected the NAME of an environment variable",
        ),
        ("smtp: {host: h, username_env: U}", "username_env and password_env go together"),
        (
            "smtp: {host: smtp.example.com, starttls: false, username_env: U, password_env: P}",
            "would cross the network in clear text",
        ),
        ("smtp: {host: h, timeout_seconds: 30}", "smtp.timeout_seconds (30) must be below"),
        ("smtp: {host: h, password: x}", "smtp.password: Extra inputs are not permitted"),
        ("smtp: {port: 25}", "smtp.host: Field required"),
        ("http: {allow_hosts: ['https://example.com']}", "not a URL"),
        ("http: {allow_hosts: ['example.com:8080']}", "without a port"),
        ("http: {allow_hosts: ['*.example.com']}", "wildcards are not supported"),
        ("http: {max_bytes: 5000000}", "http.max_bytes"),
        ("files: {workspace: out, published: out/site}", "neither inside the other"),
        ("files: {max_bytes: 0}", "files.max_bytes"),
    ],
)
def test_bad_tool_settings_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"steward\.yaml") as caught:
        load(tmp_path, text + "\n")
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("tool", ["send_emial", "notes.add_note"])
def test_settings_for_a_tool_that_does_not_exist_are_refused(tmp_path: Path, tool: str) -> None:
    # A misspelt name would leave the real tool on its defaults: a laxer approval, say.
    config = load(tmp_path, f"tools: {{{tool}: {{decision: allow}}}}\n")
    with pytest.raises(ConfigError, match=rf"tools\.{tool}: no tool of that name"):
        config.check_agents(default_specs())
    known = load(tmp_path, "tools: {send_email: {decision: deny}, ask_human: {decision: deny}}\n")
    known.check_agents(default_specs())


def test_smtp_timeout_may_grow_with_the_tool_timeout(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "smtp: {host: h, timeout_seconds: 30}\ntools: {send_email: {timeout_seconds: 90}}\n",
    )
    assert config.smtp is not None and config.smtp.timeout_seconds == 30


RETRIEVAL = {
    "scan_documents",
    "ingest_document",
    "discard_document",
    "prune_documents",
    "retrieve",
    "search_docs",
}


MCP = {"describe_mcp_tools", "call_mcp_tool"}


def activity_names(workers: list[Worker]) -> set[str]:
    found: set[str] = set()
    for worker in workers:
        for activity in worker.config()["activities"] or ():
            found.add(_Definition.must_from_callable(activity).name or "")
    return found


async def test_each_tool_is_served_by_the_worker_its_queue_needs(
    client: Client, task_queue: str
) -> None:
    config = load_config(EXAMPLE)
    activities = default_activities(config, allow_paid=False)
    default = build_workers(client, activities, task_queue=task_queue, role="default")
    privileged = build_workers(client, activities, task_queue=task_queue, role="privileged")
    assert activity_names(default) == {"resolve_run", "complete", "write_file", "http_get"} | (
        RETRIEVAL | MCP
    )
    assert activity_names(privileged) == {
        "send_email",
        "notify_approvers",
        "publish_file",
        "call_mcp_tool",
    }


async def test_a_privileged_override_moves_the_tool(
    client: Client, tmp_path: Path, task_queue: str
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["tools"]["http_get"] = {"privileged": True}
    data["tools"]["publish_file"]["privileged"] = False
    path = tmp_path / "steward.yaml"
    path.write_text(yaml.safe_dump(data))
    activities = default_activities(load_config(path), allow_paid=False)
    default = build_workers(client, activities, task_queue=task_queue, role="default")
    privileged = build_workers(client, activities, task_queue=task_queue, role="privileged")
    assert activity_names(default) == {
        "resolve_run",
        "complete",
        "write_file",
        "publish_file",
    } | (RETRIEVAL | MCP)
    assert activity_names(privileged) == {
        "send_email",
        "notify_approvers",
        "http_get",
        "call_mcp_tool",
    }


@pytest.mark.parametrize("tool", ["write_file", "publish_file", "http_get"])
def test_argument_schemas_make_small_grammars_for_the_local_model(tool: str) -> None:
    # The agent's answer grammar is built from these schemas; llama.cpp spells a maxLength
    # out rule by rule, and a long one crashes the worker (send_email's body does today).
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    schema = CATALOGUE[tool].parameters()
    assert "maxLength" not in json.dumps(schema)
    assert len(json_schema_to_gbnf(json.dumps(schema))) < 20_000


def test_an_agent_sees_only_its_granted_model_tiers(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["agents"]["helpdesk"]["model_tiers"] = ["fast"]
    path = tmp_path / "steward.yaml"
    path.write_text(yaml.safe_dump(data))
    profile = load_config(path).profile("helpdesk", default_specs())
    assert profile.tier_order == ["fast"] and list(profile.deployments) == ["fast"]
    # a step routed to a tier outside the grant is refused when the file loads
    data["agents"]["helpdesk"]["tiers"] = {"plan": "strong"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"tiers.plan: tier 'strong' is not among"):
        load_config(path)
    data["agents"]["helpdesk"]["model_tiers"] = ["gold"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"model_tiers: unknown tier 'gold'"):
        load_config(path)
