"""Build Steward's Temporal workers from a client and a loaded steward.yaml.

Which tool activities a worker registers is derived from the tool catalogue
(`steward.tools`): each tool's activity is the method named after it on the provider
object its entry names. It is registered on exactly one worker: the privileged one when
the tool is privileged (by the catalogue's default or steward.yaml's `privileged:`), the
default one otherwise, matching the queue the workflow sends the call to. A config that
grants a tool the workers being built do not serve stops them from starting: its runs
would otherwise wait for an activity no worker polls for. Every tool
activity is guarded by the worker's own `Authority`: before it acts, the worker checks the
call against its own config. The default worker also serves `resolve_run`, by which every
run learns from the workers' config what it may do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from temporalio.client import Client
from temporalio.worker import Worker

from activities.authority import Authority
from activities.blobs import Offloader, make_offloader
from activities.embeddings import make_embedder
from activities.llm import PROVIDER_LOCAL, LLMActivities
from activities.retrieval import RetrievalActivities, VectorStore
from activities.tools.email import OutboxActivities
from activities.tools.files import FileActivities
from activities.tools.http_get import HttpActivities
from activities.tools.mcp import MCPActivities, MCPConnection
from activities.tools.smtp import SmtpTransport
from steward import devserver, queues
from steward.codec import keyring_from_environment
from steward.config import ConfigError, StewardConfig
from steward.tools import Tool, activity_tools, default_specs, find
from workflows.agent import AgentWorkflow
from workflows.eval import EvalWorkflow
from workflows.ingest import IngestWorkflow
from workflows.support import SupportReplyWorkflow

Role = Literal["default", "privileged", "all"]

WORKFLOWS: Sequence[type] = (SupportReplyWorkflow, AgentWorkflow, IngestWorkflow)
"""What production workers run. EvalWorkflow is not among them: it answers its children's
approvals itself, so only eval workers (whose tools never act) run it."""

ALL_WORKFLOWS: Sequence[type] = (*WORKFLOWS, EvalWorkflow)
"""What eval workers and the replayer know."""


def _privileged_by_default() -> frozenset[str]:
    return frozenset(tool.name for tool in activity_tools() if tool.spec.privileged)


@dataclass
class Activities:
    """The activity objects a worker serves; tests swap in their own.

    `authority` resolves runs and guards every tool, from the worker's own config.
    `outbox`, `files`, `http` and `retrieval` are the providers of Steward's own tools
    (`steward.tools`); `providers` holds those of tools registered from elsewhere, by the
    name their entry gives. `files`, `http` and `retrieval` may be None: a worker built
    without them serves no such tools (and, without retrieval, no ingest or search); a
    config granting one of those tools then refuses to start it. A privileged worker
    needs no `llm`, a default one no `outbox` unless send_email runs on its queue
    (`default_activities` builds each role only what it serves). With `blobs`, every
    tool's large output is stored by content address instead of returned into history.
    """

    llm: Any
    outbox: Any
    authority: Authority
    files: Any = None
    http: Any = None
    mcp: Any = None
    retrieval: Any = None
    evals: Any = None
    blobs: Offloader | None = None
    privileged_tools: frozenset[str] = field(default_factory=_privileged_by_default)
    providers: Mapping[str, Any] = field(default_factory=dict)

    def provider(self, name: str) -> Any:
        """The object that runs the tools of provider `name`, or None if there is none."""
        return getattr(self, name, None) if name in _OWN_PROVIDERS else self.providers.get(name)


_OWN_PROVIDERS = frozenset({"outbox", "files", "http", "retrieval"})
"""The providers `Activities` has a field for."""


def privileged_tools(config: StewardConfig) -> frozenset[str]:
    """The tools that run on the privileged queue under this config."""
    names = set()
    for tool in activity_tools():
        override = config.tools.get(tool.name)
        if override is not None and override.privileged is not None:
            privileged = override.privileged
        else:
            privileged = tool.spec.privileged
        if privileged:
            names.add(tool.name)
    return frozenset(names)


def default_activities(
    config: StewardConfig, *, allow_paid: bool | None = None, role: Role = "all"
) -> Activities:
    """Build the real activities the workers of `role` serve, from config and the worker's
    environment.

    Only what the role serves is built: a privileged worker makes no model calls and owns
    no vector store, so it neither imports litellm nor loads the local model. The config's
    grants are checked first, so a config the workers refuse (an unknown tool, say) is
    refused before the local model loads and any directory is made.
    """
    granted = authority(config)
    privileged = privileged_tools(config)
    served = served_providers(privileged, role)
    # Blobs hold the same text as payloads: encrypted with the same ring (steward.codec).
    blobs = make_offloader(config.blobs, keyring_from_environment())
    llm = None
    if role != "privileged":
        llm = model_activities(config, allow_paid=allow_paid, blobs=blobs)
    return Activities(
        llm=llm,
        blobs=blobs,
        outbox=outbox_activities(config) if "outbox" in served else None,
        files=file_activities(config) if "files" in served else None,
        http=http_activities(config) if "http" in served else None,
        mcp=mcp_activities(config),
        authority=granted,
        retrieval=retrieval_activities(config) if "retrieval" in served else None,
        privileged_tools=privileged,
    )


def model_activities(
    config: StewardConfig, *, allow_paid: bool | None = None, blobs: Offloader | None = None
) -> LLMActivities:
    """The `complete` activity over the configured tiers, the local model registered when a
    tier uses it. Paid models are allowed unless `allow_paid` or $STEWARD_FORBID_PAID_MODELS
    says otherwise.
    """
    if allow_paid is None:
        allow_paid = os.environ.get("STEWARD_FORBID_PAID_MODELS", "") not in ("1", "true")
    if any(d.model.startswith(f"{PROVIDER_LOCAL}/") for ds in config.tiers.values() for d in ds):
        from activities.local_model import register_local_model

        register_local_model()
    return LLMActivities(config.tiers, allow_paid=allow_paid, blobs=blobs)


def served_providers(privileged: frozenset[str], role: Role) -> frozenset[str]:
    """The providers a worker of `role` needs: those of the tools on its queue, plus the
    outbox on the privileged queue (approval notices) and retrieval on the default one
    (ingest and search run where workflows start).
    """
    needed = {
        tool.provider
        for tool in activity_tools()
        if tool.provider is not None
        and (role == "all" or (role == "privileged") == (tool.name in privileged))
    }
    if role != "default":
        needed.add("outbox")
    if role != "privileged":
        needed.add("retrieval")
    return frozenset(needed)


def outbox_activities(config: StewardConfig) -> OutboxActivities:
    """send_email and approval notices: to the outbox folder, or by SMTP when configured."""
    return OutboxActivities(
        Path(config.outbox),
        config.sender,
        contacts=config.notify.contacts,
        webhook_url=(
            os.environ.get(config.notify.webhook_url_env) if config.notify.webhook_url_env else None
        ),
        # The transport reads its credentials from this worker's environment when it
        # sends, so only the privileged worker ever needs them.
        smtp=SmtpTransport(config.smtp, os.environ) if config.smtp else None,
        ui_url=ui_url(config),
        namespace=config.namespace,
    )


def ui_url(config: StewardConfig) -> str | None:
    """Where approvers open the Temporal UI: the config's, $STEWARD_UI_URL, or the embedded
    server's UI when no other server is configured.
    """
    if config.notify.ui_url:
        return config.notify.ui_url
    if os.environ.get("STEWARD_UI_URL"):
        return os.environ["STEWARD_UI_URL"]
    if os.environ.get("TEMPORAL_ADDRESS"):
        return None
    server = devserver.status()
    return server.ui_url if server is not None else None


def file_activities(config: StewardConfig) -> FileActivities:
    """write_file and publish_file, inside the config's two directories."""
    files = config.files
    return FileActivities(Path(files.workspace), Path(files.published), max_bytes=files.max_bytes)


