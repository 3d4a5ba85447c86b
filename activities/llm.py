"""The `complete` activity: one model call through litellm, classified where it meets the provider.

Workflows name a tier; this maps it to a deployment and calls litellm with its own retries
off, because Temporal owns retries. The answer becomes an LLMResult with tokens, cost and
latency for the run's ledger. Provider failures become ApplicationErrors whose type says
whether retrying can help (and when, from retry-after). Their messages are built here, with
the key scrubbed, because everything an activity raises is stored in history and shown in
the UI. `allow_paid=False` lets tests prove they never reach a paid model.

A request names one deployment of its tier by index. Falling back to the next deployment
is the workflow's decision, made after this activity fails, so every attempt and every
fallback is an event in history rather than something hidden inside one activity.

A request's tools go to the deployment natively (the provider's function calling) or
through the decision schema, as its `tool_calling` says; every schema is made strict in
the subset every provider accepts (`steward.turns`), provider-safe tool names are mapped
back, and the result records which path was taken. Answers stream (`stream=True`), and
the whole response is rebuilt from the chunks; as the text streams it is handed to
`activities.stream`, which publishes it to the run's watchers.

litellm is imported by the first model call, not with this module: workflows reference
`complete` from here, and a process that only runs workflows, tools or replays should not
pay litellm's seconds of import and hundreds of megabytes for a call it never makes.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import re
import socket
import time
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.blobs import Offloader
from activities.stream import TextDeltas
from activities.tool_routing import Routed, ToolRouter, bounded
from steward import tools, turns
from steward.config import Deployment, is_loopback_host
from steward.errors import (
    BLOB_MISSING,
    CONTENT_POLICY,
    CONTEXT_WINDOW_EXCEEDED,
    MISSING_CREDENTIAL,
    MODEL_AUTH_ERROR,
    MODEL_BAD_REQUEST,
    MODEL_BAD_RESPONSE,
    MODEL_CONNECTION_ERROR,
    MODEL_ERROR,
    MODEL_NOT_FOUND,
    MODEL_RATE_LIMITED,
    MODEL_TIMEOUT,
    MODEL_UNAVAILABLE,
    PAID_MODEL_REFUSED,
    UNKNOWN_DEPLOYMENT,
    UNKNOWN_TIER,
    ErrorType,
    application_error,
)
from steward.models import (
    CallPath,
    LLMRequest,
    LLMResult,
    Message,
    ModelToolCall,
    Routing,
    Usage,
)

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

__all__ = [
    "FREE_PROVIDERS",
    "PROVIDER_FAKE",
    "PROVIDER_LOCAL",
    "LLMActivities",
    "call_path",
    "calls_tools_natively",
    "is_loopback",
    "litellm_arguments",
    "provider_of",
]

PROVIDER_LOCAL: Final = "steward-local"
"""The in-process local model's provider prefix (`activities.local_model` installs it)."""
PROVIDER_FAKE: Final = "fake"
FREE_PROVIDERS: Final = frozenset({PROVIDER_LOCAL, PROVIDER_FAKE})
"""Providers that cost nothing and reach no network. `allow_paid=False` calls only these,
and deployments whose api_base is on this machine (see `is_loopback`)."""

KEYLESS_SERVER_KEY: Final = "no-key"
"""Sent to a deployment with an api_base and no api_key_env, in place of any real key."""

MAX_PROVIDER_MESSAGE_CHARS: Final = 500
"""Provider error text kept in an error message; some carry whole tracebacks or bodies."""


@functools.cache
def _classes() -> tuple[tuple[type[Exception], ErrorType], ...]:
    """Steward's error type for each of litellm's errors (`steward.errors` says which are
    retried).

    First match wins, so subclasses come before their bases: ContextWindowExceededError and
    ContentPolicyViolationError are BadRequestErrors. Built when first needed, since only
    an error of a model call (which has imported litellm) is classified.
    """
    from litellm import exceptions as errors

    return (
        (errors.ContextWindowExceededError, CONTEXT_WINDOW_EXCEEDED),
        (errors.ContentPolicyViolationError, CONTENT_POLICY),
        (errors.AuthenticationError, MODEL_AUTH_ERROR),
        (errors.PermissionDeniedError, MODEL_AUTH_ERROR),
        (errors.NotFoundError, MODEL_NOT_FOUND),
        (errors.BadRequestError, MODEL_BAD_REQUEST),
        (errors.UnprocessableEntityError, MODEL_BAD_REQUEST),
        (errors.RateLimitError, MODEL_RATE_LIMITED),
        (errors.Timeout, MODEL_TIMEOUT),
        (errors.InternalServerError, MODEL_UNAVAILABLE),
        (errors.ServiceUnavailableError, MODEL_UNAVAILABLE),
        (errors.BadGatewayError, MODEL_UNAVAILABLE),
        (errors.APIConnectionError, MODEL_CONNECTION_ERROR),
    )


