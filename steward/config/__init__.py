"""Load steward.yaml into typed settings: model tiers, approvers, tools and agents.

The file holds no secrets: a deployment names the environment variable its key lives in
(`api_key_env`), and only the worker that calls the model reads it; the SMTP server's
credentials are named the same way (`username_env`, `password_env`) and read only by the
privileged worker when it sends. The workers resolve an agent's profile from their own
copy of this file when a run starts (a client's copy never decides what a run may do), and
the profile in force is recorded in history with the digest of the config it came from.

One file describes every environment (dev, staging, prod): `environments` maps each name to
the Temporal namespace it runs in and a partial steward.yaml merged over the rest. Which
environment is in force is the caller's choice (`load_config(environment=...)`); this
package never reads the process environment.

One module per domain: `models` (tiers, deployments, budgets), `approvals` (approver
groups, notices, identity), `tools` (per-tool overrides, SMTP, files, http_get), `mcp`,
`retrieval`, `blobs`, `agents`, `environments`; `file` is the whole file and its checks
across sections, `profiles` turns an agent into the payload a run records, `loading`
reads the file. Everything is importable from here.
"""

from __future__ import annotations

from steward.config.agents import GUARDED_STEPS, AgentConfig
from steward.config.approvals import (
    ApprovalConfig,
    EscalationConfig,
    IdentityConfig,
    NotifyConfig,
)
from steward.config.blobs import BlobConfig, S3BlobConfig
from steward.config.environments import DEFAULT_NAMESPACE, EnvironmentConfig, merge
from steward.config.errors import ConfigError
from steward.config.file import StewardConfig
from steward.config.loading import DEFAULT_CONFIG_PATHS, find_config, load_config
from steward.config.mcp import MCPServerConfig, MCPToolConfig
from steward.config.models import BudgetConfig, Deployment, Sampling, ToolCalling, ToolRouting
from steward.config.retrieval import CollectionConfig, EmbeddingConfig, RetrievalConfig
from steward.config.tools import (
    FilesConfig,
    HttpConfig,
    SmtpConfig,
    ToolConfig,
    is_loopback_host,
)

__all__ = [
    "DEFAULT_CONFIG_PATHS",
    "DEFAULT_NAMESPACE",
    "GUARDED_STEPS",
    "AgentConfig",
    "ApprovalConfig",
    "BlobConfig",
    "BudgetConfig",
    "CollectionConfig",
    "ConfigError",
    "Deployment",
    "EmbeddingConfig",
    "EnvironmentConfig",
    "EscalationConfig",
    "FilesConfig",
    "HttpConfig",
    "IdentityConfig",
    "MCPServerConfig",
    "MCPToolConfig",
    "NotifyConfig",
    "RetrievalConfig",
    "S3BlobConfig",
    "Sampling",
    "SmtpConfig",
    "StewardConfig",
    "ToolCalling",
    "ToolConfig",
    "ToolRouting",
    "find_config",
    "is_loopback_host",
    "load_config",
    "merge",
]
