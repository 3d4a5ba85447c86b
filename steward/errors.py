"""Steward's errors, each declared once: what it means, who caused it, whether it is retried.

**Failures that cross Temporal.** An activity or a workflow fails with an
`ApplicationError` whose `type` is one of the names below. Each is an `ErrorKind`: the
layer that caused it (the layer `steward trace` names in its diagnosis), whether Temporal
retries it, and one line saying what it means. Raises build their error with
`application_error`, so whether a type is retried is decided here and nowhere else; a
retry policy that lists non-retryable types takes them from `non_retryable`, and the
trace's diagnosis reads `kind(type).layer`. Type names are stable: histories, scripts and
eval suites match on them, so a name never changes once it has been raised. docs/errors.md
lists them for readers (a test keeps it in step).

A refusal (`Refused`) is one of these that a person caused and can fix: an approver or a
client that sent a bad start, decision or reply. Steward's failure converter sends it
without a stack trace, so they read one sentence and nothing about the worker.

**Errors on the client side.** `StewardError` is the base of what Steward's client side
(the CLI, `steward.runs`, `steward.client`, loading steward.yaml and keys) raises for a
person to read: its message is one line that says what is wrong and what to do. Its two
branches say whether asking again can help (`steward.exits` turns them into exit codes):

    StewardError
    ├── RequestError      what was asked must change: an argument, steward.yaml, an id
    │   └── NotFound      it names something that is not there (a run, a namespace)
    └── OperationFailed   what was asked was fine, doing it failed; later may work
        └── Unreachable   no server answered (TemporalUnreachable: no Temporal server)

Steward's own client errors sit in it (RunError, ConfigError, CodecError, SigningKeyError
are RequestErrors; DevServerError is an OperationFailed); the SDK's errors a person can
act on are mapped into it in one place, `steward.exits.steward_error`.

This module is pure (workflows import it): no I/O, nothing that differs between runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Final, Literal, NewType

from temporalio.exceptions import ApplicationError

Layer = Literal[
    "input",
    "authority",
    "approval",
    "model_provider",
    "model_output",
    "tool",
    "retrieval",
    "infrastructure",
    "eval",
]
LAYERS: Final[Mapping[Layer, str]] = {
    "input": "what a run, an ingest or a tool call was given",
    "authority": "what the workers' config grants: agents, tiers, collections, paid models",
    "approval": "people deciding and answering: decisions, replies, notifying approvers",
    "model_provider": "the model provider: keys, limits, outages, requests it refuses",
    "model_output": "what a model answered, when it cannot be used",
    "tool": "a tool's action or the system it acts on (mail, web, files, MCP servers)",
    "retrieval": "documents and the vector store",
    "infrastructure": "the workers' own setup: credentials, tiers, blob store, payload sizes",
    "eval": "an eval's scripted cases and the runs it reads",
}
"""Each layer, in words: which part of the stack to look at when an error of it shows."""

ErrorType = NewType("ErrorType", str)
"""An error type's name, as it is raised and stored in history; only declared ones exist."""


@dataclass(frozen=True)
class ErrorKind:
    """One error type: its stable name, its layer, whether it is retried, what it means."""

    type: ErrorType
    layer: Layer
    retried: bool
    """Whether Temporal retries it (within the call's retry policy)."""
    meaning: str
    permanent_when: str = ""
    """For a retried type, the one case a raise marks as not retried, if there is one."""


_CATALOGUE: dict[str, ErrorKind] = {}


def _kind(
    type: str, layer: Layer, *, retried: bool, meaning: str, permanent_when: str = ""
) -> ErrorType:
    name = ErrorType(type)
    if name in _CATALOGUE:
        raise ValueError(f"error type {type!r} is declared twice")
    _CATALOGUE[name] = ErrorKind(name, layer, retried, meaning, permanent_when)
    return name


# --- input ----------------------------------------------------------------------------
BAD_INPUT: Final = _kind(
    "BadInput",
    "input",
    retried=False,
    meaning="A run input, ingest request or search_docs call of the wrong shape (or naming a "
    "file outside its folder), or a run input that tries to carry authority.",
)
UNKNOWN_TARGET: Final = _kind(
    "UnknownTarget",
    "input",
    retried=False,
    meaning="The workers' config has no such playbook or agent (or it is of the other kind).",
)
UNSIGNED_START: Final = _kind(
    "UnsignedStart",
    "input",
    retried=False,
    meaning="Starts must be signed here, and this one was not (or its signature is not valid).",
)