# litellm recognises some errors by their message text, which providers word differently
# (OpenAI's content-policy error says "our safety system", litellm looks for "the safety
# system"); the error code in the body is stable, so where there is one it decides first.
_BY_ERROR_CODE: Final[Mapping[str, ErrorType]] = {
    "context_length_exceeded": CONTEXT_WINDOW_EXCEEDED,
    "content_policy_violation": CONTENT_POLICY,
    "content_filter": CONTENT_POLICY,
}
# For statuses litellm has no class for on some providers (OpenAI's 403 arrives as a bare
# APIError), the HTTP status of the real response still says whether retrying can help.
_BY_STATUS: Final[Mapping[int, ErrorType]] = {
    400: MODEL_BAD_REQUEST,
    401: MODEL_AUTH_ERROR,
    403: MODEL_AUTH_ERROR,
    404: MODEL_NOT_FOUND,
    408: MODEL_TIMEOUT,
    413: MODEL_BAD_REQUEST,
    422: MODEL_BAD_REQUEST,
    429: MODEL_RATE_LIMITED,
}
_LITELLM_PREFIX: Final = re.compile(r"^(litellm\.\w+: )+")
_TRACEBACK_MARKER: Final = "Traceback (most recent call last):"
_NOT_IN_SCHEMA_NAME: Final = re.compile(r"[^A-Za-z0-9_-]")


class LLMActivities:
    """Model calls for workflows: tier names in, LLMResults out."""

    def __init__(
        self,
        tiers: Mapping[str, Sequence[Deployment]],
        *,
        allow_paid: bool = True,
        blobs: Offloader | None = None,
        stream_to_runs: bool = True,
        router: ToolRouter | None = None,
    ) -> None:
        """`stream_to_runs`: publish streamed text to each run's event stream (watchers);
        `router`: chooses first turns' tools where a deployment asks (`tool_routing`).
        """
        empty = sorted(name for name, deployments in tiers.items() if not deployments)
        if empty:
            raise ValueError(f"tiers {empty}: list at least one deployment for each tier")
        self._tiers = {name: tuple(deployments) for name, deployments in tiers.items()}
        self._allow_paid = allow_paid
        self._blobs = blobs
        self._stream_to_runs = stream_to_runs
        self._router = router or ToolRouter()

    @activity.defn(name="complete")
    async def complete(self, request: LLMRequest) -> LLMResult:
        """Call the tier's model once, streaming; Temporal retries what is worth retrying."""
        deployment = self._deployment(request.tier, request.deployment)
        api_key = _api_key(deployment, request.tier)
        if request.tools:
            request = request.model_copy(update={"tools": tools.with_schemas(request.tools)})
        if _imported is None:
            # The first call imports litellm (seconds of CPU) on a thread, so this worker's
            # event loop keeps polling and heartbeating its other activities meanwhile.
            await asyncio.to_thread(_litellm)
        path = call_path(deployment, request)
        names = turns.provider_names(request.tools)
        messages = await self._messages(request)
        routed = None
        if path == "schema" and deployment.tool_routing is not None and request.tools:
            # Embedding is CPU work (and the model loads on first use): off the event loop.
            routed = await asyncio.to_thread(
                self._router.route, messages, request.tools, deployment.tool_routing
            )
        call = litellm_arguments(deployment, request, messages, api_key, routed=routed)
        started = time.perf_counter()
        deltas = TextDeltas(request.step, request.deployment, enabled=self._stream_to_runs)
        try:
            async with deltas:
                response = await _heartbeating(_streamed(call, deltas))
        except Exception as err:
            # `from None`: Temporal serialises an error's cause into history, and the
            # provider's exception is exactly what may carry the key.
            secret = api_key if deployment.api_key_env else None
            raise _classified(err, deployment, secret) from None
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        result = _result(response, deployment, request, latency_ms, path, names)
        if routed is not None:
            chosen = Routing(
                tool=routed.tool.name if routed.tool is not None else turns.ANSWER,
                similarity=round(routed.similarity, 3) if routed.similarity is not None else None,
            )
            result = result.model_copy(update={"routed": chosen})
        if self._blobs is None:
            return result
        # Store what is large (the model's answer, and messages sent in full) once, so the
        # workflow resends a reference instead of the text on every later turn.
        stored = await self._blobs.store_reused(request.messages, request.reused)
        stored_calls = await self._blobs.store_reused_calls(request.messages, request.reused)
        text_blob = (
            await self._blobs.put_text(result.text) if self._blobs.large(result.text) else None
        )
        return result.model_copy(
            update={"stored": stored, "stored_calls": stored_calls, "text_blob": text_blob}
        )

    async def _messages(self, request: LLMRequest) -> list[Message]:
        """The messages as the model gets them, with stored text read back in."""
        if self._blobs is not None:
            return await self._blobs.messages(request.messages)
        if any(
            message.blob is not None or any(c.arguments_blob for c in message.tool_calls)
            for message in request.messages
        ):
            raise application_error(
                BLOB_MISSING, "the request refers to stored text, but this worker has no blob store"
            )
        return list(request.messages)

    def _deployment(self, tier: str, index: int) -> Deployment:
        deployments = self._tiers.get(tier)
        if deployments is None:
            raise application_error(
                UNKNOWN_TIER,
                f"unknown tier {tier!r}; known tiers: {', '.join(sorted(self._tiers))}",
            )
        if not 0 <= index < len(deployments):
            count = len(deployments)
            raise application_error(
                UNKNOWN_DEPLOYMENT,
                f"tier {tier!r} has {count} deployment{'s' if count != 1 else ''} "
                f"(indexes 0 to {count - 1}); the request asked for deployment {index}",
            )
        deployment = deployments[index]
        if not self._allow_paid and not _free(deployment):
            raise application_error(
                PAID_MODEL_REFUSED,
                f"tier {tier!r} deployment {index} is {deployment.model!r}, a paid provider; "
                f"this worker runs with allow_paid=False and calls only "
                f"{sorted(FREE_PROVIDERS)} models and servers on this machine",
            )
        return deployment


