"""ask_human: the run asks the person who started it a question and waits, durably.

No activity runs it: the workflow asks (`workflows/questions.py`) and a reply arrives as
an update. It only reads from a person, so it is allowed by default; `tools.ask_human` in
steward.yaml can still override that.
"""

from __future__ import annotations

from steward.models import RiskClass, ToolSpec
from steward.questions import ASK_HUMAN, AskHumanArgs
from steward.tools.entry import Tool

ASK = Tool(
    spec=ToolSpec(
        name=ASK_HUMAN,
        description=(
            "Ask the person who started this run a question and wait for their reply "
            "(question, optional timeout_seconds); use it when the request is unclear."
        ),
        risk=RiskClass.READ,
        side_effects=False,
    ),
    arguments=AskHumanArgs,
    provider=None,
    would=lambda args: f"asked {args.question!r}",
)
