"""Refusals: errors a person caused and can fix, shown to them as one line.

A refusal is an `ApplicationError` that Temporal never retries. Steward's failure
converter sends it without a stack trace, so an approver or a client that sent a bad
start, decision or reply reads one sentence, and nothing about the worker (no file paths,
no code). Each `type` is a stable name a script or the trace can match on.
"""

from __future__ import annotations

from typing import Final

from temporalio.exceptions import ApplicationError

BAD_INPUT: Final = "BadInput"
"""A run input of the wrong shape, or one that tries to carry authority."""
UNKNOWN_TARGET: Final = "UnknownTarget"
"""The workers' config has no such playbook or agent (or it is of the other kind)."""
UNSIGNED_START: Final = "UnsignedStart"
"""Starts must be signed here, and this one was not (or its signature is not valid)."""
NOT_AUTHORIZED: Final = "NotAuthorized"
"""The worker about to act found the call not granted or not approved, by its own config."""
DECISION_REFUSED: Final = "DecisionRefused"
"""A well-formed approval decision the run did not accept."""
MALFORMED_DECISION: Final = "MalformedDecision"
"""A decision that is not one decision object of the documented shape and size."""
REPLY_REFUSED: Final = "ReplyRefused"
"""A reply to a question the run did not accept."""


class Refused(ApplicationError):
    """A non-retryable failure worded for the person who caused it; sent without a trace."""

    def __init__(self, message: str, type: str) -> None:
        super().__init__(message, type=type, non_retryable=True)