_imported: ModuleType | None = None
"""litellm, once `_litellm` has imported it."""


def _litellm() -> ModuleType:
    """litellm, imported on first use and told to keep quiet.

    litellm prints banners to stdout: "Give Feedback / Get Help" on every provider error,
    "Provider List" when asked about a model it does not know (as `tool_calling: auto`
    asks). The classified ApplicationError, or the answer, is all that is needed.
    """
    global _imported
    if _imported is None:
        import litellm

        litellm.suppress_debug_info = True
        _imported = litellm
    return _imported


def litellm_arguments(
    deployment: Deployment,
    request: LLMRequest,
    messages: list[Message],
    api_key: str | None,
    *,
    routed: Routed | None = None,
) -> dict[str, Any]:
    """What `complete` passes to `litellm.acompletion` for this request on this deployment
    (`messages` with stored text read back). The benchmark calls litellm with it directly.
    With `routed` (schema path only), the turn must call its tool, or answer.
    """
    path = call_path(deployment, request)
    names = turns.provider_names(request.tools)
    call: dict[str, Any] = {
        "model": deployment.model,
        "messages": _wire(messages, path, request, names),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "num_retries": 0,
        "timeout": deployment.timeout_seconds,
        "api_base": deployment.api_base,
        "api_key": api_key,
        **_constraint(path, request, names, routed, deployment),
        **deployment.sampling.model_dump(exclude_none=True),
    }
    routing = deployment.tool_routing
    if request.tools and routing is not None and routing.repeat_penalty is not None:
        call.setdefault("repeat_penalty", routing.repeat_penalty)
    if deployment.stream:
        call |= {"stream": True, "stream_options": {"include_usage": True}}
    return call


def call_path(deployment: Deployment, request: LLMRequest) -> CallPath:
    """How this call is constrained on this deployment.

    Tools go natively to a deployment that calls tools (its `tool_calling`, or for `auto`
    litellm's model map), else through the decision schema; a response schema alone is
    always the schema path.
    """
    if request.tools:
        return "native" if calls_tools_natively(deployment) else "schema"
    return "schema" if request.response_schema is not None else "text"


def calls_tools_natively(deployment: Deployment) -> bool:
    """Whether tools go to this deployment as native function calls."""
    if deployment.tool_calling != "auto":
        return deployment.tool_calling == "native"
    known = _NATIVE.get(deployment.model)
    if known is not None:
        return known
    try:
        native = bool(_litellm().supports_function_calling(model=deployment.model))
    except Exception:
        # An unknown provider prefix: litellm cannot say, so the schema path (which every
        # model that answers text can follow) is the safe choice.
        native = False
    _NATIVE.put(deployment.model, native)
    return native


