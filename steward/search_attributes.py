"""The search attributes Steward keeps on its workflows, so the UI and `steward pending` can
find runs by status and waiting approvals without scanning histories.

The embedded dev server registers them at start; another server needs them registered once
(`temporal operator search-attribute create`, see the README).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("StewardStatus")
PENDING_APPROVALS = SearchAttributeKey.for_keyword_list("StewardPendingApprovals")
APPROVERS = SearchAttributeKey.for_keyword_list("StewardApprovers")
TARGET = SearchAttributeKey.for_keyword("StewardTarget")
PRINCIPAL = SearchAttributeKey.for_keyword("StewardPrincipal")
COST = SearchAttributeKey.for_float("StewardCostUSD")

ALL = (STATUS, PENDING_APPROVALS, APPROVERS, TARGET, PRINCIPAL, COST)

AWAITING_APPROVAL = "awaiting_approval"
PENDING_QUERY = f"{STATUS.name} = '{AWAITING_APPROVAL}' AND ExecutionStatus = 'Running'"
