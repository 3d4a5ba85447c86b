"""Tools: per-tool overrides of the registry's policy defaults, and where the built-in
tools act (the SMTP server, the file directories, the hosts http_get may fetch).

The registry (`activities.tools`) declares each tool's risk and defaults; these settings
change them per deployment. Credentials are named, never given, and only the privileged
worker reads them when it acts.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from steward.bounds import CallsPerRun, RetryWindow, ToolDecision, ToolTimeout
from steward.config.approvals import ApprovalConfig
from steward.guardrails import Guardrail
from steward.models import RiskClass
from steward.strict import Strict

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class ToolConfig(Strict):
    """Per-tool policy settings that override the catalogue's defaults (`steward.tools`)."""

    risk: RiskClass | None = None
    privileged: bool | None = None
    decision: ToolDecision | None = None
    approval: ApprovalConfig | None = None
    timeout_seconds: ToolTimeout | None = None
    retry_seconds: RetryWindow | None = Field(
        default=None, description="how long a failing call is retried before it fails for good"
    )
    max_calls_per_run: CallsPerRun | None = None
    guardrails: dict[str, Guardrail] = Field(
        default_factory=dict, description="argument -> checks its text must pass"
    )


def is_loopback_host(host: str) -> bool:
    """Whether `host` is literally this machine (localhost, 127.0.0.0/8, ::1).

    Only the literal host is judged, never a DNS answer: a name that merely resolves to
    127.0.0.1 today could resolve to a provider tomorrow. SMTP's plain login and the
    model guard (a deployment on this machine is never a paid provider) both ask this.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SmtpConfig(Strict):
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


class FilesConfig(Strict):
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


class HttpConfig(Strict):
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