A = TypeVar("A")


class _ByModel(Generic[A]):
    """What litellm answered about a model, kept while its model map is the same.

    The map is local (never fetched) and changes only by `litellm.register_model`, so
    while its size is the same, asking again gives the same answer; and asking is slow
    for a model litellm does not know: it tries every generalization of the name.
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[A, int]] = {}

    def get(self, model: str) -> A | None:
        """The answer kept for `model`, or None if there is none for the map as it is."""
        known = self._known.get(model)
        if known is None or known[1] != len(_litellm().model_cost):
            return None
        return known[0]

    def put(self, model: str, answer: A) -> None:
        self._known[model] = (answer, len(_litellm().model_cost))


_NATIVE: _ByModel[bool] = _ByModel()
"""Whether a `tool_calling: auto` deployment's model takes tools natively (asked twice a
call otherwise)."""


def _wire(
    messages: list[Message], path: CallPath, request: LLMRequest, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The messages for litellm, with how to answer added to the system prompt."""
    wire = turns.wire_messages(messages, path, names)
    instruction = turns.format_instruction(path, request.tools)
    if not instruction:
        return wire
    for message in wire:
        if message["role"] == "system":
            message["content"] = f"{message['content']}\n\n{instruction}"
            return wire
    return [{"role": "system", "content": instruction}, *wire]


def _constraint(
    path: CallPath,
    request: LLMRequest,
    names: Mapping[str, str],
    routed: Routed | None = None,
    deployment: Deployment | None = None,
) -> dict[str, Any]:
    """The tools (native) or the response format (schema) of the call, made strict."""
    if path == "native":
        offered = []
        for tool in request.tools:
            parameters = turns.tool_parameters(tool)
            function: dict[str, Any] = {
                "name": names[tool.name],
                "parameters": parameters.schema,
                "strict": parameters.strict,
            }
            if tool.description:
                function["description"] = tool.description
            offered.append({"type": "function", "function": function})
        return {"tools": offered, "tool_choice": "auto"}
    if path == "schema":
        if routed is not None:
            tools = [routed.tool] if routed.tool is not None else []
            schema = turns.decision_schema(tools, answer=False)
            strict = turns.decision_strict(tools)
        elif request.tools:
            schema = turns.decision_schema(request.tools)
            strict = turns.decision_strict(request.tools)
        else:
            assert request.response_schema is not None
            made = _strict_response(request.response_schema)
            schema, strict = made.schema, made.strict
        if request.tools and deployment is not None and deployment.tool_routing is not None:
            # Bounded after the strict conversion, which drops length bounds.
            schema = bounded(schema, deployment.tool_routing.max_text_chars)
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(request.step),
                    "schema": schema,
                    "strict": strict,
                },
            }
        }
    return {}


def _strict_response(schema: dict[str, Any]) -> turns.StrictSchema:
    try:
        return turns.strict_schema(schema)
    except ValueError as err:
        raise application_error(MODEL_BAD_REQUEST, str(err)) from None


async def _streamed(call: dict[str, Any], deltas: TextDeltas) -> ModelResponse:
    """Make the call, streamed unless the deployment says not to, handing each piece of
    text to `deltas`; the whole response (text, tool calls, usage) built from the chunks.
    """
    from litellm.types.utils import ModelResponse

    litellm = _litellm()
    if not call.get("stream"):
        whole = await litellm.acompletion(**call)
        if not isinstance(whole, ModelResponse):
            raise application_error(
                MODEL_BAD_RESPONSE,
                f"{call['model']}: expected one whole response, got {type(whole).__name__}",
                permanent=True,
            )
        return whole
    stream = await litellm.acompletion(**call)
    chunks: list[Any] = []
    async for chunk in stream:
        chunks.append(chunk)
        for choice in getattr(chunk, "choices", None) or ():
            text = getattr(getattr(choice, "delta", None), "content", None)
            if text:
                deltas.add(text)
    built = litellm.stream_chunk_builder(chunks, messages=call["messages"]) if chunks else None
    if not isinstance(built, ModelResponse):
        raise application_error(
            MODEL_BAD_RESPONSE, f"{call['model']}: the stream ended without an answer"
        )
    return built


