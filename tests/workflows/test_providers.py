"""Real providers' rules, through real runs: OpenAI, Anthropic and Gemini, driven by litellm.

Each deployment here is a provider's litellm prefix (`openai/`, `anthropic/`, `gemini/`)
pointed at a loopback stub of that provider's API (`tests.support.providers`), which
refuses any request breaking the provider's documented rules (schema root and keywords,
strict mode, tool declarations, how calls and results pair up) and answers in the
provider's own streaming wire format. Through each: a playbook step (the support reply:
a structured classification and a free-text draft), an agent turn that calls tools
natively (two calls in one turn, each answered in the next request), the same turn on the
schema path, and a handoff to a specialist. A run passes only if every request was
accepted and the workflow read the same typed turn it would from any other model. Workers
are built by `default_activities`, as a real worker builds them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest
from temporalio.client import Client, WorkflowHistory

from steward.config import StewardConfig, ToolCalling
from steward.models import LLMResult, RunResult
from steward.runs import decide, start_run
from tests.support.histories import readable_history
from tests.support.providers import (
    PROVIDERS,
    ProviderStub,
    Reply,
    Responder,
    Seen,
    anthropic_structured_problems,
    gemini_openapi_problems,
    openai_strict_problems,
    running,
)
from tests.support.stack import running_workers, wait_for_approval
from tests.support.web_server import PAGE, Site, web_server
from workers.build import default_activities

KEY_ENV = "STEWARD_TEST_PROVIDER_KEY"
TICKET = "From: Dana <dana@example.com>\nSubject: Late parcel\n\nMy parcel is a week late."
CLASSIFICATION = {"category": "shipping", "urgency": "high"}
DRAFT = (
    "Dear Dana, we are sorry your parcel is late; it ships today. Best regards, The Support Team"
)


@pytest.fixture(autouse=True)
def _provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "stub-key-not-a-secret")


@pytest.fixture
def site() -> Iterator[Site]:
    with web_server() as running_site:
        yield running_site


def on_stub(
    config: StewardConfig, provider: str, stub: ProviderStub, tool_calling: ToolCalling, tmp: Path
) -> StewardConfig:
    """The config with every tier on the provider's model, served by its stub."""
    model = PROVIDERS[provider][1]
    data = config.model_dump()
    deployment = {
        "model": model,
        "api_base": stub.base_url,
        "api_key_env": KEY_ENV,
        "tool_calling": tool_calling,
        "timeout_seconds": 30,
    }
    data["tiers"] = {name: [deployment] for name in data["tiers"]}
    data["http"]["allow_hosts"] = ["127.0.0.1"]
    data["files"] = {"workspace": str(tmp / "ws"), "published": str(tmp / "pub")}
    return StewardConfig.model_validate(data)


def decision(action: str, **fields: Any) -> str:
    return json.dumps({"decision": {"action": action, **fields}})


def agent_turns(site: Site, *, native: bool) -> Responder:
    """The helpdesk fetches two pages (natively in one turn; on the schema path one per
    turn), then answers with what they said.
    """
    pages = [site.url("/page"), site.url("/page?again")]

    def respond(seen: Seen) -> Reply:
        # On the schema path a tool's result comes back as a user message, quoted as data.
        done = len(seen.tool_results) + sum(
            1 for role, text in seen.messages if role == "user" and text.startswith("Result of")
        )
        if native:
            assert seen.schema is None and "http_get" in seen.tools
            if done == 0:
                return Reply(calls=tuple(("http_get", {"url": url}) for url in pages))
            return Reply(text=f"Both pages say: {PAGE}.")
        assert seen.schema is not None and not seen.tools
        if done < len(pages):
            return Reply(text=decision("http_get", arguments={"url": pages[done]}))
        return Reply(text=decision("answer", answer=f"Both pages say: {PAGE}."))

    return respond


def support_steps(seen: Seen) -> Reply:
    """A classification when constrained to a schema; otherwise the draft."""
    if seen.schema is not None:
        assert set(seen.schema["properties"]) == {"category", "urgency"}
        return Reply(text=json.dumps(CLASSIFICATION))
    return Reply(text=DRAFT)


