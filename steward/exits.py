"""What a failure a person can fix says to them: one line, and an exit code.

Every `steward` command and the workers' entry point (`python -m workers`, `steward
worker`) turn failures into `error: ...` through `explain`, so a mistake reads the same
wherever it surfaces, and a script can tell the two kinds apart by the exit code:

- 2, BAD_INPUT: a `RequestError`: what was asked must change: an argument, steward.yaml,
  a key, an id that names nothing, a decision the run refused. Asking again unchanged
  fails again.
- 1, FAILED: an `OperationFailed`: what was asked was fine, but doing it failed: Temporal
  cannot be reached or does not answer, a run failed. Asking again later may work.

Types decide, never message text. Steward's own errors are `StewardError`s
(`steward.errors`) and say which kind they are by their branch. The SDK's errors a person
can act on become StewardErrors here, in `steward_error`: an RPCError by its status code
(one table, `RPC_ERRORS`), the client's workflow errors by their class. Anything else is
a bug, and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
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

from steward.errors import NotFound, OperationFailed, RequestError, StewardError

BAD_INPUT: Final = 2
FAILED: Final = 1

RPC_ERRORS: Final[Mapping[RPCStatusCode, type[StewardError]]] = {
    # What the caller named is wrong: nothing by that name, not a valid value, already there.
    RPCStatusCode.NOT_FOUND: NotFound,
    RPCStatusCode.INVALID_ARGUMENT: RequestError,
    RPCStatusCode.ALREADY_EXISTS: RequestError,
    # The credentials were refused: the API key or the TLS settings must change.
    RPCStatusCode.UNAUTHENTICATED: RequestError,
    RPCStatusCode.PERMISSION_DENIED: RequestError,
}
"""What a Temporal RPC's status says of the request; any other status is OperationFailed
(the server is down or busy, the call timed out: later may work)."""


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
    known = steward_error(err)
    if known is None:
        return None
    return Explained(FAILED if isinstance(known, OperationFailed) else BAD_INPUT, str(known))


def steward_error(err: BaseException) -> StewardError | None:
    """`err` as a StewardError: itself, or what the SDK's error it is means to a person;
    None for anything else.
    """
    if isinstance(err, StewardError):
        return err
    if isinstance(err, RPCError):
        return _rpc(err)
    if isinstance(err, WorkflowAlreadyStartedError):
        return RequestError(
            f"workflow id {err.workflow_id!r} is taken ({err.workflow_type}): choose another"
        )
    if isinstance(err, WorkflowFailureError):
        return OperationFailed(f"the run failed: {_message(err.cause)}")
    if isinstance(err, WorkflowUpdateFailedError):
        return RequestError(f"refused: {_message(err.cause)}")
    if isinstance(err, WorkflowQueryFailedError):
        return OperationFailed(f"the run could not answer a query: {err.message}")
    if isinstance(err, OSError) and err.filename is not None:
        return OperationFailed(f"cannot use {err.filename}: {err.strerror or err}")
    return None


def _rpc(err: RPCError) -> StewardError:
    namespace = _missing_namespace(err)
    if namespace is not None:
        return NotFound(
            f"namespace {namespace!r} does not exist on this Temporal server: "
            "`steward dev up` creates the namespace of every environment in steward.yaml; "
            f"on another server, `temporal operator namespace create --namespace {namespace}` "
            "(then register Steward's search attributes in it, see docs/deployment.md)",
        )
    return RPC_ERRORS.get(err.status, OperationFailed)(f"Temporal said: {err.message}")


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
