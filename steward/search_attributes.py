"""The search attributes Steward keeps on its workflows, so the UI and `steward pending` can
find runs by status, waiting approvals and open questions without scanning histories.

The embedded dev server registers them at start; another server needs them registered once
(`temporal operator search-attribute create`, see docs/deployment.md).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("StewardStatus")
PENDING_APPROVALS = SearchAttributeKey.for_keyword_list("StewardPendingApprovals")
APPROVERS = SearchAttributeKey.for_keyword_list("StewardApprovers")
TARGET = SearchAttributeKey.for_keyword("StewardTarget")
PRINCIPAL = SearchAttributeKey.for_keyword("StewardPrincipal")
COST = SearchAttributeKey.for_float("StewardCostUSD")
OPEN_QUESTIONS = SearchAttributeKey.for_keyword_list("StewardOpenQuestions")

ALL = (STATUS, PENDING_APPROVALS, APPROVERS, TARGET, PRINCIPAL, COST, OPEN_QUESTIONS)

RUNNING = "running"
AWAITING_APPROVAL = "awaiting_approval"
AWAITING_INPUT = "awaiting_input"
PENDING_QUERY = f"{STATUS.name} = '{AWAITING_APPROVAL}' AND ExecutionStatus = 'Running'"
QUESTIONS_QUERY = f"{OPEN_QUESTIONS.name} IS NOT NULL AND ExecutionStatus = 'Running'"
"""Runs with a question open (setting the list empty unsets the attribute)."""


def waiting_status(*, approvals_pending: bool, questions_open: bool) -> str:
    """A running run's StewardStatus: an approval outranks a question, either outranks none.

    Both gates publish through this, so neither can overwrite what the other waits for.
    """
    if approvals_pending:
        return AWAITING_APPROVAL
    if questions_open:
        return AWAITING_INPUT
    return RUNNING