# --- authority ------------------------------------------------------------------------
NOT_AUTHORIZED: Final = _kind(
    "NotAuthorized",
    "authority",
    retried=False,
    meaning="The worker about to act found the call not granted or not approved, by its own "
    "config.",
)
NOT_GRANTED: Final = _kind(
    "NotGranted",
    "authority",
    retried=False,
    meaning="The run asked for a tier or a collection its agent is not granted.",
)
PAID_MODEL_REFUSED: Final = _kind(
    "PaidModelRefused",
    "authority",
    retried=False,
    meaning="A worker that may call only free, local models was asked for a paid one.",
)

# --- approval -------------------------------------------------------------------------
DECISION_REFUSED: Final = _kind(
    "DecisionRefused",
    "approval",
    retried=False,
    meaning="A well-formed approval decision the run did not accept.",
)
MALFORMED_DECISION: Final = _kind(
    "MalformedDecision",
    "approval",
    retried=False,
    meaning="A decision that is not one decision object of the documented shape and size.",
)
REPLY_REFUSED: Final = _kind(
    "ReplyRefused",
    "approval",
    retried=False,
    meaning="A reply to a question the run did not accept.",
)
MALFORMED_REPLY: Final = _kind(
    "MalformedReply",
    "approval",
    retried=False,
    meaning="A reply that is not one reply object of the documented shape and size.",
)
WEBHOOK_ERROR: Final = _kind(
    "WebhookError",
    "approval",
    retried=True,
    meaning="The approval webhook could not be reached, or did not accept the notification.",
    permanent_when="it answers 4xx (other than 429): asking again gets the same answer",
)

# --- model provider -------------------------------------------------------------------
MODEL_AUTH_ERROR: Final = _kind(
    "ModelAuthError",
    "model_provider",
    retried=False,
    meaning="The provider refused the key (401 or 403).",
)
MODEL_BAD_REQUEST: Final = _kind(
    "ModelBadRequest",
    "model_provider",
    retried=False,
    meaning="The request is malformed: the provider refused it (400, 413, 422), or a tool's "
    "schema cannot be made one every provider accepts.",
)
MODEL_NOT_FOUND: Final = _kind(
    "ModelNotFound",
    "model_provider",
    retried=False,
    meaning="The provider has no such model.",
)
CONTEXT_WINDOW_EXCEEDED: Final = _kind(
    "ContextWindowExceeded",
    "model_provider",
    retried=False,
    meaning="The messages do not fit the model's context window.",
)
CONTENT_POLICY: Final = _kind(
    "ContentPolicy",
    "model_provider",
    retried=False,
    meaning="The provider's content policy refused the request.",
)
MODEL_RATE_LIMITED: Final = _kind(
    "ModelRateLimited",
    "model_provider",
    retried=True,
    meaning="The provider is rate-limiting (429); retried after its retry-after.",
)
MODEL_TIMEOUT: Final = _kind(
    "ModelTimeout",
    "model_provider",
    retried=True,
    meaning="The provider did not answer in time.",
)
MODEL_UNAVAILABLE: Final = _kind(
    "ModelUnavailable",
    "model_provider",
    retried=True,
    meaning="The provider answered with a server error (5xx).",
)
MODEL_CONNECTION_ERROR: Final = _kind(
    "ModelConnectionError",
    "model_provider",
    retried=True,
    meaning="The provider's server could not be reached (refused, reset, no such host).",
)
MODEL_ERROR: Final = _kind(
    "ModelError",
    "model_provider",
    retried=True,
    meaning="A provider failure of no known kind.",
)

# --- model output ---------------------------------------------------------------------
MODEL_BAD_RESPONSE: Final = _kind(
    "ModelBadResponse",
    "model_output",
    retried=True,
    meaning="The provider's answer could not be read (a stream that ended without one).",
    permanent_when="litellm hands back a stream where one whole response was asked for",
)
EMPTY_DRAFT: Final = _kind(
    "EmptyDraft",
    "model_output",
    retried=False,
    meaning="The model returned an empty draft.",
)
BAD_DRAFT: Final = _kind(
    "BadDraft",
    "model_output",
    retried=False,
    meaning="The model's reply pieces cannot be composed into a reply.",
)