def provider_of(model: str) -> str:
    """The litellm provider prefix of a model name ("" when it has none, like "gpt-4o")."""
    provider, slash, _ = model.partition("/")
    return provider if slash else ""


def is_loopback(api_base: str | None) -> bool:
    """Whether api_base names this machine: its host, by the rule SMTP's plain login uses."""
    if not api_base:
        return False
    try:
        host = urlsplit(api_base).hostname
    except ValueError:
        return False
    return host is not None and is_loopback_host(host)


def _free(deployment: Deployment) -> bool:
    # A server on this machine is never a paid provider, whatever model name it answers to
    # (OpenAI-compatible local servers are addressed as `openai/<model>`).
    return provider_of(deployment.model) in FREE_PROVIDERS or is_loopback(deployment.api_base)


def _schema_name(step: str) -> str:
    # OpenAI refuses a json_schema name outside [A-Za-z0-9_-]{1,64}; a step may hold spaces.
    return _NOT_IN_SCHEMA_NAME.sub("_", step)[:64] or "response"


def _api_key(deployment: Deployment, tier: str) -> str | None:
    if deployment.api_key_env is None:
        # Given no key, litellm falls back to the provider's variable (OPENAI_API_KEY for
        # `openai/...`) and would send the worker's real key to whatever server api_base
        # names; and the OpenAI client refuses to send a request with no key at all, which
        # keyless self-hosted servers (llama.cpp, Ollama, vLLM) need. A placeholder does both.
        # In-process providers (the local model, the fake) take no key.
        served_over_http = provider_of(deployment.model) not in FREE_PROVIDERS
        return KEYLESS_SERVER_KEY if deployment.api_base and served_over_http else None
    key = os.environ.get(deployment.api_key_env)
    if not key:
        raise application_error(
            MISSING_CREDENTIAL,
            f"environment variable {deployment.api_key_env} is not set on this worker; "
            f"tier {tier!r} ({deployment.model}) needs it for its API key",
        )
    return key


def _result(
    response: ModelResponse,
    deployment: Deployment,
    request: LLMRequest,
    latency_ms: float,
    path: CallPath,
    names: Mapping[str, str],
) -> LLMResult:
    from litellm.types.utils import Choices

    choice = response.choices[0] if response.choices else None
    text = ""
    finish_reason = None
    calls: list[ModelToolCall] = []
    if isinstance(choice, Choices):
        text = choice.message.content or ""
        finish_reason = choice.finish_reason
        own_name = {sent: name for name, sent in names.items()}
        for n, made in enumerate(choice.message.tool_calls or ()):
            function = getattr(made, "function", None)
            if function is None:
                continue  # a "custom" (free-form) tool call: Steward offers none
            sent = function.name or ""
            calls.append(
                ModelToolCall(
                    id=made.id or f"call_{n}",
                    name=own_name.get(sent, sent),
                    arguments=function.arguments or "",
                )
            )
    usage = getattr(response, "usage", None)
    return LLMResult(
        text=text,
        model=deployment.model,
        tier=request.tier,
        usage=Usage(
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost_usd=_cost(response, deployment.model),
        ),
        latency_ms=latency_ms,
        attempt=activity.info().attempt,
        finish_reason=finish_reason,
        deployment=request.deployment,
        tool_calls=calls,
        path=path,
    )


_UNPRICED: _ByModel[bool] = _ByModel()
"""Models litellm's price map did not know (the lookup cost about 2 ms a call, more than
the rest of the activity)."""

_NO_PRICE = ("isn't mapped", "Provider NOT provided")
"""How litellm says it has no price for a model (as opposed to a response it cannot read)."""


def _cost(response: ModelResponse, model: str) -> float | None:
    """The call's price in USD, or None when litellm has no price for the model.

    None is not 0.0: an unpriced model would otherwise look free in the cost ledger.
    """
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    if cost is not None:
        return float(cost)
    if _UNPRICED.get(model):
        return None
    litellm = _litellm()
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception as err:
        # The answer is already paid for: failing the activity here would retry the call
        # and pay twice. An unknown price is reported as unknown instead.
        activity.logger.info(
            "no price for %s (%s); cost recorded as unknown", model, type(err).__name__
        )
        if any(words in str(err) for words in _NO_PRICE):
            _UNPRICED.put(model, True)
        return None


