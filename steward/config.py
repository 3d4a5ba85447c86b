"""Load steward.yaml into typed settings: model tiers, approvers, tools and agents.

The file holds no secrets: a deployment names the environment variable its key lives in
(`api_key_env`), and only the worker that calls the model reads it; the SMTP server's
credentials are named the same way (`username_env`, `password_env`) and read only by the
privileged worker when it sends. The workers resolve an agent's profile from their own
copy of this file when a run starts (a client's copy never decides what a run may do), and
the profile in force is recorded in history with the digest of the config it came from.

One file describes every environment (dev, staging, prod): `environments` maps each name to
the Temporal namespace it runs in and a partial steward.yaml merged over the rest. Which
environment is in force is the caller's choice (`load_config(environment=...)`); this module
never reads the process environment.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from steward.blobs import OFFLOAD_BYTES
from steward.errors import RequestError
from steward.guardrails import Guardrail, JudgeCheck
from steward.models import (
    DEFAULT_CONTEXT_CHARS,
    MAX_RETRY_SECONDS,
    MAX_TURNS,
    MAX_WAIT_SECONDS,
    AgentProfile,
    ApprovalRule,
    Budget,
    ContinueAfter,
    DraftStyle,
    Escalation,
    RiskClass,
    ToolSpec,
)
from steward.questions import ASK_HUMAN
from steward.retrieval import COLLECTION_NAME, SEARCH_DOCS, WORDLLAMA
from steward.signing import SigningKeyError, parse_public_key
from steward.targets import PLAYBOOKS

DEFAULT_CONFIG_PATHS = (Path("steward.yaml"), Path("examples/steward.yaml"))

ASK_HUMAN_SPEC = ToolSpec(
    name=ASK_HUMAN,
    description=(
        "Ask the person who started this run a question and wait for their reply "
        "(question, optional timeout_seconds); use it when the request is unclear."
    ),
    risk=RiskClass.READ,
    side_effects=False,
)
"""ask_human has no activity, so no registry entry: the workflow asks, durably. It only
reads from a human, so it is allowed by default; `tools.ask_human` can still override it.
"""
DEFAULT_NAMESPACE = "default"

GUARDED_STEPS = {"playbook": {"draft"}, "agent": {"answer"}}
"""The steps whose output a guardrail may check: a playbook's draft, an agent's answer."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# Temporal's namespace name rule: letters, digits, '-', '_' and '.', starting with a letter.
_NAMESPACE_NAME = r"^[A-Za-z][A-Za-z0-9._-]{1,254}$"
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class ConfigError(RequestError, ValueError):
    """steward.yaml is missing or wrong; the message names the file and the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


ToolCalling = Literal["native", "schema", "auto"]


class Sampling(_Section):
    """How a deployment samples, where its defaults do not suit (unset: the provider's).

    `repeat_penalty` and `top_k` are llama.cpp's (the local model, llama.cpp and vLLM
    servers); hosted providers refuse them. The local model penalises repeats of free
    text by itself (1.15) and leaves grammar-constrained answers alone (1.0).
    """

    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1, le=1000)


class ToolRouting(_Section):
    """A first turn's tool chosen by similarity, for a model too small to choose one itself.

    SmolLM2-135M answers almost every request in words, tools granted or not (seen: 0 of 4
    tool tasks), and once it has called a tool it calls it again until the turn limit.
    With this set on its deployment, an agent's first turn (the request, no tool called
    yet) is compared with each granted tool's name and description by the embedding
    model; when the nearest tool is at least `min_similarity` alike, the model is asked
    for a call of that tool (it still writes every argument), else it decides as usual.
    Every later turn (after the call, or after an answer that was not valid or failed a
    guardrail) is asked for the answer. Each text the model writes on such a deployment
    (the answer, each string argument) is bounded to `max_text_chars` in the grammar:
    unbounded, it writes until its token limit and the JSON is cut off.
    `repeat_penalty` (llama.cpp's; the local model leaves grammar-constrained answers
    unpenalised) applies to agent turns: at 1.0 a file's content came out as "Hello, {{{{..."
    to the grammar's length bound, at 1.1 "Hello, World!".
    So on such a deployment an agent makes at most one tool call per request. Policy,
    approval and the argument schema apply to a routed call as to any other.
    """

    min_similarity: float = Field(
        default=0.25,
        gt=0.0,
        le=1.0,
        description="cosine similarity of the request and a tool's description, at least",
    )
    max_text_chars: int = Field(
        default=240,
        ge=20,
        le=100_000,
        description="longest text in a routed turn: the answer, each string argument",
    )
    repeat_penalty: float | None = Field(
        default=None,
        gt=0.0,
        le=2.0,
        description="llama.cpp's repeat penalty for agent turns here, unless `sampling` sets one",
    )


class Deployment(_Section):
    """One litellm deployment: a model name, and for self-hosted endpoints its api_base.

    `tool_calling` says how an agent's tools are offered to it: `native` (the provider's
    function calling), `schema` (a JSON answer constrained by the decision schema: the
    local model, servers without tool calling) or `auto` (native when litellm's model map
    says the model calls functions). `stream: false` is for servers that cannot stream
    what is asked of them (llama-cpp-python streams no automatic tool choice).
    """

    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the key"
    )
    timeout_seconds: float = Field(default=120.0, gt=0)
    tool_calling: ToolCalling = Field(
        default="auto", description="native tool calls, the decision schema, or as litellm says"
    )
    stream: bool = Field(
        default=True,
        description="stream answers (watchers see text as it comes); off for servers that "
        "cannot stream what is asked of them",
    )
    sampling: Sampling = Field(
        default_factory=Sampling, description="penalties and nucleus settings, when set"
    )
    tool_routing: ToolRouting | None = Field(
        default=None,
        description="choose a first turn's tool by similarity (a model too small to)",
    )


class EscalationConfig(_Section):
    """The group asked when the first one lets the deadline pass."""

    group: str
    timeout_seconds: float = Field(default=3600.0, gt=0, le=MAX_WAIT_SECONDS)


class ApprovalConfig(_Section):
    """Which approver group must approve, how many of them, within how long, then what."""

    group: str
    timeout_seconds: float = Field(default=3600.0, gt=0, le=MAX_WAIT_SECONDS)
    required: int = Field(default=1, ge=1)
    escalate: EscalationConfig | None = None
    signed: bool = Field(
        default=False, description="decisions must be signed with the approver's own key"
    )


class ToolConfig(_Section):
    """Per-tool policy settings that override the registry's defaults."""

    risk: RiskClass | None = None
    privileged: bool | None = None
    decision: Literal["allow", "approve", "deny"] | None = None
    approval: ApprovalConfig | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600)
    retry_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_RETRY_SECONDS,
        description="how long a failing call is retried before it fails for good",
    )
    max_calls_per_run: int | None = Field(default=None, ge=1)
    guardrails: dict[str, Guardrail] = Field(
        default_factory=dict, description="argument -> checks its text must pass"
    )