# --- tools ----------------------------------------------------------------------------
INVALID_TOOL_ARGUMENTS: Final = _kind(
    "InvalidToolArguments",
    "tool",
    retried=False,
    meaning="A tool call's arguments do not fit the tool's argument model.",
)
URL_NOT_ALLOWED: Final = _kind(
    "UrlNotAllowed",
    "tool",
    retried=False,
    meaning="http_get was asked for a URL off the worker's allow list (or not http/https).",
)
TOO_MANY_REDIRECTS: Final = _kind(
    "TooManyRedirects",
    "tool",
    retried=False,
    meaning="http_get followed the most redirects it will.",
)
HTTP_UNAVAILABLE: Final = _kind(
    "HttpUnavailable",
    "tool",
    retried=True,
    meaning="http_get's host could not be reached, or answered 429, 502, 503 or 504.",
)
FILE_TOO_LARGE: Final = _kind(
    "FileTooLarge",
    "tool",
    retried=False,
    meaning="A file tool was given more content than files.max_bytes allows.",
)
INVALID_PATH: Final = _kind(
    "InvalidPath",
    "tool",
    retried=False,
    meaning="A file tool's path is not a file inside its directory.",
)
PATH_OUTSIDE_DIRECTORY: Final = _kind(
    "PathOutsideDirectory",
    "tool",
    retried=False,
    meaning="A file tool's path resolves outside its directory (through a symlink).",
)
PERMISSION_DENIED: Final = _kind(
    "PermissionDenied",
    "tool",
    retried=False,
    meaning="The worker may not write where a file tool was asked to.",
)
SMTP_UNAVAILABLE: Final = _kind(
    "SmtpUnavailable",
    "tool",
    retried=True,
    meaning="The SMTP server could not be reached, or dropped the conversation.",
)
SMTP_TEMPORARY_FAILURE: Final = _kind(
    "SmtpTemporaryFailure",
    "tool",
    retried=True,
    meaning="The SMTP server deferred the message (4xx).",
)
SMTP_REJECTED: Final = _kind(
    "SmtpRejected",
    "tool",
    retried=False,
    meaning="The SMTP server rejected the message for good (5xx).",
)
SMTP_AUTH_FAILED: Final = _kind(
    "SmtpAuthFailed",
    "tool",
    retried=False,
    meaning="The SMTP server refused the worker's login.",
)
SMTP_TLS_ERROR: Final = _kind(
    "SmtpTlsError",
    "tool",
    retried=False,
    meaning="The SMTP server's TLS certificate is not trusted.",
)
SMTP_NOT_SUPPORTED: Final = _kind(
    "SmtpNotSupported",
    "tool",
    retried=False,
    meaning="The SMTP server lacks what the worker needs (STARTTLS, a login method).",
)
MCP_ERROR: Final = _kind(
    "MCPError",
    "tool",
    retried=True,
    meaning="An MCP server failed to list or run tools.",
)
MCP_TOOL_ERROR: Final = _kind(
    "MCPToolError",
    "tool",
    retried=False,
    meaning="An MCP tool ran and reported an error.",
)
MCP_TOOL_MISSING: Final = _kind(
    "MCPToolMissing",
    "tool",
    retried=False,
    meaning="An MCP server does not offer a tool the config lists for it.",
)
MCP_SERVER_UNKNOWN: Final = _kind(
    "MCPServerUnknown",
    "tool",
    retried=False,
    meaning="The worker has no MCP server of that name.",
)

# --- retrieval ------------------------------------------------------------------------
BAD_DOCUMENT: Final = _kind(
    "BadDocument",
    "retrieval",
    retried=False,
    meaning="A document could not be read, or has no text to index.",
)
NO_COLLECTION: Final = _kind(
    "NoCollection",
    "retrieval",
    retried=False,
    meaning="No collection of that name: ingest documents into it first.",
)
EMBEDDER_MISMATCH: Final = _kind(
    "EmbedderMismatch",
    "retrieval",
    retried=False,
    meaning="The collection was built with another embedding model than this worker's.",
)
STORE_LOCKED: Final = _kind(
    "StoreLocked",
    "retrieval",
    retried=True,
    meaning="The embedded Qdrant store is open in another process.",
)