def http_activities(config: StewardConfig) -> HttpActivities:
    """http_get, to the config's allowed hosts only."""
    http = config.http
    return HttpActivities(
        http.allow_hosts, max_bytes=http.max_bytes, timeout_seconds=http.timeout_seconds
    )


def retrieval_activities(
    config: StewardConfig, environ: Mapping[str, str] | None = None
) -> RetrievalActivities:
    """Ingest and search over Qdrant: the server the environment names, else embedded.

    Neither the store nor the embedding model is opened here; the first activity that
    needs them does, so a worker that never searches never takes the embedded store's lock.
    """
    env = os.environ if environ is None else environ
    settings = config.retrieval
    url = env.get(settings.url_env)
    store = (
        VectorStore(url=url, api_key=env.get("QDRANT_API_KEY"))
        if url
        else VectorStore(path=Path(settings.store))
    )
    embedding = settings.embedding
    return RetrievalActivities(
        store,
        lambda: make_embedder(
            embedding.model,
            embedding.dimension,
            env,
            api_base=embedding.api_base,
            api_key_env=embedding.api_key_env,
        ),
        chunk_tokens=settings.chunk_tokens,
        max_file_bytes=settings.max_file_bytes,
    )


def authority(config: StewardConfig, *, sandbox: bool = False) -> Authority:
    """The worker's authority over runs and tool calls, from its own config.

    Every agent is resolved here, once: a config that grants an unknown tool, or needs a
    signature from someone without a public key, stops the worker from starting.
    """
    return Authority(config, default_specs(), sandbox=sandbox)


def mcp_activities(config: StewardConfig) -> MCPActivities:
    """The MCP servers of steward.yaml, reachable from this worker."""
    return MCPActivities(
        {
            name: MCPConnection(command=server.command, url=server.url, env=server.env)
            for name, server in config.mcp_servers.items()
        }
    )