class BudgetConfig(_Section):
    """Per-run limits on model use; `approve` asks the group to extend instead of stopping."""

    max_cost_usd: float | None = Field(default=None, gt=0, le=1e9)
    max_tokens: int | None = Field(default=None, gt=0, le=10**15)
    max_model_calls: int | None = Field(default=None, gt=0, le=10**9)
    on_exceed: Literal["stop", "approve"] = "stop"
    approval: ApprovalConfig | None = None

    @model_validator(mode="after")
    def _approval_when_approving(self) -> BudgetConfig:
        if self.on_exceed == "approve" and self.approval is None:
            raise ValueError("on_exceed: approve needs approval: {group: ...}")
        return self


class AgentConfig(_Section):
    """A playbook (steps in code) or an agent (the model picks tools)."""

    kind: Literal["playbook", "agent"]
    description: str = ""
    instructions: str = ""
    tools: list[str] = Field(default_factory=list)
    collections: list[str] = Field(
        default_factory=list, description="retrieval collections this agent may search"
    )
    tiers: dict[str, str] = Field(default_factory=dict)
    model_tiers: list[str] = Field(
        default_factory=list,
        description="the model tiers this agent may use (none listed: every tier)",
    )
    max_turns: int = Field(default=8, ge=1, le=MAX_TURNS)
    context_chars: int = Field(
        default=DEFAULT_CONTEXT_CHARS,
        ge=1_000,
        le=10_000_000,
        description="most characters of conversation sent to the model each turn",
    )
    continue_after: ContinueAfter = Field(
        default_factory=lambda: ContinueAfter(),
        description="events/bytes of history after which a long agent run continues as new",
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    specialists: list[str] = Field(
        default_factory=list,
        description="other agents this one may hand work to, each as a child workflow",
    )
    max_parallel: int = Field(
        default=2, ge=1, le=16, description="how many specialists one handoff runs at once"
    )
    guardrails: dict[str, Guardrail] = Field(
        default_factory=dict, description="playbook step (e.g. draft) -> checks of its output"
    )
    input_guardrails: Guardrail | None = Field(
        default=None, description="checks on each run's input"
    )
    draft: DraftStyle = Field(
        default="write",
        description="a playbook's reply: written by the model (write), or composed from "
        "an opening, handbook sentences and a next step the model chooses (compose)",
    )


class NotifyConfig(_Section):
    """How approvers hear of requests: email (the outbox by default), optionally a webhook."""

    contacts: dict[str, str] = Field(
        default_factory=dict, description="approver name -> email address"
    )
    webhook_url_env: str | None = Field(
        default=None, description="environment variable holding the webhook URL (may carry a token)"
    )
    ui_url: str | None = Field(
        default=None,
        description="the Temporal UI's address, for links in notices (default: the embedded "
        "server's UI when it is the one in use)",
    )


def is_loopback_host(host: str) -> bool:
    """Whether `host` is literally this machine (localhost, 127.0.0.0/8, ::1); no DNS."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SmtpConfig(_Section):
    """The SMTP server send_email delivers through; without it, mail goes to the outbox.

    Credentials are named, never given: `username_env` and `password_env` are the names of
    environment variables that only the privileged worker reads, at the moment it sends.
    """

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(default=True, description="upgrade the connection with STARTTLS")
    username_env: str | None = Field(
        default=None, description="environment variable holding the SMTP user name"
    )
    password_env: str | None = Field(
        default=None, description="environment variable holding the SMTP password"
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="limit on each network operation"
    )

    @field_validator("username_env", "password_env")
    @classmethod
    def _names_a_variable(cls, value: str | None) -> str | None:
        # The message never repeats the value: it may be the secret itself, pasted here.
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "expected the NAME of an environment variable (letters, digits, _), "
                "e.g. SMTP_PASSWORD; the secret itself belongs in the worker's environment"
            )
        return value

    @model_validator(mode="after")
    def _credentials_travel_safely(self) -> SmtpConfig:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together: set both or neither")
        if self.username_env and not self.starttls and not is_loopback_host(self.host):
            raise ValueError(
                "credentials without starttls would cross the network in clear text: "
                "set starttls: true (plain login is only allowed to a server on loopback)"
            )
        return self


class FilesConfig(_Section):
    """Where write_file (the workspace) and publish_file (the published directory) write."""

    workspace: str = Field(default=".steward/workspace", min_length=1)
    published: str = Field(default=".steward/published", min_length=1)
    max_bytes: int = Field(
        default=1_000_000,
        gt=0,
        le=1_000_000,
        description="largest file a tool may write; its content travels in history",
    )

    @model_validator(mode="after")
    def _apart(self) -> FilesConfig:
        # write_file needs less approval than publish_file; if one directory held the
        # other, a write could land in the published directory and skip that approval.
        workspace, published = Path(self.workspace).resolve(), Path(self.published).resolve()
        if workspace.is_relative_to(published) or published.is_relative_to(workspace):
            raise ValueError(
                "workspace and published must be separate directories, neither inside the other"
            )
        return self


class HttpConfig(_Section):
    """What http_get may fetch: hosts on the allow list (any port), up to max_bytes."""

    allow_hosts: list[str] = Field(
        default_factory=list, description="host names or IP addresses; none means no fetching"
    )
    max_bytes: int = Field(
        default=100_000,
        gt=0,
        le=1_000_000,
        description="bytes of a body read at most; the rest is not fetched",
    )
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)

    @field_validator("allow_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        normalised = []
        for index, raw in enumerate(hosts):
            host = raw.strip().lower()
            where = f"[{index}] {raw!r}"
            if "://" in host or "/" in host:
                raise ValueError(f"{where}: give a host name like example.com, not a URL")
            if "*" in host:
                raise ValueError(f"{where}: wildcards are not supported; list each host")
            try:
                normalised.append(str(ipaddress.ip_address(host.strip("[]"))))
                continue
            except ValueError:
                pass  # not an IP address: it must be a host name
            if ":" in host:
                raise ValueError(
                    f"{where}: give the host without a port "
                    "(every port of a listed host is allowed)"
                )
            if not _HOST_NAME.fullmatch(host):
                raise ValueError(f"{where}: not a host name")
            normalised.append(host)
        return normalised


class MCPToolConfig(_Section):
    """One MCP tool an agent may be granted, with the policy settings it runs under.

    MCP servers do not say how risky their tools are, so steward.yaml must: a tool not
    listed here is never shown to a model.
    """

    risk: RiskClass
    description: str = Field(default="", description="overrides the server's description")
    privileged: bool = False
    decision: Literal["allow", "approve", "deny"] | None = None
    approval: ApprovalConfig | None = None
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    retry_seconds: float = Field(default=60.0, gt=0, le=MAX_RETRY_SECONDS)
    max_calls_per_run: int | None = Field(default=None, ge=1)
    guardrails: dict[str, Guardrail] = Field(
        default_factory=dict, description="argument -> checks its text must pass"
    )


class MCPServerConfig(_Section):
    """An MCP server: a command speaking stdio, or a streamable HTTP URL."""

    command: list[str] = Field(default_factory=list)
    url: str | None = None
    env: dict[str, str] = Field(
        default_factory=dict,
        description="variable for the server -> name of the worker variable holding its value",
    )
    tools: dict[str, MCPToolConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either command (stdio) or url (streamable HTTP), not both")
        return self


class EmbeddingConfig(_Section):
    """The embedding model: the offline default, or a litellm model name with its dimension."""

    model: str = Field(default=WORDLLAMA, min_length=1)
    dimension: int | None = Field(default=None, gt=0, le=65536)
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the key"
    )

    @model_validator(mode="after")
    def _dimension_known(self) -> EmbeddingConfig:
        if self.model != WORDLLAMA and self.dimension is None:
            raise ValueError(f"dimension: required for {self.model!r} (e.g. 1536)")
        return self


class CollectionConfig(_Section):
    """A retrieval collection: what it holds and, optionally, the folder it is ingested from."""

    description: str = ""
    path: str | None = Field(default=None, description="default folder for `steward ingest`")


class RetrievalConfig(_Section):
    """Where vectors live (embedded Qdrant, or the server in `url_env`), how text is cut."""

    store: str = Field(
        default=".steward/qdrant", min_length=1, description="embedded Qdrant's directory"
    )
    url_env: str = Field(
        default="QDRANT_URL", description="variable that, when set, names a Qdrant server"
    )
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    chunk_tokens: int = Field(default=200, ge=32, le=2000)
    max_file_bytes: int = Field(default=20_000_000, gt=0, le=500_000_000)
    collections: dict[str, CollectionConfig] = Field(default_factory=dict)

    @field_validator("collections")
    @classmethod
    def _names(cls, value: dict[str, CollectionConfig]) -> dict[str, CollectionConfig]:
        for name in value:
            if not re.fullmatch(COLLECTION_NAME, name):
                raise ValueError(f"{name!r}: use lower-case letters, digits, - and _")
        return value


class S3BlobConfig(_Section):
    """An S3-compatible bucket for blobs. Credentials come from the workers' environment
    (the AWS variables or files boto3 reads), never from this file.
    """

    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="steward/blobs/", description="key prefix inside the bucket")
    endpoint_url: str | None = Field(
        default=None, description="for a store other than AWS (MinIO, Ceph, R2...)"
    )
    region: str | None = None


class BlobConfig(_Section):
    """Where large text lives instead of history, and from what size."""

    path: str = Field(
        default=".steward/blobs", min_length=1, description="local directory (the default)"
    )
    threshold_bytes: int | None = Field(
        default=OFFLOAD_BYTES,
        ge=1024,
        le=1_000_000,
        description="text over this many bytes is stored by content address; null: never",
    )
    s3: S3BlobConfig | None = Field(default=None, description="store blobs here instead of path")


class EnvironmentConfig(_Section):
    """One environment: the Temporal namespace it runs in and what differs there.

    `overrides` is a partial steward.yaml deep-merged over the rest of the file: mappings
    merge key by key, anything else (lists, numbers, strings, null) replaces.
    """

    namespace: str = Field(pattern=_NAMESPACE_NAME, description="Temporal namespace")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="partial steward.yaml merged over the rest"
    )

    @field_validator("overrides")
    @classmethod
    def _not_nested(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "environments" in value:
            raise ValueError("environments cannot be overridden per environment")
        return value


class IdentityConfig(_Section):
    """Who people are, and which of their acts must be signed to count.

    Names in steward.yaml (approvers, requesters) are claims unless signed: with a public
    key listed here, a person's signature proves a decision or a start is theirs. Keys are
    Ed25519; the private half never leaves the person's machine.
    """

    public_keys: dict[str, str] = Field(
        default_factory=dict, description="person -> public key, ed25519:BASE64"
    )
    signed_approvals: list[RiskClass] = Field(
        default_factory=list,
        description="approvals of tools of these risk classes must be signed (prod: all risky)",
    )
    signed_start: bool = Field(
        default=False, description="a run starts only with a start signed by its requester"
    )

    @field_validator("public_keys")
    @classmethod
    def _keys_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for person, key in value.items():
            try:
                parse_public_key(key)
            except SigningKeyError as err:
                raise ValueError(f"{person}: {err}") from None
        return value


class StewardConfig(_Section):
    """The whole of steward.yaml. Tiers are listed from cheapest to strongest."""

    tiers: dict[str, list[Deployment]] = Field(min_length=1)
    approvers: dict[str, list[str]] = Field(default_factory=dict)
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    outbox: str = Field(default=".steward/outbox", description="directory of delivered .eml files")
    sender: str = Field(default="support@steward.local", description="From: of sent email")
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    smtp: SmtpConfig | None = Field(
        default=None, description="send_email goes through this server; else to the outbox"
    )
    files: FilesConfig = Field(default_factory=FilesConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    mcp_servers: dict[str, MCPServerConfig] = Field(default_factory=dict)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    blobs: BlobConfig = Field(default_factory=BlobConfig)
    environments: dict[str, EnvironmentConfig] = Field(
        default_factory=dict, description="environment name -> namespace and overrides"
    )
    _environment: str | None = PrivateAttr(default=None)

    @property
    def environment(self) -> str | None:
        """The environment whose overrides are merged in, or None for the file as written."""
        return self._environment

    @property
    def namespace(self) -> str:
        """The Temporal namespace this config runs in: its environment's, else "default"."""
        if self._environment is None:
            return DEFAULT_NAMESPACE
        return self.environments[self._environment].namespace

    @property
    def namespaces(self) -> list[str]:
        """Every namespace the file names: "default" first, then each environment's."""
        names = [DEFAULT_NAMESPACE]
        for environment in self.environments.values():
            if environment.namespace not in names:
                names.append(environment.namespace)
        return names

    @model_validator(mode="before")
    @classmethod
    def _no_shared_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "approver_keys" in data:
            raise ValueError(
                "approver_keys: shared approval keys are gone (whoever verified could sign); "
                "list each person's public key under identity.public_keys instead "
                "(`steward keys new NAME` makes a key pair and prints the public key)"
            )
        return data

    @field_validator("environments")
    @classmethod
    def _environment_names(
        cls, value: dict[str, EnvironmentConfig]
    ) -> dict[str, EnvironmentConfig]:
        for name in value:
            if not _ENVIRONMENT_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: use letters, digits, - and _")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> StewardConfig:
        for tier, deployments in self.tiers.items():
            if not deployments:
                raise ValueError(f"tiers.{tier}: list at least one deployment")
        for group, members in self.approvers.items():
            if not members:
                raise ValueError(f"approvers.{group}: list at least one approver")
        if self.smtp is not None:
            # A send still talking to the server when Temporal times the attempt out can
            # overlap with the retry; one network operation must end well before that.
            send = self.tools.get("send_email", ToolConfig()).timeout_seconds
            limit = send or ToolSpec.model_fields["timeout_seconds"].default
            if self.smtp.timeout_seconds >= limit:
                raise ValueError(
                    f"smtp.timeout_seconds ({self.smtp.timeout_seconds:g}) must be below "
                    f"send_email's timeout ({limit:g}s; tools.send_email.timeout_seconds)"
                )
        for name, tool in self.tools.items():
            groups = []
            if tool.approval:
                groups.append(("approval.group", tool.approval.group))
                if tool.approval.escalate:
                    groups.append(("approval.escalate.group", tool.approval.escalate.group))
            for field, group in groups:
                if group not in self.approvers:
                    raise ValueError(
                        f"tools.{name}.{field}: no approver group {group!r} "
                        f"(known: {sorted(self.approvers)})"
                    )
        for name, agent in self.agents.items():
            extender = agent.budget.approval.group if agent.budget.approval else None
            if extender is not None and extender not in self.approvers:
                raise ValueError(
                    f"agents.{name}.budget.approval.group: no approver group {extender!r} "
                    f"(known: {sorted(self.approvers)})"
                )
            for collection in agent.collections:
                if collection not in self.retrieval.collections:
                    raise ValueError(
                        f"agents.{name}.collections: unknown collection {collection!r} "
                        f"(known: {sorted(self.retrieval.collections)})"
                    )
            for tier in agent.model_tiers:
                if tier not in self.tiers:
                    raise ValueError(
                        f"agents.{name}.model_tiers: unknown tier {tier!r} "
                        f"(known: {sorted(self.tiers)})"
                    )
            for role, tier in agent.tiers.items():
                if tier not in self.tiers:
                    raise ValueError(
                        f"agents.{name}.tiers.{role}: unknown tier {tier!r} "
                        f"(known: {sorted(self.tiers)})"
                    )
                if agent.model_tiers and tier not in agent.model_tiers:
                    raise ValueError(
                        f"agents.{name}.tiers.{role}: tier {tier!r} is not among the "
                        f"agent's model_tiers {agent.model_tiers}"
                    )
        self._specialists_resolve()
        self._guardrails_resolve()
        return self

    def _guardrails_resolve(self) -> None:
        """Guardrails guard steps that exist, and their judges use configured tiers."""
        placed: list[tuple[str, Guardrail]] = []
        for name, tool in self.tools.items():
            placed += [(f"tools.{name}.guardrails.{arg}", g) for arg, g in tool.guardrails.items()]
        for server, listed in self.mcp_servers.items():
            for name, mcp_tool in listed.tools.items():
                where = f"mcp_servers.{server}.tools.{name}.guardrails"
                placed += [(f"{where}.{arg}", g) for arg, g in mcp_tool.guardrails.items()]
        for name, agent in self.agents.items():
            steps = GUARDED_STEPS[agent.kind]
            if agent.draft != "write" and agent.kind != "playbook":
                raise ValueError(
                    f"agents.{name}.draft: only a playbook drafts a reply; an agent answers "
                    "in its own words"
                )
            for step, guardrail in agent.guardrails.items():
                if step not in steps:
                    raise ValueError(
                        f"agents.{name}.guardrails.{step}: a {agent.kind} has no step {step!r} "
                        f"to guard (steps: {', '.join(sorted(steps))})"
                    )
                placed.append((f"agents.{name}.guardrails.{step}", guardrail))
            if agent.input_guardrails is not None:
                placed.append((f"agents.{name}.input_guardrails", agent.input_guardrails))
        for where, guardrail in placed:
            for check in guardrail.checks:
                if isinstance(check, JudgeCheck) and check.tier not in self.tiers:
                    raise ValueError(
                        f"{where}: llm_judge tier {check.tier!r} is not a tier "
                        f"(tiers: {sorted(self.tiers)})"
                    )

    def _specialists_resolve(self) -> None:
        """Every specialist is another agent, and no chain of handoffs leads back."""
        for name, agent in self.agents.items():
            if agent.specialists and agent.kind != "agent":
                raise ValueError(
                    f"agents.{name}.specialists: only agents hand off; {name!r} is a playbook"
                )
            for specialist in agent.specialists:
                where = f"agents.{name}.specialists"
                if specialist == name:
                    raise ValueError(f"{where}: {name!r} cannot be its own specialist")
                other = self.agents.get(specialist)
                if other is None:
                    agents = sorted(a for a, c in self.agents.items() if c.kind == "agent")
                    raise ValueError(f"{where}: unknown agent {specialist!r} (agents: {agents})")
                if other.kind != "agent":
                    raise ValueError(
                        f"{where}: {specialist!r} is a playbook; a specialist must be an agent"
                    )
        for name in self.agents:
            cycle = self._handoff_cycle(name, [name])
            if cycle is not None:
                raise ValueError(
                    f"agents.{name}.specialists: handoffs go round in a cycle "
                    f"({' -> '.join(cycle)})"
                )

    def _handoff_cycle(self, name: str, path: list[str]) -> list[str] | None:
        for specialist in self.agents[name].specialists:
            if specialist in path:
                return [*path, specialist]
            found = self._handoff_cycle(specialist, [*path, specialist])
            if found is not None:
                return found
        return None

    def profile(self, name: str, registry: Mapping[str, ToolSpec]) -> AgentProfile:
        """Resolve an agent's profile: its tools as full specs, approver groups expanded."""
        agent = self.agents.get(name)
        if agent is None:
            known = ", ".join(sorted(self.agents)) or "none"
            raise ConfigError(f"unknown playbook or agent {name!r} (configured: {known})")
        return AgentProfile(
            name=name,
            kind=agent.kind,
            description=agent.description,
            instructions=agent.instructions,
            tools=[
                self._mcp_spec(name, tool) if "." in tool else self._tool_spec(name, tool, registry)
                for tool in agent.tools
            ],
            tiers=agent.tiers,
            collections=agent.collections,
            max_turns=agent.max_turns,
            context_chars=agent.context_chars,
            continue_after=agent.continue_after,
            # Routing picks only among the tiers granted, cheapest to strongest as listed.
            tier_order=[t for t in self.tiers if not agent.model_tiers or t in agent.model_tiers],
            deployments={
                tier: [d.model for d in ds]
                for tier, ds in self.tiers.items()
                if not agent.model_tiers or tier in agent.model_tiers
            },
            budget=self._budget(agent.budget),
            # Resolved now, so each specialist's grants are fixed when the parent starts.
            specialists=[self.profile(specialist, registry) for specialist in agent.specialists],
            max_parallel=agent.max_parallel,
            guardrails=agent.guardrails,
            input_guardrail=agent.input_guardrails,
            draft=agent.draft,
        )

    def _mcp_spec(self, agent: str, tool: str) -> ToolSpec:
        server, _, name = tool.partition(".")
        listed = self.mcp_servers.get(server)
        settings = listed.tools.get(name) if listed is not None else None
        if settings is None:
            known = [f"{s}.{t}" for s, c in self.mcp_servers.items() for t in c.tools]
            raise ConfigError(
                f"agents.{agent}.tools: {tool!r} is not an MCP tool listed under mcp_servers "
                f"(listed: {', '.join(sorted(known)) or 'none'})"
            )
        where = f"mcp_servers.{server}.tools.{name}.approval"
        return ToolSpec(
            name=tool,
            description=settings.description,
            risk=settings.risk,
            scopes=[f"mcp:{server}"],
            privileged=settings.privileged,
            decision=settings.decision,
            approval=self._rule(settings.approval, where, settings.risk)
            if settings.approval
            else None,
            timeout_seconds=settings.timeout_seconds,
            retry_seconds=settings.retry_seconds,
            max_calls_per_run=settings.max_calls_per_run,
            mcp_server=server,
            guardrails=settings.guardrails,
        )

    def _rule(
        self, approval: ApprovalConfig, where: str, risk: RiskClass | None = None
    ) -> ApprovalRule:
        for group in (approval.group, approval.escalate.group if approval.escalate else None):
            if group is not None and group not in self.approvers:
                raise ConfigError(
                    f"{where}: no approver group {group!r} (known: {sorted(self.approvers)})"
                )
        signed = approval.signed or (risk is not None and risk in self.identity.signed_approvals)
        if signed:
            groups = [approval.group, *([approval.escalate.group] if approval.escalate else [])]
            unkeyed = [
                person
                for group in groups
                for person in self.approvers[group]
                if person not in self.identity.public_keys
            ]
            if unkeyed:
                raise ConfigError(
                    f"{where}: decisions must be signed, but {', '.join(sorted(set(unkeyed)))} "
                    "has no key in identity.public_keys (`steward keys new NAME`)"
                )
        escalation = None
        if approval.escalate is not None:
            escalation = Escalation(
                approvers=self.approvers[approval.escalate.group],
                timeout_seconds=approval.escalate.timeout_seconds,
            )
        try:
            return ApprovalRule(
                approvers=self.approvers[approval.group],
                timeout_seconds=approval.timeout_seconds,
                required=approval.required,
                escalation=escalation,
                signed=signed,
            )
        except ValidationError as err:
            raise ConfigError(f"{where}: {err.errors()[0]['msg']}") from None

    def _budget(self, budget: BudgetConfig) -> Budget:
        approval = None
        if budget.approval is not None:
            approval = self._rule(budget.approval, "budget.approval")
        return Budget(
            max_cost_usd=budget.max_cost_usd,
            max_tokens=budget.max_tokens,
            max_model_calls=budget.max_model_calls,
            on_exceed=budget.on_exceed,
            approval=approval,
        )

    def _tool_spec(self, agent: str, tool: str, registry: Mapping[str, ToolSpec]) -> ToolSpec:
        base = registry.get(tool) or (ASK_HUMAN_SPEC if tool == ASK_HUMAN else None)
        if base is None:
            raise ConfigError(
                f"agents.{agent}.tools: unknown tool {tool!r} "
                f"(available: {sorted([*registry, ASK_HUMAN])})"
            )
        override = self.tools.get(tool, ToolConfig())
        if tool == SEARCH_DOCS:
            granted = self.agents[agent].collections
            if not granted:
                raise ConfigError(
                    f"agents.{agent}.tools: search_docs needs collections granted "
                    f"(agents.{agent}.collections)"
                )
            # The model learns which collections it may name from the tool's description.
            base = base.model_copy(
                update={"description": f"{base.description} collection: one of {granted}."}
            )
        approval = base.approval
        if override.approval is not None:
            approval = self._rule(
                override.approval, f"tools.{tool}.approval", override.risk or base.risk
            )
        return base.model_copy(
            update={
                "risk": override.risk or base.risk,
                "privileged": base.privileged
                if override.privileged is None
                else override.privileged,
                "decision": override.decision or base.decision,
                "approval": approval,
                "timeout_seconds": override.timeout_seconds or base.timeout_seconds,
                "retry_seconds": override.retry_seconds or base.retry_seconds,
                "guardrails": override.guardrails or base.guardrails,
                "max_calls_per_run": override.max_calls_per_run or base.max_calls_per_run,
            }
        )

    def digest(self) -> str:
        """SHA-256 (first 16 hex) of this config as resolved, environment merged in.

        Recorded with every run's profile, so a run shows which config decided it.
        """
        canonical = json.dumps(
            {"environment": self._environment, "config": self.model_dump(mode="json")},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def public_keys_for(self, profile: AgentProfile) -> dict[str, str]:
        """The public keys of everyone who may decide one of this profile's approvals."""
        rules = [tool.approval for tool in profile.tools if tool.approval is not None]
        if profile.budget.approval is not None:
            rules.append(profile.budget.approval)
        people = {
            person
            for rule in rules
            for person in [
                *rule.approvers,
                *(rule.escalation.approvers if rule.escalation else []),
            ]
        }
        keys = self.identity.public_keys
        return {person: keys[person] for person in sorted(people) if person in keys}

    def check_agents(self, registry: Mapping[str, ToolSpec]) -> None:
        """Resolve every agent once, so a worker refuses to start with a config that
        grants an unknown tool or names a key that is missing (ConfigError naming it).

        Settings under `tools:` must name a tool too: a misspelt name would otherwise be
        ignored, and the real tool would run on its defaults (a laxer approval, say).
        """
        known = sorted([*registry, ASK_HUMAN])
        for tool in self.tools:
            if tool not in known:
                raise ConfigError(
                    f"tools.{tool}: no tool of that name (tools: {', '.join(known)}; "
                    "MCP tools are set under mcp_servers.SERVER.tools)"
                )
        for name, agent in self.agents.items():
            if agent.kind == "playbook" and name not in PLAYBOOKS:
                raise ConfigError(
                    f"agents.{name}: kind playbook, but no playbook of that name exists in "
                    f"code (playbooks: {', '.join(PLAYBOOKS)}); did you mean kind: agent?"
                )
            self.profile(name, registry)


def find_config(explicit: str | Path | None = None) -> Path:
    """The config file to use: the one given, else ./steward.yaml, else the example."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    raise ConfigError("no steward.yaml here (nor examples/steward.yaml); pass --config FILE")


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` over `base`: mappings merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None, environment: str | None = None) -> StewardConfig:
    """Read and validate steward.yaml; errors name the file and the offending field.

    With `environment`, that environment's overrides are merged in and the result runs in
    its namespace. Every declared environment is checked either way, so a change that
    breaks prod's overrides fails in dev too.
    """
    source = find_config(path)
    raw = _read(source)
    base = _validate(source, raw)
    selected = None
    for name, declared in base.environments.items():
        merged = _validate(source, merge(raw, declared.overrides), environment=name)
        if name == environment:
            selected = merged
    if environment is None:
        return base
    if selected is None:
        known = ", ".join(sorted(base.environments)) or "none"
        raise ConfigError(
            f"{source}: unknown environment {environment!r} (declared under environments: {known})"
        )
    selected._environment = environment
    return selected


def _read(source: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(err)}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{source}: not UTF-8 text (byte {err.start})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return raw


def _yaml_problem(err: yaml.YAMLError) -> str:
    """The parser's complaint on one line, with where it is (its own text spans lines)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {err.problem or err.context}"
    return " ".join(str(err).split())


def _validate(source: Path, raw: dict[str, Any], environment: str | None = None) -> StewardConfig:
    try:
        return StewardConfig.model_validate(raw)
    except ValidationError as err:
        if environment is None:
            located = (": ".join(_located(problem)) for problem in err.errors())
            raise ConfigError(f"{source}: {'; '.join(located)}") from None
        raise ConfigError(f"{source}: {_override_problems(err, raw, environment)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None


def _override_problems(err: ValidationError, raw: dict[str, Any], environment: str) -> str:
    """Problems of a merged config, named under the environment's overrides when they are.

    A problem in a field the overrides set is `environments.NAME.overrides.FIELD`; one the
    merge caused elsewhere (a cross-reference, a field the overrides left alone) says it
    arose with that environment's overrides.
    """
    overrides = raw["environments"][environment].get("overrides") or {}
    prefix = f"environments.{environment}.overrides"
    named = []
    for problem in err.errors():
        where, message = _located(problem)
        if where.split(".")[0] in overrides:
            named.append(f"{prefix}.{where}: {message}")
        else:
            named.append(f"{prefix} (merged): {where}: {message}")
    return "; ".join(named)


def _located(problem: ErrorDetails) -> tuple[str, str]:
    """Where a problem is (dotted) and what it is.

    The checks across sections fail at the top of the file and name their field at the
    start of the message (`agents.x.collections: unknown collection ...`): that is where.
    """
    where, message = ".".join(str(part) for part in problem["loc"]), problem["msg"]
    if not where:
        message = message.removeprefix("Value error, ")
        field, _, rest = message.partition(": ")
        if rest and " " not in field:
            where, message = field, rest
    return where or "(top)", message
