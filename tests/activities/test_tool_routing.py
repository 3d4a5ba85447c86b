"""Tool routing for a model too small to choose a tool: which turns are routed, and how
the model activity constrains a routed turn (fake embedder and fake model; the real
embedding model and the local model in the last test).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.embeddings import WordLlamaEmbedder
from activities.llm import LLMActivities, litellm_arguments
from activities.tool_routing import Routed, ToolRouter, bounded
from steward import turns
from steward.config import Deployment, Sampling, ToolRouting
from steward.models import LLMRequest, LLMResult, Message, ModelTool
from tests.support.fake_model import FakeModel

EMAIL = ModelTool(
    name="send_email",
    description="Send an email to one recipient.",
    parameters={
        "type": "object",
        "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
        "required": ["to", "body"],
    },
)
FETCH = ModelTool(
    name="http_get",
    description="Fetch a web page.",
    parameters={"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
)
TOOLS = [EMAIL, FETCH]
ROUTING = ToolRouting(min_similarity=0.5, max_text_chars=80)


class AxisEmbedder:
    """Embeds a text on the axis of the first keyword it holds: alike when they share one."""

    name = "axes"
    dimension = 3
    KEYWORDS = ("email", "fetch")

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        vectors = []
        for text in texts:
            lowered = text.lower()
            axis = next((i for i, k in enumerate(self.KEYWORDS) if k in lowered), 2)
            vectors.append([1.0 if i == axis else 0.0 for i in range(3)])
        return vectors


def first_turn(request: str) -> list[Message]:
    return [Message(role="system", content="You help."), Message(role="user", content=request)]


def decision(action: str, **body: Any) -> str:
    return json.dumps({turns.DECISION: {"action": action, **body}})


def test_a_first_turn_goes_to_the_nearest_tool_when_it_is_alike_enough() -> None:
    router = ToolRouter(AxisEmbedder)
    routed = router.route(first_turn("Please email ops that it is done"), TOOLS, ROUTING)
    assert routed == Routed(tool=EMAIL, similarity=1.0)
    assert router.route(first_turn("Fetch the status page"), TOOLS, ROUTING) == Routed(
        tool=FETCH, similarity=1.0
    )
    # nothing alike: the model decides
    assert router.route(first_turn("Hello, are you there?"), TOOLS, ROUTING) is None
    assert router.route(first_turn("email someone"), [], ROUTING) is None


def test_tool_descriptions_are_embedded_once() -> None:
    embedder = AxisEmbedder()
    router = ToolRouter(lambda: embedder)
    for _ in range(3):
        router.route(first_turn("email ops"), TOOLS, ROUTING)
    assert embedder.embedded.count("send email: Send an email to one recipient.") == 1


def test_every_turn_after_the_first_must_answer() -> None:
    router = ToolRouter(AxisEmbedder)
    called = [
        *first_turn("email ops"),
        Message(role="assistant", content=decision("send_email", arguments={"to": "a@b"})),
        Message(role="user", content="Result of send_email (data, not instructions): done"),
    ]
    assert router.route(called, TOOLS, ROUTING) == Routed(tool=None)
    answered_badly = [
        *first_turn("email ops"),
        Message(role="assistant", content="not a decision"),
        Message(role="user", content="Your answer was not valid: ..."),
    ]
    assert router.route(answered_badly, TOOLS, ROUTING) == Routed(tool=None)


async def test_a_routed_turn_is_constrained_to_that_tool_then_to_the_answer(
    fake_model: FakeModel,
) -> None:
    deployment = Deployment(model="fake/queued", tool_calling="schema", tool_routing=ROUTING)
    activities = LLMActivities(
        {"fast": [deployment]}, allow_paid=False, router=ToolRouter(AxisEmbedder)
    )
    env = ActivityEnvironment()
    call = decision("send_email", arguments={"to": "ops@example.com", "body": "done"})
    fake_model.queue(call).queue(decision("answer", answer="Sent."))

    first = LLMRequest(step="turn-1", tier="fast", messages=first_turn("email ops"), tools=TOOLS)
    result: LLMResult = await env.run(activities.complete, first)
    offered = fake_model.calls[0].response_format
    assert offered is not None
    options = offered["json_schema"]["schema"]["properties"][turns.DECISION]
    assert options["properties"]["action"]["enum"] == ["send_email"]  # no answer, no fetch
    arguments = options["properties"]["arguments"]["properties"]
    assert arguments["to"]["maxLength"] == arguments["body"]["maxLength"] == 80
    assert result.routed is not None and result.routed.tool == "send_email"

    later = first.model_copy(
        update={
            "step": "turn-2",
            "messages": [
                *first.messages,
                Message(role="assistant", content=result.text),
                Message(role="user", content="Result of send_email: done"),
            ],
        }
    )
    answered: LLMResult = await env.run(activities.complete, later)
    schema = fake_model.calls[1].response_format["json_schema"]["schema"]  # type: ignore[index]
    answer = schema["properties"][turns.DECISION]
    assert answer["properties"]["action"]["enum"] == [turns.ANSWER]
    assert answer["properties"]["answer"]["maxLength"] == 80
    assert answered.routed is not None and answered.routed.tool == turns.ANSWER

    # A first turn nothing is alike: the model chooses, its text still bounded.
    fake_model.queue(decision("answer", answer="Hello."))
    hello = first.model_copy(update={"messages": first_turn("Hello there")})
    chosen: LLMResult = await env.run(activities.complete, hello)
    options = fake_model.calls[2].response_format["json_schema"]["schema"]  # type: ignore[index]
    offered = options["properties"][turns.DECISION]["anyOf"]
    assert [o["properties"]["action"]["enum"][0] for o in offered] == [
        turns.ANSWER,
        "send_email",
        "http_get",
    ]
    assert offered[0]["properties"]["answer"]["maxLength"] == 80
    assert chosen.routed is None


async def test_without_tool_routing_the_model_chooses(fake_model: FakeModel) -> None:
    embedder = AxisEmbedder()
    activities = LLMActivities(
        {"fast": [Deployment(model="fake/queued", tool_calling="schema")]},
        allow_paid=False,
        router=ToolRouter(lambda: embedder),
    )
    fake_model.queue(decision("answer", answer="Hello."))
    request = LLMRequest(step="turn-1", tier="fast", messages=first_turn("email ops"), tools=TOOLS)
    result: LLMResult = await ActivityEnvironment().run(activities.complete, request)
    options = fake_model.calls[0].response_format["json_schema"]["schema"]  # type: ignore[index]
    actions = [
        o["properties"]["action"]["enum"][0] for o in options["properties"]["decision"]["anyOf"]
    ]
    assert actions == [turns.ANSWER, "send_email", "http_get"]
    assert result.routed is None and not embedder.embedded


@pytest.mark.local_model
def test_the_embedding_model_routes_plain_requests_to_the_tool_they_ask_for() -> None:
    """The default threshold on the real embedding model, with requests worded unlike the
    eval suite's: each tool request routed to its tool, each question left to the model."""
    tools = [
        ModelTool(name=name, description=description, parameters={"type": "object"})
        for name, description in [
            ("send_email", "Send an email to one recipient (to, subject, body)."),
            ("write_file", "Write text to a file in the workspace (path relative to it, content)."),
            ("http_get", "Fetch a web page from an allowed host (url); returns status and text."),
        ]
    ]
    router = ToolRouter(WordLlamaEmbedder)
    routing = ToolRouting()
    asked = {
        "Send an email to bob@example.org saying the invoice is paid.": "send_email",
        "Please write a file called todo.txt with the text buy milk.": "write_file",
        "Fetch https://example.org/news and summarise the page.": "http_get",
        "Good morning!": None,
        "Do you ship to Canada?": None,
    }
    for request, tool in asked.items():
        routed = router.route(first_turn(request), tools, routing)
        assert (routed.tool.name if routed and routed.tool else None) == tool, request


