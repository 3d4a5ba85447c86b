"""Build Steward's Temporal workers from a client and a loaded steward.yaml."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.llm import PROVIDER_LOCAL, LLMActivities
from activities.tools.email import OutboxActivities
from steward import queues
from steward.config import StewardConfig
from workflows.agent import AgentWorkflow
from workflows.support import SupportReplyWorkflow

Role = Literal["default", "privileged", "all"]

WORKFLOWS: Sequence[type] = (SupportReplyWorkflow, AgentWorkflow)

# Steward's own pure modules and pydantic are safe to share with the sandbox; passing them
# through avoids re-importing them for every workflow run.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "steward", "activities", "pydantic", "pydantic_core", "annotated_types", "opentelemetry"
    )
)


@dataclass
class Activities:
    """The activity objects a worker serves; tests swap in their own."""

    llm: Any
    outbox: Any


def default_activities(config: StewardConfig, *, allow_paid: bool | None = None) -> Activities:
    """Build the real activities from config and the worker's environment."""
    import litellm

    # litellm prints a "Give Feedback / Get Help" banner to stdout on every provider error;
    # the classified ApplicationError already says what happened.
    litellm.suppress_debug_info = True
    if allow_paid is None:
        allow_paid = os.environ.get("STEWARD_FORBID_PAID_MODELS", "") not in ("1", "true")
    if any(d.model.startswith(f"{PROVIDER_LOCAL}/") for ds in config.tiers.values() for d in ds):
        from activities.local_model import register_local_model

        register_local_model()
    return Activities(
        llm=LLMActivities(config.tiers, allow_paid=allow_paid),
        outbox=OutboxActivities(
            Path(config.outbox),
            config.sender,
            contacts=config.notify.contacts,
            webhook_url=(
                os.environ.get(config.notify.webhook_url_env)
                if config.notify.webhook_url_env
                else None
            ),
        ),
    )


def build_workers(
    client: Client,
    activities: Activities,
    *,
    task_queue: str = queues.DEFAULT,
    role: Role = "all",
    **worker_options: Any,
) -> list[Worker]:
    """The workers for a role: default (workflows, model calls), privileged (tools), or all."""
    workers = []
    if role in ("default", "all"):
        workers.append(
            Worker(
                client,
                task_queue=task_queue,
                workflows=list(WORKFLOWS),
                activities=[activities.llm.complete],
                workflow_runner=SANDBOX,
                **worker_options,
            )
        )
    if role in ("privileged", "all"):
        workers.append(
            Worker(
                client,
                task_queue=queues.privileged(task_queue),
                activities=[activities.outbox.send_email, activities.outbox.notify_approvers],
                activity_executor=ThreadPoolExecutor(max_workers=4),
                **worker_options,
            )
        )
    return workers
