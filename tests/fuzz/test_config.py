"""steward.yaml under arbitrary and mutated documents: it loads, or ConfigError names the key.

The CLI and the workers read the file at start, so anything else escaping `load_config`
is a traceback instead of a message. A config that loads must also resolve every agent's
profile or refuse with ConfigError: that profile is the input of every run.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st

from steward.config import ConfigError, StewardConfig, load_config
from steward.signing import new_private_key, public_text
from steward.tools import default_specs
from tests.fuzz import examples
from tests.fuzz.strategies import EXAMPLE_CONFIG, json_values, long_texts, mutated

EXAMPLE = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def _everything() -> dict[str, Any]:
    """The example with every optional section filled in, so mutations reach them too."""
    document: dict[str, Any] = copy.deepcopy(EXAMPLE)
    document["approvers"]["managers"] = ["maria", "alice"]
    document["identity"] = {
        "public_keys": {
            "alice": public_text(new_private_key()),
            "demo-approver": public_text(new_private_key()),
        },
        "signed_approvals": ["publish"],
    }
    document["tools"]["send_email"]["approval"]["escalate"] = {
        "group": "managers",
        "timeout_seconds": 600,
    }
    document["tools"]["publish_file"]["approval"]["signed"] = True
    document["tools"]["http_get"] = {"max_calls_per_run": 3, "timeout_seconds": 20}
    document["notify"] = {"contacts": {"alice": "alice@example.com"}, "webhook_url_env": "HOOK"}
    document["smtp"] = {
        "host": "smtp.example.com",
        "port": 587,
        "username_env": "SMTP_USERNAME",
        "password_env": "SMTP_PASSWORD",
        "timeout_seconds": 10,
    }
    document["mcp_servers"] = {
        "notes": {
            "command": ["python", "-m", "notes_server"],
            "env": {"NOTES_TOKEN": "NOTES_TOKEN"},
            "tools": {
                "add_note": {"risk": "write", "approval": {"group": "support-leads"}},
                "list_notes": {"risk": "read"},
            },
        }
    }
    document["agents"]["helpdesk"]["tools"].append("notes.add_note")
    document["agents"]["helpdesk"]["budget"] = {
        "max_cost_usd": 0.5,
        "max_tokens": 20_000,
        "on_exceed": "approve",
        "approval": {"group": "support-leads", "timeout_seconds": 3600},
    }
    return document


EVERYTHING = _everything()
BASES = st.sampled_from([EXAMPLE, EVERYTHING])

YAML_SNIPPETS = (
    "",
    "~",
    "[]",
    "- tiers",
    "tiers:",
    "tiers: {fast: []}",
    "tiers: {fast: [{model: x}]}\ntiers: {fast: [{model: y}]}",  # a duplicate key
    "tiers: &t {fast: [{model: x}]}\napprovers: *t",
    "? [a, b]\n: c",  # an unhashable key
    "tiers: !!binary aGVsbG8=",
    "tiers: !!python/object:os.system {}",
    "tiers: {fast: [{model: x, timeout_seconds: .nan}]}",
    "tiers: {fast: [{model: x}]}\nagents: {a: {kind: agent, max_turns: 1e400}}",
    "tiers: {fast: [{model: x}]}\n1: 2",
    'tiers: {fast: [{model: x}]}\nfiles: {workspace: "a\\0b"}',
    "tiers: {fast: [{model: x}]}\nhttp: {allow_hosts: ['[::1', '::1', 'ex ample.com']}",
    "\ufefftiers: {}",
    "tiers:\n\t- a",
    "%YAML 1.1\n---\ntiers: {}\n...\n---\nmore: docs",
    "tiers: 2001-01-01 00:00:00",
    "a: " + "[" * 50 + "]" * 50,
)

yaml_texts = st.one_of(
    st.sampled_from(YAML_SNIPPETS),
    st.text(max_size=200),
    json_values.map(lambda value: yaml.safe_dump(value, allow_unicode=True)),
)


def load(text: str | bytes) -> tuple[StewardConfig | None, str]:
    """Load `text` as a steward.yaml: (config, "") or (None, ConfigError's message)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "steward.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        try:
            return load_config(path), ""
        except ConfigError as err:
            message = str(err)
    assert message.startswith(f"{path}: "), message  # says which file
    return None, message.removeprefix(f"{path}: ")


def assert_names_key(message: str, document: Any) -> None:
    """The first problem is located at a key of the document, or at a known setting."""
    if message.startswith(("not valid YAML:", "expected a mapping at the top level")):
        return
    where, _, what = message.partition(": ")
    assert what.strip(), message
    top = where.split(".")[0]
    if top == "(top)":  # a rule across sections: its message names the key
        top = what.removeprefix("Value error, ").split(":")[0].split(".")[0]
    keys = {str(key) for key in document} if isinstance(document, dict) else set()
    assert top in keys | set(StewardConfig.model_fields), message


def resolve_profiles(config: StewardConfig) -> None:
    """Every agent's profile resolves, or ConfigError says why."""
    for name in config.agents:
        try:
            config.profile(name, default_specs())
        except ConfigError as err:
            assert str(err).strip()


def _empty_approver_group(config: StewardConfig) -> bool:
    return any(not members for members in config.approvers.values())


def test_the_bases_are_valid() -> None:
    for base in (EXAMPLE, EVERYTHING):
        config, message = load(yaml.safe_dump(base))
        assert config is not None, message
        resolve_profiles(config)


@examples(150)
@given(text=yaml_texts)
def test_any_yaml_loads_or_is_refused_naming_the_key(text: str) -> None:
    config, message = load(text)
    if config is None:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError:
            document = None
        assert_names_key(message, document)
    else:
        assume(not _empty_approver_group(config))  # refused at load since
        resolve_profiles(config)


@examples(150)
@given(changed=mutated(BASES, values=json_values | long_texts))
def test_changed_configs_load_or_are_refused_naming_the_key(
    changed: tuple[dict[str, Any], list[Any]],
) -> None:
    document, _ = changed
    config, message = load(yaml.safe_dump(document, allow_unicode=True))
    if config is None:
        assert_names_key(message, document)
    else:
        assume(not _empty_approver_group(config))  # refused at load since
        resolve_profiles(config)


@examples(20)
@given(members=st.just([]))
def test_an_empty_escalation_group_is_refused_as_config(members: list[str]) -> None:
    document = copy.deepcopy(EVERYTHING)
    document["approvers"]["managers"] = members
    config, message = load(yaml.safe_dump(document))
    if config is None:
        assert "managers" in message, message  # refusing it at load is a fix too
    else:
        resolve_profiles(config)


@examples(10)
@given(text=st.sampled_from(["tiers: " + "[" * 5000 + "]" * 5000]))
@example(text="tiers: {fast: [{model: caf\xe9}]}".encode("latin-1"))
def test_unreadable_files_are_refused_as_config(text: str | bytes) -> None:
    config, message = load(text)
    assert config is None and message