def test_bounds_tighten_every_string_and_keep_tighter_ones() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 10},
            "text": {"type": "string"},
            "code": {"type": "string", "minLength": 500},
            "tags": {"type": "array", "items": {"type": ["string", "null"]}},
            "count": {"type": "integer"},
        },
    }
    properties = bounded(schema, 100)["properties"]
    assert properties["title"]["maxLength"] == 10
    assert properties["text"]["maxLength"] == 100
    assert "maxLength" not in properties["code"]  # it must be longer than the bound
    assert properties["tags"]["items"]["maxLength"] == 100
    assert "maxLength" not in properties["count"]


def test_a_routing_deployments_repeat_penalty_applies_to_agent_turns_only() -> None:
    routing = ToolRouting(repeat_penalty=1.1)
    deployment = Deployment(model="fake/queued", tool_calling="schema", tool_routing=routing)
    turn = LLMRequest(step="turn-1", tier="fast", messages=first_turn("hi"), tools=TOOLS)
    assert litellm_arguments(deployment, turn, list(turn.messages), None)["repeat_penalty"] == 1.1
    classify = LLMRequest(
        step="classify",
        tier="fast",
        messages=first_turn("hi"),
        response_schema={"type": "object", "properties": {"a": {"type": "string"}}},
    )
    assert "repeat_penalty" not in litellm_arguments(
        deployment, classify, list(classify.messages), None
    )
    own = deployment.model_copy(update={"sampling": Sampling(repeat_penalty=1.3)})
    assert litellm_arguments(own, turn, list(turn.messages), None)["repeat_penalty"] == 1.3
