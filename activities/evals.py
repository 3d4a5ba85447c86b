"""Activities of an eval worker: scoring, and tools that record instead of acting.

`EvalActivities.score_case` reads a finished run's history through the worker's client,
builds its trace, and applies the deterministic scorers to the result and the history.

An eval worker never builds the real tool activities. `SandboxTools` serves the same
activity names (`send_email`, `write_file`, `publish_file`, `http_get`, `call_mcp_tool`,
`notify_approvers`), validates the arguments as the real tool would,
and answers with what it would have done: the record is the activity's result, in the
run's own history and result, and nothing leaves the run. Its `notify_approvers` tells the
run's parent `EvalWorkflow` that an approval waits, so the eval can answer it as scripted.

Scripted runs (deterministic suites, runs recorded in history) carry a `Script` in their
memo: `ScriptedModel.complete` answers each step from it without calling any model, and
`SandboxTools` returns its recorded tool results.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.tools.arguments import parse_arguments
from activities.tools.http_get import checked_url
from activities.tools.mcp import MCPActivities
from evals.labels import label_all
from evals.models import APPROVAL_PENDING_SIGNAL, CaseScores, ScoreRequest
from evals.scorers import RunView, latency_of, model_calls_of, score
from evals.script import SCRIPT_MEMO, Script, ScriptedError
from steward.codec import CodecError
from steward.decoding import decode_history
from steward.errors import (
    EVAL_UNREACHABLE,
    HISTORY_UNAVAILABLE,
    HISTORY_UNREADABLE,
    MCP_SERVER_UNKNOWN,
    NOT_SCRIPTED,
    SCRIPT_UNAVAILABLE,
    application_error,
)
from steward.models import (
    ApprovalNotice,
    LLMRequest,
    LLMResult,
    MCPToolList,
    MCPToolsRequest,
    ToolInvocation,
    ToolResult,
    Usage,
)
from steward.retrieval import (
    BatchResult,
    DocumentBatch,
    FileVersion,
    IngestRequest,
    PruneResult,
    RetrieveRequest,
    RetrieveResult,
    ScanPage,
    ScanRequest,
)
from steward.tools import Tool
from steward.tools.http_get import HttpGetArgs
from steward.trace import build_trace

SANDBOX = "sandbox"
SCRIPTS_CACHED = 256

log = logging.getLogger(__name__)


class EvalActivities:
    """Scoring of a finished case, from its result and its history."""

    @activity.defn(name="score_eval_case")
    async def score_case(self, request: ScoreRequest) -> CaseScores:
        """Fetch the run's history, build its trace, apply the deterministic scorers."""
        client = activity.client()
        handle = client.get_workflow_handle(request.workflow_id, run_id=request.run_id or None)
        try:
            history = await handle.fetch_history()
        except RPCError as err:
            raise application_error(
                HISTORY_UNAVAILABLE,
                f"cannot read the history of {request.workflow_id}: {err.message}",
            ) from None
        try:
            # With the worker's own codec: the case ran on this worker's key ring.
            history = await decode_history(history, client.data_converter.payload_codec)
        except CodecError as err:
            raise application_error(HISTORY_UNREADABLE, str(err)) from None
        trace = build_trace(history)
        view = RunView.of(request.result, trace, request.error)
        names = label_all(request.expect)
        scores = [
            score(spec, view, name)
            for spec, name in zip(request.expect, names, strict=True)
            if spec.kind != "llm_judge"
        ]
        review = view.result.ledger.review_seconds if view.result is not None else 0.0
        return CaseScores(
            scores=scores,
            latency_seconds=latency_of(view),
            review_seconds=review,
            model_calls=model_calls_of(view),
            diagnosis=trace.diagnosis.line() if trace.diagnosis else "",
        )


