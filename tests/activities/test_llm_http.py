"""The `complete` activity over real HTTP, against an OpenAI-compatible stub on loopback.

The fake provider in test_llm.py stops at litellm's provider interface. Here the request
goes all the way through litellm's OpenAI client to a server, so what is tested is what
breaks in production: how each status code and error body a provider really sends becomes
an error type and a retry decision, what the call costs by litellm's price map, which
deployment of a tier answered, and where the API key goes (to the server, and nowhere
else).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import litellm
import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.llm import LLMActivities, is_loopback
from steward.config import Deployment
from steward.models import LLMRequest, LLMResult, Message
from tests.support.openai_stub import (
    ERROR_SHAPES,
    KEY_PLACEHOLDER,
    OpenAIStub,
    openai_error,
    running_stub,
)

CANARY = "sk-canary-http-9b7e5d3c1a"
KEY_ENV = "STEWARD_TEST_HTTP_MODEL_KEY"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"category": {"type": "string"}},
    "required": ["category"],
}


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with running_stub() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # litellm falls back to OPENAI_API_KEY when a call has none; a real one in the test
    # environment must not reach even the stub.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv(KEY_ENV, CANARY)


def on(stub: OpenAIStub, model: str = "openai/gpt-4o-mini", **fields: Any) -> Deployment:
    """A deployment served by the stub, its key from KEY_ENV."""
    return Deployment(model=model, api_base=stub.base_url, api_key_env=KEY_ENV, **fields)


def activities_for(*deployments: Deployment) -> LLMActivities:
    # allow_paid=False throughout: these calls must pass the guard because they stay on
    # this machine, which is the guard's loopback rule under test too.
    return LLMActivities({"fast": deployments}, allow_paid=False)


def request(**overrides: Any) -> LLMRequest:
    fields: dict[str, Any] = {
        "step": "classify",
        "tier": "fast",
        "messages": [
            Message(role="system", content="Classify the ticket."),
            Message(role="user", content="My invoice is wrong."),
        ],
        "max_tokens": 30,
    }
    return LLMRequest(**(fields | overrides))


async def complete(activities: LLMActivities, req: LLMRequest) -> LLMResult:
    result: LLMResult = await ActivityEnvironment().run(activities.complete, req)
    return result


async def failure_of(activities: LLMActivities, req: LLMRequest) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await complete(activities, req)
    return caught.value


def as_history(error: ApplicationError) -> str:
    """The error as Temporal stores it in history (message, details, cause, stack)."""
    failure = Failure()
    converter = DataConverter.default
    converter.failure_converter.to_failure(error, converter.payload_converter, failure)
    return str(failure)


async def test_answer_over_http_with_usage_and_the_request_litellm_sent(
    stub: OpenAIStub,
) -> None:
    stub.reply('{"category": "billing"}', prompt_tokens=31, completion_tokens=7)

    result = await complete(activities_for(on(stub)), request(response_schema=SCHEMA))

    assert result.text == '{"category": "billing"}'
    assert (result.usage.input_tokens, result.usage.output_tokens) == (31, 7)
    assert (result.model, result.deployment, result.finish_reason) == (
        "openai/gpt-4o-mini",
        0,
        "stop",
    )
    [sent] = stub.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-4o-mini"  # the provider prefix is litellm's, not the API's
    assert sent.body["max_tokens"] == 30
    assert sent.body["messages"][1] == {"role": "user", "content": "My invoice is wrong."}
    assert sent.body["response_format"]["json_schema"] == {
        "name": "classify",
        "schema": SCHEMA | {"additionalProperties": False},
        "strict": True,
    }
    # Streamed, with the usage in the last chunk.
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    # Temporal owns retries: the client must not retry on its own.
    assert sent.headers.get("x-stainless-retry-count", "0") == "0"


@pytest.mark.parametrize(
    ("shape", "error_type", "retryable", "retry_after"),
    [
        ("invalid_api_key", "ModelAuthError", False, None),
        ("forbidden", "ModelAuthError", False, None),
        ("model_not_found", "ModelNotFound", False, None),
        ("context_length_exceeded", "ContextWindowExceeded", False, None),
        ("content_policy_violation", "ContentPolicy", False, None),
        ("content_filter", "ContentPolicy", False, None),
        ("unprocessable_entity", "ModelBadRequest", False, None),
        ("rate_limit_exceeded", "ModelRateLimited", True, timedelta(seconds=7)),
        ("server_error", "ModelUnavailable", True, None),
        ("bad_gateway", "ModelUnavailable", True, None),
        ("service_unavailable", "ModelUnavailable", True, timedelta(seconds=2)),
    ],
)
async def test_provider_error_shapes_are_classified(
    stub: OpenAIStub,
    shape: str,
    error_type: str,
    retryable: bool,
    retry_after: timedelta | None,
) -> None:
    stub.fail(shape)

    error = await failure_of(activities_for(on(stub)), request())

    assert (error.type, error.non_retryable) == (error_type, not retryable)
    assert error.next_retry_delay == retry_after
    assert error.message.startswith("openai/gpt-4o-mini: ")
    assert f"(HTTP {ERROR_SHAPES[shape].status})" in error.message
    assert error.__cause__ is None
    # One request: neither litellm nor the OpenAI client retried behind Temporal's back.
    assert len(stub.requests) == 1


async def test_retry_after_is_honoured_for_any_retryable_status(stub: OpenAIStub) -> None:
    stub.fail("server_error", headers={"retry-after-ms": "1500"})
    error = await failure_of(activities_for(on(stub)), request())
    assert (error.type, error.next_retry_delay) == ("ModelUnavailable", timedelta(seconds=1.5))


async def test_a_slow_server_times_out_retryably(stub: OpenAIStub) -> None:
    stub.reply("too late", delay=1.0)
    error = await failure_of(activities_for(on(stub, timeout_seconds=0.2)), request())
    assert (error.type, error.non_retryable) == ("ModelTimeout", False)


async def test_nothing_listening_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    deployment = Deployment(model="openai/gpt-4o-mini", api_base=f"http://127.0.0.1:{closed_port}")

    error = await failure_of(activities_for(deployment), request())

    assert (error.type, error.non_retryable) == ("ModelConnectionError", False)


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "openai/gpt-4o", "deepseek/deepseek-chat"])
async def test_cost_is_litellms_price_for_the_tokens_used(stub: OpenAIStub, model: str) -> None:
    stub.reply("priced", prompt_tokens=1234, completion_tokens=567)

    result = await complete(activities_for(on(stub, model)), request())

    prompt_cost, completion_cost = litellm.cost_per_token(
        model=model, prompt_tokens=1234, completion_tokens=567
    )
    assert prompt_cost > 0 and completion_cost > 0  # the model really is priced
    assert result.usage.cost_usd == pytest.approx(prompt_cost + completion_cost, rel=1e-9)


async def test_an_unpriced_model_costs_unknown_not_zero(stub: OpenAIStub) -> None:
    stub.reply("free?", prompt_tokens=50, completion_tokens=5)

    result = await complete(activities_for(on(stub, "openai/smollm2")), request())

    assert result.usage.cost_usd is None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (50, 5)


async def test_the_requested_deployment_answers() -> None:
    with running_stub() as primary, running_stub() as secondary:
        secondary.reply("from the fallback")
        activities = activities_for(on(primary, "openai/gpt-4o"), on(secondary))

        result = await complete(activities, request(deployment=1))

        assert (result.text, result.model, result.deployment) == (
            "from the fallback",
            "openai/gpt-4o-mini",
            1,
        )
        assert primary.requests == []
        assert len(secondary.requests) == 1


async def test_a_deployment_past_the_end_is_refused_without_a_call(stub: OpenAIStub) -> None:
    error = await failure_of(activities_for(on(stub), on(stub)), request(deployment=2))

    assert (error.type, error.non_retryable) == ("UnknownDeployment", True)
    assert "'fast'" in error.message and "2 deployments" in error.message
    assert stub.requests == []


async def test_the_key_reaches_the_server_and_no_error_message(stub: OpenAIStub) -> None:
    stub.reply("ok")
    # Some servers echo the key they were sent; the stub fills it in here.
    stub.fail(
        openai_error(
            401,
            f"Incorrect API key provided: {KEY_PLACEHOLDER}.",
            error_type="invalid_request_error",
            code="invalid_api_key",
        )
    )
    stub.fail(ERROR_SHAPES["rate_limit_exceeded"])
    activities = activities_for(on(stub))

    answer = await complete(activities, request())
    errors = [await failure_of(activities, request()) for _ in range(2)]

    assert stub.pending == 0
    assert [sent.headers["authorization"] for sent in stub.requests] == [f"Bearer {CANARY}"] * 3
    assert CANARY not in answer.model_dump_json()
    assert "Incorrect API key provided: ***" in errors[0].message
    for error in errors:
        assert CANARY not in error.message
        assert CANARY not in as_history(error)


@pytest.mark.parametrize(
    ("api_base", "loopback"),
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://127.10.20.30/v1", True),
        ("http://localhost:11434", True),
        ("http://[::1]:8000/v1", True),
        ("https://api.openai.com/v1", False),
        ("http://127.0.0.1.nip.io/v1", False),
        ("http://localhost.example.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
        ("http://[::1", False),
        (None, False),
    ],
)
def test_loopback_is_judged_on_the_literal_host(api_base: str | None, loopback: bool) -> None:
    assert is_loopback(api_base) is loopback


async def test_a_remote_api_base_is_still_refused_as_paid(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[dict[str, Any]] = []

    async def spy(**kwargs: Any) -> None:
        called.append(kwargs)

    monkeypatch.setattr(litellm, "acompletion", spy)
    remote = Deployment(model="openai/gpt-4o-mini", api_base="https://api.openai.com/v1")

    error = await failure_of(activities_for(remote), request())

    assert (error.type, error.non_retryable) == ("PaidModelRefused", True)
    assert called == []
