"""A first turn's tool, chosen by similarity for a model too small to choose it.

Which tool a request needs ("Email ops@... that the backup finished": send_email) is a
judgement a 135M model does not make: offered the decision schema, it answers in words.
It does fill in a tool's arguments well once asked for that tool. So, for a deployment
with `tool_routing`, the request and each offered tool's name and description are
embedded (the retrieval's embedding model, on the worker), and a nearest tool at least
`min_similarity` alike is the one the model must call; below it the model decides. Once
it has called a tool it would call it again, turn after turn, so the turn after a call is
asked for the answer, and so is every later turn (after an answer that was not valid
or failed a guardrail, the model writes the answer again). See
`steward.config.ToolRouting`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from activities.embeddings import Embedder, WordLlamaEmbedder
from steward.config import ToolRouting
from steward.models import Message, ModelTool


@dataclass(frozen=True)
class Routed:
    """What a turn must do: call `tool` (a first turn; `similarity` says how alike the
    request and its description were), or answer (`tool` None: every later turn).
    """

    tool: ModelTool | None
    similarity: float | None = None


class ToolRouter:
    """Embeds requests and tool descriptions; the embedding model is loaded on first use."""

    def __init__(self, embedder: Callable[[], Embedder] = WordLlamaEmbedder) -> None:
        """`embedder` makes the embedding model when a routed deployment is first called."""
        self._make = embedder
        self._embedder: Embedder | None = None
        self._described: dict[str, list[float]] = {}
        # Model activities route from worker threads, several at once.
        self._lock = threading.Lock()

    def route(
        self, messages: Sequence[Message], tools: Sequence[ModelTool], routing: ToolRouting
    ) -> Routed | None:
        """What this turn must do, or None for the model to decide."""
        if not tools:
            return None
        request = first_turn_request(messages)
        if request is None:
            return Routed(tool=None)  # a later turn: after a call, a refusal or a retry
        with self._lock:
            embedder = self._load()
            missing = [tool for tool in tools if _description(tool) not in self._described]
            for tool, vector in zip(
                missing, embedder.embed([_description(tool) for tool in missing]), strict=True
            ):
                self._described[_description(tool)] = vector
            (asked,) = embedder.embed([request])
            described = [self._described[_description(tool)] for tool in tools]
        pairs = zip(described, tools, strict=True)
        similarity, nearest = max(((_dot(asked, v), tool) for v, tool in pairs), key=_first)
        if similarity < routing.min_similarity:
            return None
        return Routed(tool=nearest, similarity=similarity)

    def _load(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._make()
        return self._embedder


def first_turn_request(messages: Sequence[Message]) -> str | None:
    """The request of a first turn (the last user message), or None on a later turn."""
    if any(message.role in ("assistant", "tool") for message in messages):
        return None
    asked = [message.content for message in messages if message.role == "user"]
    return asked[-1] if asked and asked[-1].strip() else None


def bounded(schema: Any, max_chars: int) -> Any:
    """`schema` with every string in it at most `max_chars` long (a tighter bound kept), so
    a small model's text ends inside the grammar instead of at its token limit.
    """
    return _bounded(schema, max_chars)


def _bounded(schema: Any, max_chars: int) -> Any:
    if isinstance(schema, list):
        return [_bounded(item, max_chars) for item in schema]
    if not isinstance(schema, dict):
        return schema
    bound: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            bound[key] = {name: _bounded(sub, max_chars) for name, sub in value.items()}
        else:
            bound[key] = _bounded(value, max_chars)
    kinds = schema.get("type")
    shortest = schema.get("minLength")
    if isinstance(shortest, int) and shortest > max_chars:
        return bound  # cannot be bounded tighter than it must be long
    if kinds == "string" or (isinstance(kinds, list) and "string" in kinds):
        limit = schema.get("maxLength")
        bound["maxLength"] = min(limit, max_chars) if isinstance(limit, int) else max_chars
    return bound


def _first(pair: tuple[float, ModelTool]) -> float:
    return pair[0]


def _description(tool: ModelTool) -> str:
    return f"{tool.name.replace('_', ' ')}: {tool.description}"


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    # Both are unit vectors (every Embedder normalises), so this is their cosine.
    return sum(x * y for x, y in zip(a, b, strict=True))