class Scripts:
    """The `Script` in the memo of the run an activity serves (None for unscripted runs)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[str, Script | None] = OrderedDict()

    async def current(self) -> Script | None:
        """The script of the workflow run this activity belongs to."""
        info = activity.info()
        key = info.workflow_run_id or info.workflow_id or ""
        if key in self._cache:
            return self._cache[key]
        handle = activity.client().get_workflow_handle(
            info.workflow_id or "", run_id=info.workflow_run_id
        )
        try:
            described = await handle.describe()
            script: Script | None = await described.memo_value(SCRIPT_MEMO, None, type_hint=Script)
        except RPCError as err:
            raise application_error(
                SCRIPT_UNAVAILABLE, f"cannot read the script of {info.workflow_id}: {err.message}"
            ) from None
        self._cache[key] = script
        while len(self._cache) > SCRIPTS_CACHED:
            self._cache.popitem(last=False)
        return script


class ScriptedModel:
    """The `complete` activity for scripted runs: answers from the run's script, never a model."""

    def __init__(self, scripts: Scripts | None = None) -> None:
        self.scripts = scripts or Scripts()

    @activity.defn(name="complete")
    async def complete(self, request: LLMRequest) -> LLMResult:
        """The scripted answer for this step and deployment, or its scripted failure."""
        script = await self.scripts.current()
        if script is None:
            raise application_error(
                NOT_SCRIPTED,
                "this run has no script: scripted queues serve only scripted eval cases",
            )
        answer = script.answer(request.step, request.deployment)
        if answer is None:
            steps = ", ".join(f"{a.step}[{a.deployment}]" for a in script.model) or "none"
            raise application_error(
                NOT_SCRIPTED,
                f"the script has no answer for step {request.step!r} (deployment "
                f"{request.deployment}); it answers: {steps}. The workflow now asks "
                "something the recorded run never did.",
            )
        if answer.error is not None:
            raise _scripted_failure(answer.error)
        return LLMResult(
            text=answer.text,
            model=answer.model,
            tier=request.tier,
            usage=Usage(
                input_tokens=answer.input_tokens,
                output_tokens=answer.output_tokens,
                cost_usd=answer.cost_usd,
            ),
            latency_ms=answer.latency_ms,
            attempt=answer.attempt,
            finish_reason="stop",
            deployment=request.deployment,
            tool_calls=answer.tool_calls,
            path=answer.path,
        )


class SandboxTools:
    """Every tool an eval run may call, recorded and never performed.

    `recorded` keeps the invocations this process saw (for tests); the durable record is
    each activity's result in the run's history.
    """

    def __init__(
        self,
        *,
        scripts: Scripts | None = None,
        mcp: MCPActivities | None = None,
        recorded: list[ToolInvocation] | None = None,
        allow_hosts: Iterable[str] | None = None,
    ) -> None:
        """`allow_hosts`: refuse http_get off this list, as the workers' own tool does
        (None: any URL is recorded, as a scripted run's recorded calls were).
        """
        self.scripts = scripts
        self.mcp = mcp
        self.allow_hosts = (
            frozenset(host.lower() for host in allow_hosts) if allow_hosts is not None else None
        )
        self.recorded: list[ToolInvocation] = recorded if recorded is not None else []

    @property
    def servers(self) -> dict[str, Any]:
        """The MCP servers this sandbox answers for (a worker registers MCP activities only
        when there are some): a scripted sandbox answers for any server its scripts name.
        """
        if self.scripts is not None:
            return {"*": "scripted"}
        return dict(self.mcp.servers) if self.mcp is not None else {}

    def activity_for(self, tool: Tool[Any]) -> Callable[[ToolInvocation], Awaitable[ToolResult]]:
        """The tool's activity in the sandbox: its arguments checked as the real one checks
        them, the call recorded, nothing done. A URL the workers' http_get would refuse is
        refused here the same way (evals do not reach the network either way).
        """

        async def record(invocation: ToolInvocation) -> ToolResult:
            args = parse_arguments(tool.arguments, invocation)
            if isinstance(args, HttpGetArgs) and self.allow_hosts is not None:
                checked_url(args.url, self.allow_hosts)
            return await self._record(invocation, tool.would(args))

        return activity.defn(name=tool.name)(record)

    @activity.defn(name="call_mcp_tool")
    async def call_mcp_tool(self, invocation: ToolInvocation) -> ToolResult:
        """Record the MCP tool call the run would have made."""
        return await self._record(invocation, "called it")

    @activity.defn(name="describe_mcp_tools")
    async def describe_mcp_tools(self, request: MCPToolsRequest) -> MCPToolList:
        """A scripted run's recorded tool descriptions, else the server's own (a read)."""
        script = await self.scripts.current() if self.scripts is not None else None
        if script is not None:
            listed = script.mcp.get(request.server)
            if listed is None:
                raise application_error(
                    NOT_SCRIPTED, f"the script describes no tools of MCP server {request.server!r}"
                )
            return listed
        if self.mcp is None:
            raise application_error(
                MCP_SERVER_UNKNOWN, f"this eval worker has no MCP server {request.server!r}"
            )
        return await self.mcp.describe_mcp_tools(request)

    @activity.defn(name="notify_approvers")
    async def notify_approvers(self, notice: ApprovalNotice) -> ToolResult:
        """Tell the eval that runs this workflow that an approval waits; notify nobody."""
        request = notice.request
        client = activity.client()
        parent = await _parent_of(client, request.workflow_id)
        if parent is None:
            return ToolResult(
                tool="notify_approvers", ok=True, output="sandbox: no eval to tell, nobody notified"
            )
        try:
            await client.get_workflow_handle(parent).signal(APPROVAL_PENDING_SIGNAL, request)
        except RPCError as err:
            raise application_error(
                EVAL_UNREACHABLE, f"cannot tell eval {parent} about {request.id}: {err.message}"
            ) from None
        return ToolResult(
            tool="notify_approvers",
            ok=True,
            output=f"sandbox: approvers not notified; eval {parent} answers {request.id}",
        )

    async def _record(self, invocation: ToolInvocation, would: str) -> ToolResult:
        self.recorded.append(invocation)
        tool = invocation.call.tool
        script = await self.scripts.current() if self.scripts is not None else None
        scripted = script.tool(invocation.call.id) if script is not None else None
        if scripted is not None:
            if scripted.error is not None:
                raise _scripted_failure(scripted.error)
            return ToolResult.model_validate(
                {
                    "tool": tool,
                    "ok": scripted.ok,
                    "output": scripted.output,
                    **({"citations": scripted.citations} if scripted.citations else {}),
                }
            )
        log.info("%s: %s not performed; it would have %s", SANDBOX, tool, would)
        return ToolResult(
            tool=tool, ok=True, output=f"{SANDBOX}: {tool} not performed; it would have {would}"
        )


