"""What a failure a person can fix says to them: one line, and an exit code.

Every `steward` command and the workers' entry point (`python -m workers`, `steward
worker`) turn failures into `error: ...` through `explain`, so a mistake reads the same
wherever it surfaces, and a script can tell the two kinds apart by the exit code:

- 2, BAD_INPUT: what was asked must change: an argument, steward.yaml, an id that names
  nothing, a decision the run refused. Asking again unchanged fails again.
- 1, FAILED: what was asked was fine, but doing it failed: Temporal cannot be reached or
  does not answer, a run failed. Asking again later may work.

Types decide, never message text: Steward's own errors (ConfigError, RunError and its
OperationFailed, SigningKeyError, DevServerError, TemporalUnreachable) and the SDK's
(RPCError by status code and error details, the client's workflow errors). Anything else
is a bug, and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from temporalio.api.errordetails.v1 import NamespaceNotFoundFailure
from temporalio.client import (
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from steward.client import TemporalUnreachable
from steward.codec import CodecError
from steward.config import ConfigError
from steward.devserver import DevServerError
from steward.runs import OperationFailed, RunError
from steward.signing import SigningKeyError

BAD_INPUT: Final = 2
FAILED: Final = 1

# What the caller named is wrong: nothing by that name, not a valid value, already there.
_CALLERS_STATUSES: Final = frozenset(
    {RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.ALREADY_EXISTS}
)


@dataclass(frozen=True)
class Explained:
    """A failure as the person sees it: the exit code and one line (without `error: `)."""

    code: int
    message: str

    @property
    def line(self) -> str:
        """The message on one line, whatever the error it came from put in it."""
        return " ".join(part.strip() for part in self.message.splitlines() if part.strip())


def explain(err: BaseException) -> Explained | None:
    """How `err` reads to the person who caused it, or None if it is not theirs to fix."""
    if isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
        # A worker's TaskGroup wraps the one failure that stopped it.
        return explain(err.exceptions[0])
    if isinstance(err, TemporalUnreachable | OperationFailed | DevServerError):
        return Explained(FAILED, str(err))
    if isinstance(err, RunError | ConfigError | SigningKeyError | CodecError):
        return Explained(BAD_INPUT, str(err))
    if isinstance(err, WorkflowAlreadyStartedError):
        taken = f"workflow id {err.workflow_id!r} is taken ({err.workflow_type}): choose another"
        return Explained(BAD_INPUT, taken)
    if isinstance(err, RPCError):
        return _rpc(err)
    if isinstance(err, WorkflowFailureError):
        return Explained(FAILED, f"the run failed: {_message(err.cause)}")
    if isinstance(err, WorkflowUpdateFailedError):
        return Explained(BAD_INPUT, f"refused: {_message(err.cause)}")
    if isinstance(err, WorkflowQueryFailedError):
        return Explained(FAILED, f"the run could not answer a query: {err.message}")
    if isinstance(err, OSError) and err.filename is not None:
        return Explained(FAILED, f"cannot use {err.filename}: {err.strerror or err}")
    return None


def _rpc(err: RPCError) -> Explained:
    namespace = _missing_namespace(err)
    if namespace is not None:
        return Explained(
            BAD_INPUT,
            f"namespace {namespace!r} does not exist on this Temporal server: "
            "`steward dev up` creates the namespace of every environment in steward.yaml; "
            f"on another server, `temporal operator namespace create --namespace {namespace}` "
            "(then register Steward's search attributes in it, see docs/deployment.md)",
        )
    code = BAD_INPUT if err.status in _CALLERS_STATUSES else FAILED
    return Explained(code, f"Temporal said: {err.message}")


def _missing_namespace(err: RPCError) -> str | None:
    """The namespace an RPC found missing, from the error's typed details."""
    if err.status != RPCStatusCode.NOT_FOUND or err.grpc_status is None:
        return None
    for detail in err.grpc_status.details:
        if detail.Is(NamespaceNotFoundFailure.DESCRIPTOR):
            failure = NamespaceNotFoundFailure()
            detail.Unpack(failure)
            return failure.namespace
    return None


def _message(cause: BaseException) -> str:
    """A Temporal failure's own message (its str adds nothing a person needs)."""
    message = getattr(cause, "message", None)
    return message if isinstance(message, str) and message else str(cause)
