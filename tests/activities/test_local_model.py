"""The real offline model (SmolLM2-135M via llama.cpp) through the `complete` activity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import litellm
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.llm import PROVIDER_LOCAL, LLMActivities
from activities.local_model import (
    LOCAL_MODEL,
    LocalLlama,
    LocalModelError,
    register_local_model,
)
from steward.config import Deployment, Sampling
from steward.models import LLMRequest, LLMResult, Message, ModelTool

pytestmark = pytest.mark.local_model

CATEGORIES = ["billing", "bug", "other"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"category": {"type": "string", "enum": CATEGORIES}},
    "required": ["category"],
    "additionalProperties": False,
}


async def test_structured_answer_from_the_local_model() -> None:
    register_local_model()
    activities = LLMActivities({"fast": [Deployment(model=LOCAL_MODEL)]}, allow_paid=False)
    request = LLMRequest(
        step="classify",
        tier="fast",
        messages=[
            Message(
                role="system",
                content=f"Classify the support ticket as one of: {', '.join(CATEGORIES)}.",
            ),
            Message(role="user", content="I was charged twice for my subscription this month."),
        ],
        response_schema=SCHEMA,
        max_tokens=24,
    )

    result: LLMResult = await ActivityEnvironment().run(activities.complete, request)

    # The grammar guarantees the shape, not the judgement: any listed category will do.
    jsonschema.validate(json.loads(result.text), SCHEMA)
    assert result.model == LOCAL_MODEL
    assert result.finish_reason == "stop"
    assert result.usage.input_tokens > 0
    assert 0 < result.usage.output_tokens <= 24
    assert result.usage.cost_usd == 0.0


def local_handlers() -> list[object]:
    return [
        item["custom_handler"]
        for item in litellm.custom_provider_map
        if item["provider"] == PROVIDER_LOCAL
    ]


def test_registering_again_keeps_the_loaded_handler() -> None:
    register_local_model()
    [first] = local_handlers()
    register_local_model()
    assert local_handlers() == [first]


async def test_a_prompt_beyond_the_context_window_is_not_retried() -> None:
    register_local_model()
    activities = LLMActivities({"fast": [Deployment(model=LOCAL_MODEL)]}, allow_paid=False)
    request = LLMRequest(
        step="summarise",
        tier="fast",
        messages=[Message(role="user", content="word " * 3000)],
        max_tokens=8,
    )

    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(activities.complete, request)

    assert caught.value.type == "ContextWindowExceeded"
    assert caught.value.non_retryable


def test_missing_weights_fail_at_registration(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="not found"):
        register_local_model(tmp_path / "absent.gguf")


def test_grammar_drops_what_llama_cpp_cannot_take_and_keeps_property_names() -> None:
    from activities.local_model import _grammar_safe

    schema = {
        "type": "object",
        "properties": {
            "format": {"type": "string", "maxLength": 100_000, "pattern": r"^\s+$"},
            "code": {"type": "string", "maxLength": 8},
        },
        "required": ["format"],
    }
    assert _grammar_safe(schema) == {
        "type": "object",
        "properties": {"format": {"type": "string"}, "code": {"type": "string", "maxLength": 8}},
        "required": ["format"],
    }


@pytest.mark.local_model
async def test_the_agent_turn_schema_does_not_crash_the_local_model() -> None:
    # send_email's schema has a 100,000-character bound and a regex with \s: both once
    # built grammars that killed the worker process
    from steward.config import load_config
    from steward.tools import default_specs
    from steward.turns import parse_turn
    from workflows.agent import model_tools

    example = Path(__file__).resolve().parents[2] / "examples" / "steward.yaml"
    profile = load_config(example).profile("helpdesk", default_specs())
    tools = model_tools(profile)
    activities = LLMActivities({"fast": [Deployment(model=LOCAL_MODEL)]}, allow_paid=False)
    result = await ActivityEnvironment().run(
        activities.complete,
        LLMRequest(
            step="turn-1",
            tier="fast",
            messages=[Message(role="user", content="Email ops@example.com: backup done.")],
            tools=tools,
            max_tokens=120,
        ),
    )
    # Tools reach the local model through the decision schema (its grammar), streamed.
    assert result.path == "schema" and result.tool_calls == []
    assert isinstance(json.loads(result.text)["decision"], dict)
    turn = parse_turn(result.text, [], result.path, tools)
    assert turn.problem is None and (turn.answer is not None or turn.calls)
    assert result.usage.input_tokens > 50 and result.usage.output_tokens > 0


@pytest.mark.local_model
async def test_the_local_model_refuses_native_tools_with_a_clear_error() -> None:
    activities = LLMActivities(
        {"fast": [Deployment(model=LOCAL_MODEL, tool_calling="native")]}, allow_paid=False
    )
    request = LLMRequest(
        step="turn-1",
        tier="fast",
        messages=[Message(role="user", content="hi")],
        tools=[ModelTool(name="noop", parameters={"type": "object", "properties": {}})],
    )
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(activities.complete, request)
    assert (failure.value.type, failure.value.non_retryable) == ("ModelBadRequest", True)
    assert "tool_calling: schema" in failure.value.message


async def test_sampling_settings_reach_llama_cpp_and_free_text_is_penalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deployment's sampling settings reach llama.cpp; free text gets the repeat penalty
    that keeps the small model from looping, grammar-constrained answers do not."""
    register_local_model()
    [handler] = local_handlers()
    assert isinstance(handler, LocalLlama)
    llama = handler._load(LOCAL_MODEL)
    seen: list[dict[str, Any]] = []
    generate = llama.create_chat_completion

    def recorded(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(llama, "create_chat_completion", recorded)
    activities = LLMActivities(
        {
            "fast": [Deployment(model=LOCAL_MODEL)],
            "tuned": [
                Deployment(model=LOCAL_MODEL, sampling=Sampling(frequency_penalty=0.5, top_k=20))
            ],
        },
        allow_paid=False,
    )
    say = [Message(role="user", content="Say hello to Dana.")]
    await ActivityEnvironment().run(
        activities.complete, LLMRequest(step="a", tier="fast", messages=say, max_tokens=8)
    )
    await ActivityEnvironment().run(
        activities.complete,
        LLMRequest(step="b", tier="fast", messages=say, response_schema=SCHEMA, max_tokens=16),
    )
    await ActivityEnvironment().run(
        activities.complete, LLMRequest(step="c", tier="tuned", messages=say, max_tokens=8)
    )
    text, schema, tuned = seen
    assert (text["repeat_penalty"], text["frequency_penalty"], text["top_k"]) == (1.15, 0.0, 40)
    assert schema["repeat_penalty"] == 1.0
    assert (tuned["frequency_penalty"], tuned["top_k"]) == (0.5, 20)