class ScriptedRetrieval:
    """Retrieval for scripted runs: searches answered from the script; nothing is ingested."""

    def __init__(self, scripts: Scripts, tools: SandboxTools) -> None:
        self.scripts = scripts
        self.tools = tools

    @activity.defn(name="retrieve")
    async def retrieve(self, request: RetrieveRequest) -> RetrieveResult:
        """The scripted passages for this search."""
        script = await self.scripts.current()
        if script is None or not any(s.collection == request.collection for s in script.searches):
            # A script that says nothing about this collection finds nothing in it.
            return RetrieveResult(chunks=[], embedder="scripted")
        found = script.search(request.collection, request.query)
        if found is None:
            raise application_error(
                NOT_SCRIPTED,
                f"the script has no search of {request.collection!r} for this query: the "
                f"run now searches for something the recorded run did not ({request.query!r})",
            )
        if found.error is not None:
            raise _scripted_failure(found.error)
        chunks = [_chunk(request.collection, index, c) for index, c in enumerate(found.chunks)]
        return RetrieveResult.model_validate(
            {"chunks": chunks[: request.top_k], "embedder": found.embedder}
        )

    @activity.defn(name="search_docs")
    async def search_docs(self, invocation: ToolInvocation) -> ToolResult:
        """The search_docs tool: its scripted result."""
        return await self.tools._record(invocation, "searched the documents")

    @activity.defn(name="scan_documents")
    async def scan_documents(self, request: ScanRequest) -> ScanPage:
        """Evals do not ingest."""
        raise _no_ingest()

    @activity.defn(name="ingest_document")
    async def ingest_document(self, batch: DocumentBatch) -> BatchResult:
        """Evals do not ingest."""
        raise _no_ingest()

    @activity.defn(name="discard_document")
    async def discard_document(self, version: FileVersion) -> int:
        """Evals do not ingest."""
        raise _no_ingest()

    @activity.defn(name="prune_documents")
    async def prune_documents(self, ingest: IngestRequest) -> PruneResult:
        """Evals do not ingest."""
        raise _no_ingest()


def _chunk(collection: str, index: int, chunk: dict[str, Any]) -> dict[str, Any]:
    """A scripted chunk as a RetrievedChunk's data (a suite may give only source/heading)."""
    if "citation" in chunk:
        return chunk
    return {
        "text": chunk.get("text", ""),
        "citation": {
            "collection": collection,
            "source": chunk.get("source", "scripted.md"),
            "heading": chunk.get("heading", ""),
            "chunk": chunk.get("chunk", index),
            "score": chunk.get("score", 1.0),
        },
    }


def _no_ingest() -> ApplicationError:
    return application_error(NOT_SCRIPTED, "scripted eval queues do not ingest documents")


async def _parent_of(client: Client, workflow_id: str) -> str | None:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        raise application_error(
            EVAL_UNREACHABLE, f"cannot describe {workflow_id}: {err.message}"
        ) from None
    return described.parent_id


def _scripted_failure(error: ScriptedError) -> ApplicationError:
    return ApplicationError(error.message, type=error.type, non_retryable=True)