def _classified(err: Exception, deployment: Deployment, api_key: str | None) -> ApplicationError:
    from litellm import exceptions as errors

    while isinstance(err, errors.MidStreamFallbackError) and isinstance(
        err.original_exception, Exception
    ):
        # litellm wraps whatever broke a stream in this; what broke it decides.
        err = err.original_exception
    status = _real_status(err)
    error_type = _classification(err, status)
    status_text = f" (HTTP {status})" if status is not None else ""
    # litellm prefixes its class name once per wrapping, and appends the traceback of an
    # exception it wrapped; the message names the class already, and history keeps it short.
    detail = _LITELLM_PREFIX.sub("", str(getattr(err, "message", None) or err))
    detail = detail.split(_TRACEBACK_MARKER, 1)[0].strip()
    if api_key:
        detail = detail.replace(api_key, "***")
    if len(detail) > MAX_PROVIDER_MESSAGE_CHARS:
        detail = detail[:MAX_PROVIDER_MESSAGE_CHARS] + "…"
    message = f"{deployment.model}: {type(err).__name__}{status_text}: {detail}"
    # The catalogue decides whether it is retried; a retry-after counts only then.
    return application_error(error_type, message, next_retry_delay=_retry_after(err))


def _real_status(err: Exception) -> int | None:
    """The HTTP status of the response the error came with, if a server really sent one.

    litellm attaches a made-up response (no headers, no body, status 500 or 408) to
    connection errors and timeouts; like litellm's own mapping, only a response with
    headers or a body is taken to be real.
    """
    response = getattr(err, "response", None)
    if isinstance(response, httpx.Response) and (response.headers or response.content):
        return response.status_code
    return None


def _classification(err: Exception, status: int | None) -> ErrorType:
    """The error type: by the body's error code, litellm's class, then the status."""
    from litellm import exceptions as errors

    by_code = _BY_ERROR_CODE.get(_error_code(err) or "")
    if by_code is not None:
        return by_code
    if status is None and not isinstance(err, errors.Timeout) and _connection_failed(err):
        # litellm reports a refused or dropped connection to an OpenAI-compatible server as
        # an InternalServerError; the exception chain says what really happened.
        return MODEL_CONNECTION_ERROR
    for cls, name in _classes():
        if isinstance(err, cls):
            return name
    if status is not None:
        if status >= 500:
            return MODEL_UNAVAILABLE
        return _BY_STATUS.get(status, MODEL_ERROR)
    return MODEL_ERROR


def _connection_failed(err: BaseException) -> bool:
    """Whether a network failure (refused, reset, DNS) is in err's cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx.NetworkError | ConnectionError | socket.gaierror):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _error_code(err: Exception) -> str | None:
    """The `code` of an OpenAI-shaped error body, as litellm keeps it on the exception."""
    body = getattr(err, "body", None)
    if not isinstance(body, Mapping):
        return None
    inner = body.get("error")
    code = (inner if isinstance(inner, Mapping) else body).get("code")
    return code if isinstance(code, str) else None


def _retry_after(err: Exception) -> timedelta | None:
    """The provider's retry-after (or retry-after-ms), when the error carries one."""
    for headers in _headers_of(err):
        milliseconds = _number(headers.get("retry-after-ms"))
        if milliseconds is not None:
            return timedelta(milliseconds=milliseconds)
        value = headers.get("retry-after")
        if value is None:
            continue
        seconds = _number(value)
        if seconds is not None:
            return timedelta(seconds=seconds)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(when - datetime.now(UTC), timedelta(0))
    return None


def _headers_of(err: Exception) -> list[Mapping[str, str]]:
    """Header sources on a litellm error, lower-cased: explicit headers, then the response's."""
    found: list[Mapping[str, str]] = []
    for source in (
        getattr(err, "headers", None),
        getattr(err, "litellm_response_headers", None),
        getattr(getattr(err, "response", None), "headers", None),
    ):
        if source:
            found.append({str(k).lower(): str(v) for k, v in dict(source).items()})
    return found


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


T = TypeVar("T")

HEARTBEAT_EVERY_SECONDS = 5.0
"""How often a model call in flight tells Temporal its worker is alive."""


async def _heartbeating(call: Awaitable[T]) -> T:
    """Await a model call, heartbeating while it runs.

    A worker killed mid-call then shows within the workflow's heartbeat timeout, and the
    call is retried on another worker, instead of waiting out the whole call timeout.
    Outside an activity (a benchmark calling the code directly) it just awaits.
    """
    task = asyncio.ensure_future(call)
    if not activity.in_activity():
        return await task
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
            if done:
                return task.result()
            activity.heartbeat()
    except asyncio.CancelledError:
        task.cancel()
        raise