def handoff_turns(seen: Seen) -> Reply:
    """The helpdesk hands the question to the researcher, which answers; then it answers."""
    if "You research one question" in seen.system:
        assert "handoff" not in seen.tools  # the researcher has no specialists
        return Reply(text="Refunds take 14 days.")
    if not seen.tool_results:
        task = {"specialist": "researcher", "task": "How long do refunds take?"}
        return Reply(calls=(("handoff", {"tasks": [task]}),))
    assert "Refunds take 14 days." in seen.tool_results[0]
    return Reply(text="The researcher says refunds take 14 days.")


def stub_for(provider: str, respond: Responder) -> ProviderStub:
    stub_class, _ = PROVIDERS[provider]
    return stub_class(respond)


def accepted(stub: ProviderStub, count: int) -> None:
    assert [r.problems for r in stub.refused] == []
    assert len(stub.requests) == count


@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_a_playbook_step_through_each_provider(
    client: Client, config: StewardConfig, task_queue: str, tmp_path: Path, provider: str
) -> None:
    with running(stub_for(provider, support_steps)) as stub:
        config = on_stub(config, provider, stub, "auto", tmp_path)
        async with running_workers(
            client, config, task_queue, default_activities(config, allow_paid=False)
        ):
            handle = await start_run(
                client, config, "support-reply", TICKET, "dana-at-support", task_queue=task_queue
            )
            request = await wait_for_approval(handle)
            assert request.arguments["body"] == DRAFT  # the streamed draft, whole
            await decide(client, request.id, "alice", approve=True)
            result: RunResult = await handle.result()

    accepted(stub, 2)
    assert result.status == "completed"
    assert (result.details["category"], result.details["urgency"]) == ("shipping", "high")
    assert [(c.step, c.input_tokens, c.output_tokens) for c in result.model_calls] == [
        ("classify", 20, 8),
        ("draft", 20, 8),
    ]
    if provider == "openai":  # strict structured output, as OpenAI documents it
        classify = stub.requests[0].body["response_format"]["json_schema"]
        assert classify["strict"] is True and classify["schema"]["additionalProperties"] is False


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("tool_calling", ["native", "schema"])
async def test_an_agent_turn_with_tools_through_each_provider(
    client: Client,
    config: StewardConfig,
    task_queue: str,
    tmp_path: Path,
    site: Site,
    provider: str,
    tool_calling: ToolCalling,
) -> None:
    native = tool_calling == "native"
    with running(stub_for(provider, agent_turns(site, native=native))) as stub:
        config = on_stub(config, provider, stub, tool_calling, tmp_path)
        async with running_workers(
            client, config, task_queue, default_activities(config, allow_paid=False)
        ):
            handle = await start_run(
                client,
                config,
                "helpdesk",
                "What do the two pages say?",
                "dana",
                task_queue=task_queue,
            )
            result: RunResult = await handle.result()
            history = await readable_history(handle)

    accepted(stub, 2 if native else 3)
    assert result.status == "completed" and result.answer == f"Both pages say: {PAGE}."
    assert [(a.call_id, a.tool, a.outcome) for a in result.actions] == (
        [("call-1", "http_get", "done"), ("call-1.2", "http_get", "done")]
        if native
        else [("call-1", "http_get", "done"), ("call-2", "http_get", "done")]
    )
    assert site.requests == ["/page", "/page?again"]
    # History records which path each model call took.
    assert [call.path for call in model_results(history)] == [tool_calling] * len(stub.requests)
    assert [call.path for call in result.model_calls] == [tool_calling] * len(stub.requests)


def model_results(history: WorkflowHistory) -> list[LLMResult]:
    """The results of the run's `complete` activities, as history holds them."""
    kinds = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    return [
        LLMResult.model_validate_json(
            e.activity_task_completed_event_attributes.result.payloads[0].data
        )
        for e in history.events
        if e.HasField("activity_task_completed_event_attributes")
        and kinds[e.activity_task_completed_event_attributes.scheduled_event_id] == "complete"
    ]