def tool_activities(activities: Activities) -> dict[str, Callable[..., Any]]:
    """The tool activities a worker registers, by tool name: each of `tool_methods`,
    guarded by the worker's authority (and, with blobs, storing large outputs).
    """
    found = tool_methods(activities)
    if activities.blobs is not None:
        offload = activities.blobs.tool_activity
        found = {name: offload(tool) for name, tool in found.items()}
    guard = activities.authority.guard
    return {name: guard(tool) for name, tool in found.items()}


def tool_methods(activities: Activities) -> dict[str, Callable[..., Any]]:
    """The tool activities these objects provide, by tool name, as they are.

    A provider serves a tool with its method of the tool's name; a provider that serves
    any tool (the eval sandbox) gives it from `activity_for`.
    """
    found: dict[str, Callable[..., Any]] = {}
    for tool in activity_tools():
        method = _served(activities.provider(tool.provider or ""), tool)
        if method is not None:
            found[tool.name] = method
    return found


def _served(provider: Any, tool: Tool[Any]) -> Callable[..., Any] | None:
    if provider is None:
        return None
    if hasattr(provider, "activity_for"):
        method: Callable[..., Any] = provider.activity_for(tool)
        return method
    return getattr(provider, tool.name, None)


def check_served(
    activities: Activities, tools: Mapping[str, Callable[..., Any]], role: Role
) -> None:
    """Refuse to build workers that would leave a granted tool with nobody to run it.

    Every agent's built-in tools are checked against what these workers register for
    `role` (a default worker answers for the tools that are not privileged, a privileged
    one for the rest): a run calling a missing one would wait for ever.
    """
    privileged = activities.privileged_tools
    authority = activities.authority
    for agent in authority.config.agents:
        for spec in authority.profile(agent).tools:
            if spec.mcp_server is not None or spec.name in tools:
                continue
            entry = find(spec.name)
            if entry is None or entry.provider is None:
                continue  # run by the workflow itself (ask_human)
            if role == "all" or (role == "privileged") == (spec.name in privileged):
                raise ConfigError(
                    f"agents.{agent} is granted {spec.name!r}, but this worker has no "
                    f"activity for it (its provider {entry.provider!r} was not built); "
                    "give the worker one, or take the tool from the agent"
                )


def build_workers(
    client: Client,
    activities: Activities,
    *,
    task_queue: str = queues.DEFAULT,
    role: Role = "all",
    workflows: Sequence[type] | None = None,
    **worker_options: Any,
) -> list[Worker]:
    """The workers for a role: default (workflows, model calls), privileged (tools), or all."""
    tools = tool_activities(activities)
    check_served(activities, tools, role)
    privileged = activities.privileged_tools
    workers = []
    if role in ("default", "all"):
        workers.append(
            Worker(
                client,
                task_queue=task_queue,
                workflows=list(WORKFLOWS if workflows is None else workflows),
                activities=[
                    activities.authority.resolve_run,
                    activities.llm.complete,
                    *(tool for name, tool in tools.items() if name not in privileged),
                    *_mcp(activities, describe=True),
                    *_retrieval(activities),
                    *([activities.evals.score_case] if activities.evals else []),
                ],
                # Retrieval's activities are synchronous (Qdrant and the embedder block).
                activity_executor=ThreadPoolExecutor(max_workers=4),
                **worker_options,
            )
        )
    if role in ("privileged", "all"):
        workers.append(
            Worker(
                client,
                task_queue=queues.privileged(task_queue),
                activities=[
                    activities.outbox.notify_approvers,
                    *(tool for name, tool in tools.items() if name in privileged),
                    *_mcp(activities, describe=False),
                ],
                activity_executor=ThreadPoolExecutor(max_workers=4),
                **worker_options,
            )
        )
    return workers


def _retrieval(activities: Activities) -> list[Callable[..., Any]]:
    """Ingest and search run where workflows start, next to the store they own."""
    if activities.retrieval is None:
        return []
    r = activities.retrieval
    return [
        r.scan_documents,
        r.ingest_document,
        r.discard_document,
        r.prune_documents,
        r.retrieve,
    ]


def _mcp(activities: Activities, *, describe: bool) -> list[Callable[..., Any]]:
    """MCP activities: calls on both queues (a tool's queue follows its setting), the
    description of tools on the default one, where runs start.

    Registered even with no servers configured: a run whose profile names an unknown
    server then fails at once with a clear error, instead of waiting forever for a worker.
    """
    if activities.mcp is None:
        return []
    call = activities.mcp.call_mcp_tool
    if activities.blobs is not None:
        call = activities.blobs.tool_activity(call)
    calls: list[Callable[..., Any]] = [activities.authority.guard(call)]
    return [activities.mcp.describe_mcp_tools, *calls] if describe else calls
