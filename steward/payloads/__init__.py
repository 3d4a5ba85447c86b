"""Payloads that cross Temporal: workflow inputs and results, activity requests, approvals.

Everything here is stored in workflow history and shown in the Temporal UI, so nothing
here may ever hold a credential. Models are strict about what they accept (one `Strict`
base, from `steward.strict`): a malformed signal or input is refused with a message naming
the field, before anything happens. History holds them as JSON without class paths: a
payload can move between modules without breaking replay, but its fields must still read
what runs have already recorded.

One module per domain: `models` (model calls: requests, results, messages, the record of a
call), `tools` (tool specs, calls, invocations, results, citations), `approvals` (rules,
requests, decisions and their records, argument digests), `budgets` (budget caps and the
ledger), `profiles` (the agent profile a run records), `runs` (run inputs, resolution,
progress and results), `mcp` (an MCP server's tools). Payloads of their own exchange live
beside this package: questions (`steward.questions`), handoffs (`steward.handoffs`), blob
references (`steward.blobs`), guardrails (`steward.guardrails`), retrieval
(`steward.retrieval`). Everything is importable from here.
"""

from __future__ import annotations

from steward.payloads.approvals import (
    MAX_EDIT_CHARS,
    ApprovalDecision,
    ApprovalEvidence,
    ApprovalNotice,
    ApprovalOutcome,
    ApprovalRequest,
    ApprovalRule,
    ArgumentEdit,
    DecisionReceipt,
    DecisionRecord,
    Escalation,
    RefusedDecision,
    args_digest,
    arguments_sha256,
    run_tag,
)
from steward.payloads.budgets import Budget, BudgetCap, Ledger, TierSpend
from steward.payloads.mcp import MCPToolInfo, MCPToolList, MCPToolsRequest
from steward.payloads.models import (
    CallPath,
    LLMRequest,
    LLMResult,
    Message,
    ModelCallRecord,
    ModelTool,
    ModelToolCall,
    Routing,
    Usage,
)
from steward.payloads.profiles import AgentProfile, ContinueAfter, DraftStyle
from steward.payloads.runs import (
    MAX_INPUT_CHARS,
    PRINCIPAL_MAX,
    TARGET_PATTERN,
    ActionRecord,
    EvalOptions,
    LegacyRunRequest,
    Passage,
    ResolvedRun,
    ResolveRun,
    RunProgress,
    RunRequest,
    RunResult,
    RunStatus,
    StartSignature,
)
from steward.payloads.tools import (
    Citation,
    RiskClass,
    ToolCall,
    ToolInvocation,
    ToolResult,
    ToolSpec,
    idempotency_key,
)

__all__ = [
    "MAX_EDIT_CHARS",
    "MAX_INPUT_CHARS",
    "PRINCIPAL_MAX",
    "TARGET_PATTERN",
    "ActionRecord",
    "AgentProfile",
    "ApprovalDecision",
    "ApprovalEvidence",
    "ApprovalNotice",
    "ApprovalOutcome",
    "ApprovalRequest",
    "ApprovalRule",
    "ArgumentEdit",
    "Budget",
    "BudgetCap",
    "CallPath",
    "Citation",
    "ContinueAfter",
    "DecisionReceipt",
    "DecisionRecord",
    "DraftStyle",
    "Escalation",
    "EvalOptions",
    "LLMRequest",
    "LLMResult",
    "Ledger",
    "LegacyRunRequest",
    "MCPToolInfo",
    "MCPToolList",
    "MCPToolsRequest",
    "Message",
    "ModelCallRecord",
    "ModelTool",
    "ModelToolCall",
    "Passage",
    "RefusedDecision",
    "ResolveRun",
    "ResolvedRun",
    "RiskClass",
    "Routing",
    "RunProgress",
    "RunRequest",
    "RunResult",
    "RunStatus",
    "StartSignature",
    "TierSpend",
    "ToolCall",
    "ToolInvocation",
    "ToolResult",
    "ToolSpec",
    "Usage",
    "args_digest",
    "arguments_sha256",
    "idempotency_key",
    "run_tag",
]