@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_a_handoff_through_each_provider(
    client: Client, config: StewardConfig, task_queue: str, tmp_path: Path, provider: str
) -> None:
    with running(stub_for(provider, handoff_turns)) as stub:
        config = on_stub(config, provider, stub, "native", tmp_path)
        async with running_workers(
            client, config, task_queue, default_activities(config, allow_paid=False)
        ):
            handle = await start_run(
                client,
                config,
                "helpdesk",
                "How long do refunds take?",
                "dana",
                task_queue=task_queue,
            )
            result: RunResult = await handle.result()

    accepted(stub, 3)
    assert result.status == "completed"
    assert result.answer == "The researcher says refunds take 14 days."
    (handed,) = result.actions
    assert (handed.tool, handed.outcome) == ("handoff", "done")
    assert "Refunds take 14 days." in handed.output
    assert result.ledger.model_calls == 3  # the specialist's call rolled up into the parent


# --- the stubs refuse what the providers refuse ---------------------------------------------

OLD_DECISION = {  # the turn schema Steward sent before: a union at the root
    "anyOf": [
        {
            "type": "object",
            "properties": {"action": {"const": "answer"}, "answer": {"type": "string"}},
            "required": ["action", "answer"],
        }
    ]
}


def test_openai_strict_rules() -> None:
    assert openai_strict_problems(OLD_DECISION, "s")[0].startswith("s: the root must be an object")
    loose = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    problems = openai_strict_problems(loose | {"required": ["a"]}, "s")
    assert any("additionalProperties" in p for p in problems)
    assert any("missing ['b']" in p for p in problems)
    bounded = {"type": "string", "maxLength": 10}
    closed = {
        "type": "object",
        "properties": {"a": bounded},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert openai_strict_problems(closed, "s") == [
        "s.properties.a: maxLength not permitted in strict mode"
    ]


def test_anthropic_structured_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1},
            "xs": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "o": {"type": "object", "properties": {}},
        },
        "required": ["n", "xs", "o"],
        "additionalProperties": False,
    }
    problems = anthropic_structured_problems(schema, "s")
    assert "s.properties.n: minimum is not supported" in problems
    assert "s.properties.xs: minItems must be 0 or 1" in problems
    assert "s.properties.o: objects must set additionalProperties to false" in problems
    recursive = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"next": {"$ref": "#/$defs/node"}},
                "required": ["next"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    }
    assert any("recursive" in p for p in anthropic_structured_problems(recursive, "s"))


def test_gemini_openapi_rules() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": ["string", "null"]}, "b": {"const": "x"}},
        "required": ["a", "c"],
        "additionalProperties": False,
    }
    problems = gemini_openapi_problems(schema, "p")
    assert "Unknown name 'additionalProperties' at 'p': Cannot find field." in problems
    assert "Unknown name 'const' at 'p.properties.b': Cannot find field." in problems
    assert any("p.properties.a.type" in p for p in problems)
    assert "p.required: property 'c' is not defined" in problems


async def test_each_stub_refuses_a_request_its_provider_would() -> None:
    """Sent by litellm as a careless client would: each is refused with a 400."""
    calls: dict[str, dict[str, Any]] = {
        # OpenAI: a union at the root of a strict response schema.
        "openai": {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "turn", "schema": OLD_DECISION, "strict": True},
            }
        },
        # Anthropic and Gemini: a tool call left unanswered before the next user turn.
        "anthropic": {"messages": UNANSWERED},
        "gemini": {"messages": UNANSWERED},
    }
    for provider, extra in calls.items():
        stub_class, model = PROVIDERS[provider]
        with running(stub_class(lambda seen: Reply(text="never"))) as stub:
            with pytest.raises(litellm.exceptions.BadRequestError):
                await litellm.acompletion(
                    model=model,
                    api_base=stub.base_url,
                    api_key="stub",
                    num_retries=0,
                    max_tokens=10,
                    messages=extra.pop("messages", [{"role": "user", "content": "hi"}]),
                    tools=TOOLS if provider != "openai" else None,
                    **extra,
                )
            assert len(stub.refused) == 1, provider


TOOLS = [{"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}}]
UNANSWERED = [
    {"role": "user", "content": "hi"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{uuid.uuid4().hex[:8]}",
                "type": "function",
                "function": {"name": "noop", "arguments": "{}"},
            }
        ],
    },
    {"role": "user", "content": "and now?"},
]