# --- infrastructure -------------------------------------------------------------------
MISSING_CREDENTIAL: Final = _kind(
    "MissingCredential",
    "infrastructure",
    retried=False,
    meaning="An environment variable holding a key or a login is not set on the worker.",
)
UNKNOWN_TIER: Final = _kind(
    "UnknownTier",
    "infrastructure",
    retried=False,
    meaning="The worker's config has no tier of that name.",
)
UNKNOWN_DEPLOYMENT: Final = _kind(
    "UnknownDeployment",
    "infrastructure",
    retried=False,
    meaning="The worker's tier has fewer deployments than the run asked for.",
)
PAYLOAD_TOO_LARGE: Final = _kind(
    "PayloadTooLarge",
    "infrastructure",
    retried=False,
    meaning="A request or result over what a Temporal payload holds: turn on blob offloading.",
)
BLOB_MISSING: Final = _kind(
    "BlobMissing",
    "infrastructure",
    retried=False,
    meaning="Stored text a run refers to is not in this worker's blob store.",
)
BLOB_UNREADABLE: Final = _kind(
    "BlobUnreadable",
    "infrastructure",
    retried=False,
    meaning="A stored blob cannot be decrypted with this worker's key ring (or is damaged).",
)
BLOB_STORE_UNAVAILABLE: Final = _kind(
    "BlobStoreUnavailable",
    "infrastructure",
    retried=True,
    meaning="The blob store could not be reached, or is throttling.",
)
BLOB_STORE_REFUSED: Final = _kind(
    "BlobStoreRefused",
    "infrastructure",
    retried=False,
    meaning="The blob store refused the worker for good (access denied, no such bucket, no "
    "credentials).",
)

# --- evals ----------------------------------------------------------------------------
NOT_SCRIPTED: Final = _kind(
    "NotScripted",
    "eval",
    retried=False,
    meaning="A scripted eval case asked something its recorded run never did.",
)
SCRIPT_UNAVAILABLE: Final = _kind(
    "ScriptUnavailable",
    "eval",
    retried=True,
    meaning="The script of a scripted eval case could not be read from its run.",
)
HISTORY_UNAVAILABLE: Final = _kind(
    "HistoryUnavailable",
    "eval",
    retried=True,
    meaning="The history of an eval case's run could not be fetched to score it.",
)
HISTORY_UNREADABLE: Final = _kind(
    "HistoryUnreadable",
    "eval",
    retried=False,
    meaning="The history of an eval case's run cannot be decrypted with this worker's keys.",
)
EVAL_UNREACHABLE: Final = _kind(
    "EvalUnreachable",
    "eval",
    retried=True,
    meaning="A case's run could not reach its eval workflow.",
)

CATALOGUE: Final[Mapping[str, ErrorKind]] = MappingProxyType(_CATALOGUE)
"""Every error type Steward raises, by name, in the order declared above."""


def kind(type: str | None) -> ErrorKind | None:
    """The declared kind of an error type, or None for one Steward does not raise."""
    return _CATALOGUE.get(type) if type else None


def non_retryable(*layers: Layer) -> list[str]:
    """The types of these layers that Temporal does not retry, for a retry policy."""
    return [k.type for k in _CATALOGUE.values() if k.layer in layers and not k.retried]


def application_error(
    type: ErrorType,
    message: str,
    *,
    permanent: bool = False,
    next_retry_delay: timedelta | None = None,
) -> ApplicationError:
    """The error to raise for `type`, retried as the catalogue says.

    `permanent` marks this one failure as not retried although its type is (the case
    its `permanent_when` names); `next_retry_delay` is kept only when it is retried.
    """
    retried = _CATALOGUE[type].retried and not permanent
    return ApplicationError(
        message,
        type=type,
        non_retryable=not retried,
        next_retry_delay=next_retry_delay if retried else None,
    )


class Refused(ApplicationError):
    """A non-retryable failure worded for the person who caused it; sent without a trace."""

    def __init__(self, message: str, type: str) -> None:
        super().__init__(message, type=type, non_retryable=True)


# --- the client side ---------------------------------------------------------------------


class StewardError(Exception):
    """What a Steward client operation raises for a person to read: its message is one
    line saying what is wrong and what to do. The branch says whether asking again can help.
    """


class RequestError(StewardError):
    """What was asked must change: an argument, steward.yaml, a key, an id, a decision the
    run refused. Asking again unchanged fails again.
    """


class NotFound(RequestError):
    """What was asked names something that is not there: a run, an approval, a namespace."""


class OperationFailed(StewardError):
    """What was asked was fine, but doing it failed (a run that failed, a server that could
    not be started): trying again later may work, changing the input will not.
    """


class Unreachable(OperationFailed, ConnectionError):
    """No server answered where one was expected."""


class TemporalUnreachable(Unreachable):
    """No Temporal server answered at the address `steward.client.connect` dialled.

    The SDK says so with a bare RuntimeError; this gives the failure a type, the address
    and what to do, so the CLI and the workers can say it in one line (and exit 1).
    """

    def __init__(self, address: str, cause: str) -> None:
        super().__init__(
            f"cannot reach Temporal at {address}: start the embedded server with "
            f"`steward dev up`, or set TEMPORAL_ADDRESS to a server that runs ({cause})"
        )
        self.address = address
