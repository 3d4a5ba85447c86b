"""handoff: the agent hands tasks to specialist agents, each a child run.

No activity runs it: the workflow starts the children (`workflows/handoffs.py`). It is
granted by naming specialists (`agents.NAME.specialists`), never under `tools:`, and the
schema a model is offered names those specialists (`steward.handoffs.handoff_tool`).
"""

from __future__ import annotations

from steward.handoffs import DESCRIPTION, HANDOFF, HandoffArgs
from steward.models import RiskClass, ToolSpec
from steward.tools.entry import Tool

HAND_OFF = Tool(
    spec=ToolSpec(
        name=HANDOFF,
        description=DESCRIPTION,
        risk=RiskClass.READ,
        side_effects=False,
    ),
    arguments=HandoffArgs,
    provider=None,
    would=lambda args: f"handed {len(args.tasks)} task(s) to specialists",
    grantable=False,
)
