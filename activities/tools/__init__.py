"""The typed tool registry: each tool's argument schema, policy defaults and activity.

Workflows look a tool up here by name, validate the model's arguments against its schema,
ask the policy, and only then call the activity named here. steward.yaml can override a
tool's risk class, queue and approval rule, never its schema or its code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from activities.retrieval import RetrievalActivities
from activities.tools.email import OutboxActivities
from activities.tools.files import FileActivities
from activities.tools.http_get import HttpActivities
from steward.models import (
    HttpGetArgs,
    PublishFileArgs,
    RiskClass,
    SendEmailArgs,
    ToolInvocation,
    ToolResult,
    ToolSpec,
    WriteFileArgs,
)
from steward.retrieval import SEARCH_DOCS, SearchDocsArgs


@dataclass(frozen=True)
class ToolDefinition:
    """A tool as code knows it: default spec, argument schema, and the activity to run."""

    spec: ToolSpec
    args_model: type[BaseModel]
    activity: Callable[[Any, ToolInvocation], Awaitable[ToolResult]]


REGISTRY: dict[str, ToolDefinition] = {
    "send_email": ToolDefinition(
        spec=ToolSpec(
            name="send_email",
            description="Send an email to one recipient (to, subject, body).",
            risk=RiskClass.SEND,
            scopes=["email:send"],
            privileged=True,
            # An approver may fix the draft, never redirect it.
            locked=["to"],
            # An approved reply outlives a mail server's outage of hours.
            retry_seconds=6 * 3600,
        ),
        args_model=SendEmailArgs,
        activity=OutboxActivities.send_email,
    ),
    "write_file": ToolDefinition(
        spec=ToolSpec(
            name="write_file",
            description="Write text to a file in the workspace (path relative to it, content).",
            risk=RiskClass.WRITE,
            scopes=["files:write"],
            retry_seconds=600,
        ),
        args_model=WriteFileArgs,
        activity=FileActivities.write_file,
    ),
    "publish_file": ToolDefinition(
        spec=ToolSpec(
            name="publish_file",
            description="Publish text as a file in the published directory (path, content).",
            risk=RiskClass.PUBLISH,
            scopes=["files:publish"],
            privileged=True,
            retry_seconds=600,
        ),
        args_model=PublishFileArgs,
        activity=FileActivities.publish_file,
    ),
    "http_get": ToolDefinition(
        spec=ToolSpec(
            name="http_get",
            description="Fetch a web page from an allowed host (url); returns status and text.",
            risk=RiskClass.READ,
            scopes=["http:get"],
            side_effects=False,
        ),
        args_model=HttpGetArgs,
        activity=HttpActivities.http_get,
    ),
    SEARCH_DOCS: ToolDefinition(
        spec=ToolSpec(
            name=SEARCH_DOCS,
            description=(
                "Search the team's documents (query, collection, optional top_k); returns "
                "passages with their sources, to cite as [n]."
            ),
            risk=RiskClass.READ,
            scopes=["retrieval:search"],
            side_effects=False,
        ),
        args_model=SearchDocsArgs,
        activity=RetrievalActivities.search_docs,
    ),
}


def default_specs() -> dict[str, ToolSpec]:
    """Every registered tool's default spec, by name (for resolving steward.yaml)."""
    return {name: tool.spec for name, tool in REGISTRY.items()}
