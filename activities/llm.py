"""The `complete` activity: one model call through litellm, classified where it meets the provider.

Workflows name a tier; this maps it to a deployment and calls litellm with its own retries
off, because Temporal owns retries. The answer becomes an LLMResult with tokens, cost and
latency for the run's ledger. Provider failures become ApplicationErrors whose type says
whether retrying can help (and when, from retry-after). Their messages are built here, with
the key scrubbed, because everything an activity raises is stored in history and shown in
the UI. `allow_paid=False` lets tests prove they never reach a paid model.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import litellm
from litellm import exceptions as errors
from litellm.types.utils import Choices, ModelResponse
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.local_model import PROVIDER_LOCAL
from steward.config import Deployment
from steward.models import LLMRequest, LLMResult, Usage

__all__ = ["FREE_PROVIDERS", "PROVIDER_FAKE", "PROVIDER_LOCAL", "LLMActivities"]

PROVIDER_FAKE: Final = "fake"
FREE_PROVIDERS: Final = frozenset({PROVIDER_LOCAL, PROVIDER_FAKE})
"""Providers that cost nothing and reach no network: the only ones `allow_paid=False` calls."""

MAX_PROVIDER_MESSAGE_CHARS: Final = 500
"""Provider error text kept in an error message; some carry whole tracebacks or bodies."""

# First match wins, so subclasses come before their bases: ContextWindowExceededError and
# ContentPolicyViolationError are BadRequestErrors.
_CLASSIFICATION: Final[tuple[tuple[type[Exception], str, bool], ...]] = (
    (errors.ContextWindowExceededError, "ContextWindowExceeded", False),
    (errors.ContentPolicyViolationError, "ContentPolicy", False),
    (errors.AuthenticationError, "ModelAuthError", False),
    (errors.PermissionDeniedError, "ModelAuthError", False),
    (errors.NotFoundError, "ModelNotFound", False),
    (errors.BadRequestError, "ModelBadRequest", False),
    (errors.UnprocessableEntityError, "ModelBadRequest", False),
    (errors.RateLimitError, "ModelRateLimited", True),
    (errors.Timeout, "ModelTimeout", True),
    (errors.InternalServerError, "ModelUnavailable", True),
    (errors.ServiceUnavailableError, "ModelUnavailable", True),
    (errors.BadGatewayError, "ModelUnavailable", True),
    (errors.APIConnectionError, "ModelConnectionError", True),
)
_UNCLASSIFIED: Final = ("ModelError", True)
_LITELLM_PREFIX: Final = re.compile(r"^(litellm\.\w+: )+")
_TRACEBACK_MARKER: Final = "Traceback (most recent call last):"
_NOT_IN_SCHEMA_NAME: Final = re.compile(r"[^A-Za-z0-9_-]")


class LLMActivities:
    """Model calls for workflows: tier names in, LLMResults out."""

    def __init__(
        self, tiers: Mapping[str, Sequence[Deployment]], *, allow_paid: bool = True
    ) -> None:
        empty = sorted(name for name, deployments in tiers.items() if not deployments)
        if empty:
            raise ValueError(f"tiers {empty}: list at least one deployment for each tier")
        self._tiers = {name: tuple(deployments) for name, deployments in tiers.items()}
        self._allow_paid = allow_paid

    @activity.defn(name="complete")
    async def complete(self, request: LLMRequest) -> LLMResult:
        """Call the tier's model once; Temporal retries what is worth retrying."""
        deployment = self._deployment(request.tier)
        api_key = _api_key(deployment, request.tier)
        call: dict[str, Any] = {
            "model": deployment.model,
            "messages": [message.model_dump() for message in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "num_retries": 0,
            "timeout": deployment.timeout_seconds,
            "api_base": deployment.api_base,
            "api_key": api_key,
        }
        if request.response_schema is not None:
            call["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(request.step),
                    "schema": request.response_schema,
                },
            }
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**call)
        except Exception as err:
            # `from None`: Temporal serialises an error's cause into history, and the
            # provider's exception is exactly what may carry the key.
            raise _classified(err, deployment, api_key) from None
        latency_ms = (time.perf_counter() - started) * 1000
        if not isinstance(response, ModelResponse):
            raise ApplicationError(
                f"{deployment.model}: expected one whole response, got {type(response).__name__}",
                type="ModelBadResponse",
                non_retryable=True,
            )
        return _result(response, deployment, request.tier, latency_ms)

    def _deployment(self, tier: str) -> Deployment:
        deployments = self._tiers.get(tier)
        if deployments is None:
            raise ApplicationError(
                f"unknown tier {tier!r}; known tiers: {', '.join(sorted(self._tiers))}",
                type="UnknownTier",
                non_retryable=True,
            )
        # Fallbacks to later deployments are not implemented yet: the first one serves.
        deployment = deployments[0]
        if not self._allow_paid and provider_of(deployment.model) not in FREE_PROVIDERS:
            raise ApplicationError(
                f"tier {tier!r} maps to {deployment.model!r}, a paid provider; this worker "
                f"runs with allow_paid=False and calls only {sorted(FREE_PROVIDERS)} models",
                type="PaidModelRefused",
                non_retryable=True,
            )
        return deployment


