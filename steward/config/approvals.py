"""Approvals: which group decides, in time or escalated, who is notified, and whose
signature counts.

steward.yaml names approver groups and people; the profile a run resolves expands them
into `steward.payloads.ApprovalRule`s, and the workflow accepts a decision only from them.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from steward.bounds import ApprovalsNeeded, ApprovalWait
from steward.models import RiskClass
from steward.signing import SigningKeyError, parse_public_key
from steward.strict import Strict


class EscalationConfig(Strict):
    """The group asked when the first one lets the deadline pass."""

    group: str
    timeout_seconds: ApprovalWait = 3600.0


class ApprovalConfig(Strict):
    """Which approver group must approve, how many of them, within how long, then what."""

    group: str
    timeout_seconds: ApprovalWait = 3600.0
    required: ApprovalsNeeded = 1
    escalate: EscalationConfig | None = None
    signed: bool = Field(
        default=False, description="decisions must be signed with the approver's own key"
    )


class NotifyConfig(Strict):
    """How approvers hear of requests: email (the outbox by default), optionally a webhook."""

    contacts: dict[str, str] = Field(
        default_factory=dict, description="approver name -> email address"
    )
    webhook_url_env: str | None = Field(
        default=None, description="environment variable holding the webhook URL (may carry a token)"
    )
    ui_url: str | None = Field(
        default=None,
        description="the Temporal UI's address, for links in notices (default: the embedded "
        "server's UI when it is the one in use)",
    )


class IdentityConfig(Strict):
    """Who people are, and which of their acts must be signed to count.

    Names in steward.yaml (approvers, requesters) are claims unless signed: with a public
    key listed here, a person's signature proves a decision or a start is theirs. Keys are
    Ed25519; the private half never leaves the person's machine.
    """

    public_keys: dict[str, str] = Field(
        default_factory=dict, description="person -> public key, ed25519:BASE64"
    )
    signed_approvals: list[RiskClass] = Field(
        default_factory=list,
        description="approvals of tools of these risk classes must be signed (prod: all risky)",
    )
    signed_start: bool = Field(
        default=False, description="a run starts only with a start signed by its requester"
    )

    @field_validator("public_keys")
    @classmethod
    def _keys_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for person, key in value.items():
            try:
                parse_public_key(key)
            except SigningKeyError as err:
                raise ValueError(f"{person}: {err}") from None
        return value
