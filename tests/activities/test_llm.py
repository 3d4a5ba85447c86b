"""The `complete` activity through the real litellm call path, with the fake provider."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import litellm
import pytest
from litellm import exceptions as errors
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.blobs import LocalBlobStore, Offloader
from activities.llm import LLMActivities, calls_tools_natively
from steward import tools
from steward.blobs import BlobRef
from steward.config import Deployment
from steward.models import LLMRequest, LLMResult, Message, ModelTool
from steward.turns import strict_schema
from tests.support.fake_model import (
    FakeModel,
    install_fake_model,
    provider_error,
    read_calls_log,
)

CANARY = "sk-canary-5f1d0c9e7a3b4e21"
KEY_ENV = "STEWARD_TEST_MODEL_KEY"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"category": {"type": "string", "enum": ["billing", "bug", "other"]}},
    "required": ["category"],
}
TIERS = {
    "fast": [
        Deployment(model="fake/queued", api_base="http://models.internal:4000", timeout_seconds=30)
    ],
    "smart": [Deployment(model="fake/smart"), Deployment(model="fake/fallback")],
}


def request(tier: str = "fast", **overrides: Any) -> LLMRequest:
    """A small request; overrides replace any field."""
    fields: dict[str, Any] = {
        "step": "classify",
        "tier": tier,
        "messages": [
            Message(role="system", content="Classify the ticket."),
            Message(role="user", content="I was charged twice this month."),
        ],
        "max_tokens": 40,
        "temperature": 0.0,
    }
    return LLMRequest(**(fields | overrides))


async def complete(activities: LLMActivities, req: LLMRequest, *, attempt: int = 1) -> LLMResult:
    """Run the activity as a worker would, with the given attempt number."""
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, attempt=attempt)
    result: LLMResult = await environment.run(activities.complete, req)
    return result


async def failure_of(activities: LLMActivities, req: LLMRequest) -> ApplicationError:
    """The ApplicationError the activity raises for req."""
    with pytest.raises(ApplicationError) as caught:
        await complete(activities, req)
    return caught.value


def as_history(error: ApplicationError) -> str:
    """The error as Temporal would store it in history (message, details, cause, stack)."""
    failure = Failure()
    converter = DataConverter.default
    converter.failure_converter.to_failure(error, converter.payload_converter, failure)
    return str(failure)


async def test_text_answer_with_usage_latency_and_attempt() -> None:
    fake = install_fake_model(FakeModel(latency=0.05))
    fake.queue("It is a billing question.", input_tokens=21, output_tokens=6)

    result = await complete(LLMActivities(TIERS), request(), attempt=3)

    assert result.text == "It is a billing question."
    assert (result.model, result.tier, result.finish_reason) == ("fake/queued", "fast", "stop")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (21, 6)
    assert result.usage.cost_usd is None  # litellm has no price for fake/queued: unknown, not 0
    assert result.latency_ms >= 50
    assert result.attempt == 3
    [call] = fake.calls
    assert call.messages == [
        {"role": "system", "content": "Classify the ticket."},
        {"role": "user", "content": "I was charged twice this month."},
    ]
    assert (call.max_tokens, call.temperature, call.response_format) == (40, 0.0, None)
    assert call.api_base == "http://models.internal:4000"
    assert call.timeout == 30
    assert call.api_key is None


async def test_first_deployment_of_the_tier_serves() -> None:
    fake = install_fake_model(FakeModel()).queue("ok")
    result = await complete(LLMActivities(TIERS), request("smart"))
    assert result.model == "fake/smart"
    assert [call.model for call in fake.calls] == ["fake/smart"]


async def test_known_price_gives_cost() -> None:
    litellm.register_model(
        {
            "fake/priced": {
                "litellm_provider": "fake",
                "mode": "chat",
                "input_cost_per_token": 0.000001,
                "output_cost_per_token": 0.000002,
            }
        }
    )
    install_fake_model(FakeModel()).queue("priced", input_tokens=1000, output_tokens=500)
    activities = LLMActivities({"priced": [Deployment(model="fake/priced")]})

    result = await complete(activities, request("priced"))

    assert result.usage.cost_usd == pytest.approx(1000 * 0.000001 + 500 * 0.000002)


async def test_a_catalogue_tool_offered_by_name_gets_the_catalogue_schema() -> None:
    """Natively and on the schema path alike, the model sees the schema of the worker's
    own catalogue for a tool the request names without one.
    """
    http_get = tools.find("http_get")
    assert http_get is not None
    made = strict_schema(http_get.parameters())
    offered = [ModelTool(name="http_get", description="Fetch a page.")]
    native = {"fast": [Deployment(model="fake/queued", tool_calling="native")]}
    fake = install_fake_model(FakeModel()).queue("done").queue(json.dumps({"decision": {}}))

    await complete(LLMActivities(native), request(tools=offered))
    await complete(LLMActivities(TIERS), request(tools=offered))

    assert fake.calls[0].tools is not None
    assert fake.calls[0].tools[0]["function"]["parameters"] == made.schema
    assert fake.calls[1].response_format is not None
    decision = fake.calls[1].response_format["json_schema"]["schema"]["properties"]["decision"]
    [call_option] = [o for o in decision["anyOf"] if "arguments" in o["properties"]]
    assert call_option["properties"]["arguments"] == made.schema


async def test_a_tool_offered_by_name_the_catalogue_lacks_is_refused() -> None:
    fake = install_fake_model(FakeModel()).queue("never")
    offered = [ModelTool(name="launch_rocket", description="Launch.")]

    error = await failure_of(LLMActivities(TIERS), request(tools=offered))

    assert (error.type, error.non_retryable) == ("BadInput", True)
    assert "'launch_rocket'" in error.message and "catalogue" in error.message
    assert fake.calls == []


async def test_json_schema_answer() -> None:
    fake = install_fake_model(FakeModel()).queue(json.dumps({"category": "billing"}))

    result = await complete(LLMActivities(TIERS), request(response_schema=SCHEMA))

    assert json.loads(result.text) == {"category": "billing"}
    assert result.path == "schema"
    # The schema as every provider takes it: closed, every property required, strict.
    assert fake.calls[0].response_format == {
        "type": "json_schema",
        "json_schema": {
            "name": "classify",
            "schema": SCHEMA | {"additionalProperties": False},
            "strict": True,
        },
    }


@pytest.mark.parametrize(
    ("step", "name"), [("", "response"), ("draft reply", "draft_reply"), ("x" * 80, "x" * 64)]
)
async def test_json_schema_name_is_one_openai_accepts(step: str, name: str) -> None:
    fake = install_fake_model(FakeModel()).queue("{}")
    await complete(LLMActivities(TIERS), request(step=step, response_schema=SCHEMA))
    assert fake.calls[0].response_format is not None
    assert fake.calls[0].response_format["json_schema"]["name"] == name


@pytest.mark.parametrize(
    ("kind", "error_type", "retryable"),
    [
        ("AuthenticationError", "ModelAuthError", False),
        ("PermissionDeniedError", "ModelAuthError", False),
        ("BadRequestError", "ModelBadRequest", False),
        ("UnprocessableEntityError", "ModelBadRequest", False),
        ("ContextWindowExceededError", "ContextWindowExceeded", False),
        ("ContentPolicyViolationError", "ContentPolicy", False),
        ("NotFoundError", "ModelNotFound", False),
        ("RateLimitError", "ModelRateLimited", True),
        ("InternalServerError", "ModelUnavailable", True),
        ("ServiceUnavailableError", "ModelUnavailable", True),
        ("BadGatewayError", "ModelUnavailable", True),
        ("Timeout", "ModelTimeout", True),
        ("APIConnectionError", "ModelConnectionError", True),
    ],
)
async def test_provider_errors_are_classified(kind: str, error_type: str, retryable: bool) -> None:
    fake = install_fake_model(FakeModel())
    fake.queue_error(provider_error(kind, "the provider says no", retry_after=7))

    error = await failure_of(LLMActivities(TIERS), request())

    assert error.type == error_type
    assert error.non_retryable is not retryable
    assert error.message.startswith(f"fake/queued: {kind}")
    assert error.message.endswith(": the provider says no")
    # only an error that came with an HTTP response reports a status
    assert ("(HTTP " in error.message) is (kind != "APIConnectionError")
    assert error.__cause__ is None
    if retryable and kind != "APIConnectionError":  # a connection error has no response
        assert error.next_retry_delay == timedelta(seconds=7)
    else:
        assert error.next_retry_delay is None
    assert len(fake.calls) == 1


async def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    fake = install_fake_model(FakeModel())
    fake.queue_error(
        provider_error("RateLimitError", retry_after=format_datetime(when, usegmt=True))
    )

    error = await failure_of(LLMActivities(TIERS), request())

    assert error.next_retry_delay is not None
    assert timedelta(seconds=25) <= error.next_retry_delay <= timedelta(seconds=31)


async def test_retry_after_ms_from_explicit_headers() -> None:
    fake = install_fake_model(FakeModel())
    fake.queue_error(
        errors.RateLimitError(
            message="slow down",
            llm_provider="fake",
            model="fake/queued",
            headers={"Retry-After-Ms": "1500"},
        )
    )
    error = await failure_of(LLMActivities(TIERS), request())
    assert error.next_retry_delay == timedelta(milliseconds=1500)


async def test_rate_limit_without_retry_after_leaves_the_delay_to_the_policy() -> None:
    install_fake_model(FakeModel()).queue_error(provider_error("RateLimitError"))
    error = await failure_of(LLMActivities(TIERS), request())
    assert error.type == "ModelRateLimited"
    assert error.next_retry_delay is None


async def test_unknown_tier_names_the_known_ones() -> None:
    fake = install_fake_model(FakeModel())
    error = await failure_of(LLMActivities(TIERS), request("huge"))
    assert error.type == "UnknownTier"
    assert error.non_retryable
    assert "'huge'" in error.message and "fast, smart" in error.message
    assert fake.calls == []


@pytest.mark.parametrize("value", [None, ""])
async def test_missing_credential_names_the_variable(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    fake = install_fake_model(FakeModel())
    activities = LLMActivities({"fast": [Deployment(model="fake/queued", api_key_env=KEY_ENV)]})

    error = await failure_of(activities, request())

    assert error.type == "MissingCredential"
    assert error.non_retryable
    assert KEY_ENV in error.message
    assert fake.calls == []


async def test_key_reaches_the_provider_from_the_worker_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY)
    fake = install_fake_model(FakeModel()).queue("fine")
    activities = LLMActivities({"fast": [Deployment(model="fake/queued", api_key_env=KEY_ENV)]})

    result = await complete(activities, request())

    assert fake.calls[0].api_key == CANARY
    assert CANARY not in result.model_dump_json()


@pytest.mark.parametrize(
    "error",
    [
        provider_error("AuthenticationError", f"Incorrect API key provided: {CANARY}."),
        provider_error("RateLimitError", f"quota exceeded for key {CANARY}", retry_after=1),
        provider_error("BadRequestError", f"echo: {CANARY} {CANARY}"),
        # not a litellm error: litellm wraps it, traceback and all, in an APIConnectionError
        RuntimeError(f"GET https://models.example/v1?key={CANARY} failed"),
    ],
    ids=["auth", "rate-limit", "bad-request", "wrapped"],
)
async def test_the_key_never_appears_in_an_error(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY)
    install_fake_model(FakeModel()).queue_error(error)
    activities = LLMActivities({"fast": [Deployment(model="fake/queued", api_key_env=KEY_ENV)]})

    raised = await failure_of(activities, request())

    assert "***" in raised.message
    assert CANARY not in raised.message
    assert CANARY not in as_history(raised)
    assert "Traceback" not in raised.message


async def test_long_provider_messages_are_cut_after_the_key_is_scrubbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY)
    # the key straddles the cut: scrubbing after cutting would leave its first half
    install_fake_model(FakeModel()).queue_error(
        provider_error("BadRequestError", "x" * 490 + CANARY + "y" * 2000)
    )
    activities = LLMActivities({"fast": [Deployment(model="fake/queued", api_key_env=KEY_ENV)]})

    raised = await failure_of(activities, request())

    assert raised.message.endswith("…")
    assert len(raised.message) < 600
    assert CANARY[:8] not in raised.message


@pytest.mark.parametrize(
    "model", ["openai/gpt-4o", "gpt-4o", "anthropic/claude-sonnet-4", "fake-openai/gpt-4o"]
)
async def test_paid_models_are_refused_without_calling_litellm(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[dict[str, Any]] = []

    async def spy(**kwargs: Any) -> None:
        called.append(kwargs)

    monkeypatch.setattr(litellm, "acompletion", spy)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    activities = LLMActivities(
        {"smart": [Deployment(model=model, api_key_env="OPENAI_API_KEY")]}, allow_paid=False
    )

    error = await failure_of(activities, request("smart"))

    assert error.type == "PaidModelRefused"
    assert error.non_retryable
    assert model in error.message
    assert called == []


async def test_free_models_still_run_when_paid_ones_are_refused() -> None:
    install_fake_model(FakeModel()).queue("free")
    result = await complete(LLMActivities(TIERS, allow_paid=False), request())
    assert result.text == "free"


async def test_an_unqueued_call_fails_at_once_and_says_why() -> None:
    fake = install_fake_model(FakeModel())
    error = await failure_of(LLMActivities(TIERS), request())
    assert error.type == "ModelBadRequest"
    assert error.non_retryable
    assert "FakeModel has nothing queued for call #1" in error.message
    assert len(fake.calls) == 1


async def test_fake_from_script_logs_calls_for_another_process(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                "first",
                {"error": "RateLimitError", "message": "busy", "retry_after": 2},
                {"text": "third", "input_tokens": 3, "output_tokens": 4},
            ]
        )
    )
    calls_log = tmp_path / "calls.jsonl"
    fake = install_fake_model(FakeModel.from_script(script, calls_log=calls_log))
    activities = LLMActivities(TIERS)

    first = await complete(activities, request())
    busy = await failure_of(activities, request())
    third = await complete(activities, request(response_schema=SCHEMA))

    assert first.text == "first"
    assert (busy.type, busy.next_retry_delay) == ("ModelRateLimited", timedelta(seconds=2))
    assert (third.text, third.usage.input_tokens, third.usage.output_tokens) == ("third", 3, 4)
    assert fake.pending == 0
    logged = read_calls_log(calls_log)
    assert logged == fake.calls
    assert logged[2].response_format is not None


def test_a_tier_without_deployments_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="at least one deployment"):
        LLMActivities({"empty": [], "fast": TIERS["fast"]})


async def test_a_slow_call_heartbeats_so_a_dead_worker_shows_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("activities.llm.HEARTBEAT_EVERY_SECONDS", 0.02)
    fake = install_fake_model(FakeModel(latency=0.3))
    fake.queue("done")
    beats: list[object] = []
    environment = ActivityEnvironment()
    environment.on_heartbeat = lambda *details: beats.append(details)
    result: LLMResult = await environment.run(LLMActivities(TIERS).complete, request())
    assert result.text == "done"
    assert len(beats) >= 5  # about one per interval while the model worked


async def test_a_cancelled_call_stops_the_model_call() -> None:
    fake = install_fake_model(FakeModel(latency=30))
    fake.queue("never")
    environment = ActivityEnvironment()
    running = asyncio.ensure_future(environment.run(LLMActivities(TIERS).complete, request()))
    await asyncio.sleep(0.1)
    environment.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, timeout=5)


async def test_large_messages_are_stored_once_and_read_back_from_references(
    tmp_path: Path,
) -> None:
    fake = install_fake_model(FakeModel())
    store = LocalBlobStore(tmp_path)
    activities = LLMActivities(TIERS, blobs=Offloader(store, threshold=4_096))
    page = "the long page. " * 2_000  # 30 KB
    long_answer = '{"category": "other"}' + " " * 10_000
    fake.queue(long_answer)
    first = await complete(
        activities,
        request(
            messages=[Message(role="system", content="Read."), Message(role="user", content=page)],
            reused=[0, 1],
        ),
    )
    # The page (message 1) and the long answer were stored; the short system prompt was not.
    assert list(first.stored) == [1]
    assert first.stored[1].size == len(page.encode())
    assert first.text == long_answer and first.text_blob is not None
    assert store.get(first.stored[1].digest) == page.encode()

    fake.queue('{"category": "other"}')
    again = request(
        messages=[
            Message(role="system", content="Read."),
            Message(role="user", content="", blob=first.stored[1]),
            Message(role="assistant", content="", blob=first.text_blob),
        ]
    )
    second = await complete(activities, again)
    assert second.stored == {}  # nothing new to store: references only
    sent = [message["content"] for message in fake.calls[-1].messages]
    assert sent == ["Read.", page, long_answer]
    assert len([path for path in tmp_path.rglob("*") if path.is_file()]) == 2


async def test_a_reference_without_a_blob_store_fails_for_good() -> None:
    install_fake_model(FakeModel())
    ref = BlobRef(digest="0" * 64, size=10, preview="")
    error = await failure_of(
        LLMActivities(TIERS),
        request(messages=[Message(role="user", content="", blob=ref)]),
    )
    assert error.type == "BlobMissing" and error.non_retryable


async def test_an_unpriced_model_is_looked_up_once_until_prices_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_fake_model(FakeModel()).queue("a").queue("b").queue("c")
    activities = LLMActivities({"unpriced": [Deployment(model="fake/unpriced")]})
    asked: list[str] = []
    price_of = litellm.completion_cost

    def counted(*args: Any, **kwargs: Any) -> float:
        asked.append(str(kwargs.get("model")))
        return float(price_of(*args, **kwargs))

    monkeypatch.setattr(litellm, "completion_cost", counted)
    first = await complete(activities, request("unpriced"))
    second = await complete(activities, request("unpriced"))
    assert first.usage.cost_usd is None and second.usage.cost_usd is None
    assert asked.count("fake/unpriced") == 1  # Steward's own slow lookup is not repeated
    litellm.register_model(
        {
            "fake/unpriced": {
                "litellm_provider": "fake",
                "mode": "chat",
                "input_cost_per_token": 0.000001,
                "output_cost_per_token": 0.000002,
            }
        }
    )
    third = await complete(activities, request("unpriced"))
    assert third.usage.cost_usd is not None and third.usage.cost_usd > 0


def test_tool_calling_auto_asks_litellm_once_per_model_until_its_map_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def counted(model: str, **_: Any) -> bool:
        asked.append(model)
        return "fake/auto-tools" in litellm.model_cost  # what litellm's map says

    monkeypatch.setattr(litellm, "supports_function_calling", counted)
    auto = Deployment(model="fake/auto-tools")
    assert [calls_tools_natively(auto) for _ in range(3)] == [False, False, False]
    assert asked == ["fake/auto-tools"]
    litellm.register_model({"fake/auto-tools": {"litellm_provider": "fake", "mode": "chat"}})
    assert [calls_tools_natively(auto) for _ in range(2)] == [True, True]
    assert asked == ["fake/auto-tools", "fake/auto-tools"]