def provider_of(model: str) -> str:
    """The litellm provider prefix of a model name ("" when it has none, like "gpt-4o")."""
    provider, slash, _ = model.partition("/")
    return provider if slash else ""


def _schema_name(step: str) -> str:
    # OpenAI refuses a json_schema name outside [A-Za-z0-9_-]{1,64}; a step may hold spaces.
    return _NOT_IN_SCHEMA_NAME.sub("_", step)[:64] or "response"


def _api_key(deployment: Deployment, tier: str) -> str | None:
    if deployment.api_key_env is None:
        return None
    key = os.environ.get(deployment.api_key_env)
    if not key:
        raise ApplicationError(
            f"environment variable {deployment.api_key_env} is not set on this worker; "
            f"tier {tier!r} ({deployment.model}) needs it for its API key",
            type="MissingCredential",
            non_retryable=True,
        )
    return key


def _result(
    response: ModelResponse, deployment: Deployment, tier: str, latency_ms: float
) -> LLMResult:
    choice = response.choices[0] if response.choices else None
    text = ""
    finish_reason = None
    if isinstance(choice, Choices):
        text = choice.message.content or ""
        finish_reason = choice.finish_reason
    usage = getattr(response, "usage", None)
    return LLMResult(
        text=text,
        model=deployment.model,
        tier=tier,
        usage=Usage(
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost_usd=_cost(response, deployment.model),
        ),
        latency_ms=latency_ms,
        attempt=activity.info().attempt,
        finish_reason=finish_reason,
    )


def _cost(response: ModelResponse, model: str) -> float | None:
    """The call's price in USD, or None when litellm has no price for the model.

    None is not 0.0: an unpriced model would otherwise look free in the cost ledger.
    """
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    if cost is not None:
        return float(cost)
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception as err:
        # The answer is already paid for: failing the activity here would retry the call
        # and pay twice. An unknown price is reported as unknown instead.
        activity.logger.info(
            "no price for %s (%s); cost recorded as unknown", model, type(err).__name__
        )
        return None


def _classified(err: Exception, deployment: Deployment, api_key: str | None) -> ApplicationError:
    error_type, retryable = next(
        ((name, retry) for cls, name, retry in _CLASSIFICATION if isinstance(err, cls)),
        _UNCLASSIFIED,
    )
    # litellm gives connection errors and timeouts a made-up status; only a real response's counts.
    response = getattr(err, "response", None)
    status_text = f" (HTTP {response.status_code})" if isinstance(response, httpx.Response) else ""
    # litellm prefixes its class name once per wrapping, and appends the traceback of an
    # exception it wrapped; the message names the class already, and history keeps it short.
    detail = _LITELLM_PREFIX.sub("", str(getattr(err, "message", None) or err))
    detail = detail.split(_TRACEBACK_MARKER, 1)[0].strip()
    if api_key:
        detail = detail.replace(api_key, "***")
    if len(detail) > MAX_PROVIDER_MESSAGE_CHARS:
        detail = detail[:MAX_PROVIDER_MESSAGE_CHARS] + "…"
    message = f"{deployment.model}: {type(err).__name__}{status_text}: {detail}"
    return ApplicationError(
        message,
        type=error_type,
        non_retryable=not retryable,
        next_retry_delay=_retry_after(err) if retryable else None,
    )


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
