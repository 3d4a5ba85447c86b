"""Which workflow type runs a target: an agent runs the agent loop, a playbook its own code.

Playbooks are code, so each has its own workflow type, named here; steward.yaml may only
declare a playbook that exists here. Clients route a start by this table without reading
any config, and the workers refuse a run whose target is of the wrong kind for its type.
"""

from __future__ import annotations

AGENT_WORKFLOW = "AgentWorkflow"

PLAYBOOKS = {"support-reply": "SupportReplyWorkflow"}
"""Playbook name -> workflow type."""


def workflow_type(target: str) -> str:
    """The workflow type that runs `target` (any name not a playbook is an agent)."""
    return PLAYBOOKS.get(target, AGENT_WORKFLOW)
