"""Pure: the checks that make authority the workers', not the client's.

Three questions, answered from the deciding worker's own config and from evidence that
cannot be forged without a private key:

- who asked: a start signed by the requester (`start_problem`);
- whether a decision is its approver's: an Ed25519 signature over exactly what was decided
  (`signature_problem`, used by the workflow's approval gate);
- whether a tool call may happen now: granted, allowed or approved by enough distinct
  allowed approvers who are not the requester, signed where the rule says so
  (`action_problem`, run by the worker about to act, from its own config).

Each returns None when all is well, else one sentence for the person who must fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from steward import policy, signing
from steward.models import (
    AgentProfile,
    ApprovalDecision,
    ApprovalRequest,
    ApprovalRule,
    EvalOptions,
    ResolveRun,
    ToolInvocation,
    arguments_sha256,
)

START_SIGNATURE_WINDOW = timedelta(minutes=10)
"""How far a start signature's time may be from the run's start: a signature copied out
of an old history cannot start the work again later."""


def start_problem(request: ResolveRun, public_keys: Mapping[str, str]) -> str | None:
    """Why a run's start signature does not prove its principal, or None if it does."""
    signed = request.start_signature
    if signed is None:
        return "the start is not signed"
    key = public_keys.get(request.principal)
    if key is None:
        return f"{request.principal!r} has no public key in the workers' identity.public_keys"
    drift = abs(request.started_at - signed.issued_at)
    if drift > START_SIGNATURE_WINDOW:
        return (
            f"the start was signed at {signed.issued_at:%Y-%m-%d %H:%M:%S}, "
            f"{drift.total_seconds():,.0f}s from the run's start; sign a new one"
        )
    message = signing.start_message(
        workflow_id=request.workflow_id,
        target=request.target,
        principal=request.principal,
        input_sha256=request.input_sha256,
        issued_at=signed.issued_at,
    )
    if not signing.verify(key, message, signed.signature):
        return f"the start signature is not {request.principal!r}'s for this run"
    return None


def decision_message(request: ApprovalRequest, decision: ApprovalDecision) -> bytes:
    """What the approver signs for `decision` on `request`: the arguments it approves (its
    edit's, when it edits them).
    """
    approved = request.arguments if decision.arguments is None else decision.arguments
    return signing.decision_message(
        workflow_id=request.workflow_id,
        run_id=request.run_id,
        request_id=request.id,
        tool=request.tool,
        arguments_sha256=arguments_sha256(request.tool, approved),
        approver=decision.approver,
        approve=decision.approve,
    )


def signature_problem(
    request: ApprovalRequest, decision: ApprovalDecision, public_keys: Mapping[str, str]
) -> str | None:
    """Why a decision on a signed request is not its approver's, or None if it is."""
    if not decision.signature:
        return (
            f"{request.id} needs a decision signed with the approver's own key "
            "(`steward approve` signs; `steward sign` prints a signed decision)"
        )
    key = public_keys.get(decision.approver)
    if key is None:
        return f"{decision.approver!r} has no public key in the workers' config"
    if not signing.verify(key, decision_message(request, decision), decision.signature):
        return f"the signature is not {decision.approver!r}'s for this decision"
    return None


def action_problem(
    profile: AgentProfile,
    invocation: ToolInvocation,
    *,
    workflow_id: str,
    public_keys: Mapping[str, str],
    signed_start: bool,
) -> str | None:
    """Why the worker about to run this tool call must refuse it, or None.

    `profile` is the agent as this worker's own config resolves it. The call must be
    granted and not denied; where it needs approval, the evidence it carries must hold
    enough decisions by distinct allowed approvers other than the requester, each for this
    very run, request and arguments, and signed where the rule says so.
    """
    call = invocation.call
    verdict = policy.decide(call, profile, policy.RunState())
    if isinstance(verdict, policy.Deny):
        return f"refused by this worker's config: {verdict.reason}"
    if signed_start and not invocation.principal_verified:
        return f"runs must start signed here, and {invocation.principal!r}'s start was not"
    if isinstance(verdict, policy.Allow):
        return None
    return _evidence_problem(verdict.rule, invocation, workflow_id, public_keys)


def _evidence_problem(
    rule: ApprovalRule,
    invocation: ToolInvocation,
    workflow_id: str,
    public_keys: Mapping[str, str],
) -> str | None:
    call = invocation.call
    evidence = invocation.approval
    if evidence is None:
        return f"{call.tool} needs approval by this worker's config, and the call carries none"
    if (
        evidence.tool != call.tool
        or evidence.args_digest != call.digest()
        or evidence.workflow_id != workflow_id
        or evidence.run_id != invocation.run_id
        or evidence.requester != invocation.principal
    ):
        return f"the approval {evidence.request_id} is for another call or another run"
    allowed = set(rule.approvers) | set(rule.escalation.approvers if rule.escalation else [])
    request = ApprovalRequest(
        id=evidence.request_id,
        workflow_id=evidence.workflow_id,
        run_id=evidence.run_id,
        tool=call.tool,
        args_digest=evidence.args_digest,
        arguments=call.arguments,
        requester=evidence.requester,
        approvers=sorted(allowed),
        requested_at=datetime.min,
        deadline=datetime.min,
    )
    counted: set[str] = set()
    for decision in evidence.decisions:
        if (
            not decision.approve
            or decision.request_id != evidence.request_id
            or decision.digest_approved(call.tool) != evidence.args_digest
            or decision.approver not in allowed
            or decision.approver == invocation.principal
        ):
            continue
        if rule.signed and signature_problem(request, decision, public_keys) is not None:
            continue
        counted.add(decision.approver)
    if len(counted) < rule.required:
        who = ", ".join(sorted(allowed))
        return (
            f"{call.tool} needs {rule.required} approval(s) from {who} by this worker's "
            f"config{' (signed)' if rule.signed else ''}; {len(counted)} count here"
        )
    return None


def for_eval(
    profile: AgentProfile, options: EvalOptions, deployments: Mapping[str, list[str]]
) -> AgentProfile:
    """The profile as an eval worker runs it: on one tier, approvals waiting at most so
    long, and no signatures (its tools record and never act; its approvals are scripted).

    `deployments` are the config's tiers (name -> model names); the eval's tier is one.
    """
    if options.tier is not None:
        profile = profile.model_copy(
            update={
                "tiers": dict.fromkeys(profile.tiers, options.tier),
                "tier_order": [options.tier],
                "deployments": {options.tier: list(deployments[options.tier])},
            }
        )
    seconds = options.approval_deadline_seconds

    def sandboxed(rule: ApprovalRule | None) -> ApprovalRule | None:
        if rule is None:
            return None
        changes: dict[str, object] = {"signed": False}
        if seconds is not None:
            changes["timeout_seconds"] = seconds
            if rule.escalation is not None:
                changes["escalation"] = rule.escalation.model_copy(
                    update={"timeout_seconds": seconds}
                )
        return rule.model_copy(update=changes)

    tools = [t.model_copy(update={"approval": sandboxed(t.approval)}) for t in profile.tools]
    budget = profile.budget.model_copy(update={"approval": sandboxed(profile.budget.approval)})
    specialists = [for_eval(each, options, deployments) for each in profile.specialists]
    return profile.model_copy(update={"tools": tools, "budget": budget, "specialists": specialists})
