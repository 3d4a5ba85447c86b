"""A fake model provider for tests: queued answers and errors, every call recorded.

Tests drive the real `complete` activity through the real litellm call path; only the
provider at the end is fake, so error mapping, response_format, tools, streaming and usage
accounting run as they do in production. As with `llm`'s MockModel, responses are queued
and consumed in order, and a call with nothing queued fails loudly instead of inventing an
answer. An answer streams in pieces (a word at a time, `chunk_delay` apart), may call tools
natively, and may fail part way through (`fail_after`), as a provider's stream can. Tests
that run the worker in another process build the fake from a JSON script there and read
back the JSONL file it appends every call to.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import litellm
from litellm import exceptions as errors
from litellm.litellm_core_utils.core_helpers import map_finish_reason
from litellm.types.utils import Choices, GenericStreamingChunk, ModelResponse

from activities.handler import Call, Handler
from activities.llm import PROVIDER_FAKE
from activities.local_model import install_custom_provider

_FAKE_URL: Final = "http://fake.invalid/v1/chat/completions"


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake makes natively: the tool's name as sent, JSON arguments."""

    name: str
    arguments: str = "{}"
    id: str = ""


@dataclass(frozen=True)
class FakeReply:
    """One queued answer. Token counts default to word counts, so they are never zero.

    With `fail_after`, the stream raises `error` once that many characters of `text` went
    out (a connection dropped mid-answer).
    """

    text: str
    finish_reason: str = "stop"
    input_tokens: int | None = None
    output_tokens: int | None = None
    tool_calls: tuple[FakeToolCall, ...] = ()
    fail_after: int | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class FakeCall:
    """One request the fake received, as litellm handed it to the provider."""

    model: str
    messages: list[dict[str, Any]]
    response_format: dict[str, Any] | None
    max_tokens: int | None
    temperature: float | None
    api_base: str | None
    timeout: float | None
    # Recorded so tests can prove the worker's key reached the provider and nothing else.
    api_key: str | None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None


class FakeModelExhausted(errors.BadRequestError, AssertionError):
    """A call arrived with nothing queued: the test expected fewer model calls.

    It is a litellm BadRequestError so litellm passes it through untouched and the
    activity fails it as non-retryable; a worker under test stops at once instead of
    retrying a call that can never succeed.
    """


class FakeModel(Handler):
    """litellm handler for `fake/...` models, answering from a FIFO queue."""

    def __init__(
        self, *, latency: float = 0.0, chunk_delay: float = 0.0, calls_log: Path | None = None
    ) -> None:
        super().__init__()
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.calls_log = calls_log
        self.calls: list[FakeCall] = []
        self._queue: deque[FakeReply | Exception] = deque()
        self._lock = threading.Lock()

    @classmethod
    def from_script(
        cls, path: Path, *, latency: float = 0.0, calls_log: Path | None = None
    ) -> FakeModel:
        """A fake whose queue is read from a JSON list.

        Each entry is the answer's text, or an object: `{"text": ..., "finish_reason":
        ..., "input_tokens": ..., "output_tokens": ...}` for an answer, or `{"error":
        "RateLimitError", "message": ..., "retry_after": 3}` for a provider error (any
        kind `provider_error` knows).
        """
        fake = cls(latency=latency, calls_log=calls_log)
        entries = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a JSON list of responses, got {type(entries)}")
        for index, entry in enumerate(entries):
            if isinstance(entry, dict):
                entry = dict(entry)
            if isinstance(entry, str):
                fake.queue(entry)
            elif isinstance(entry, dict) and "error" in entry:
                fake.queue_error(
                    provider_error(
                        entry["error"],
                        entry.get("message", "scripted failure"),
                        retry_after=entry.get("retry_after"),
                    )
                )
            elif isinstance(entry, dict) and "text" in entry:
                calls = tuple(FakeToolCall(**call) for call in entry.pop("tool_calls", []))
                fake.queue(**entry, tool_calls=calls)
            else:
                raise ValueError(
                    f"{path}[{index}]: expected a string, {{'text': ...}} or {{'error': ...}}"
                )
        return fake

    def queue(
        self,
        text: str,
        *,
        finish_reason: str = "stop",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        tool_calls: tuple[FakeToolCall, ...] = (),
        fail_after: int | None = None,
        error: Exception | None = None,
    ) -> FakeModel:
        """Answer the next unanswered call with text (and native tool calls)."""
        reply = FakeReply(
            text, finish_reason, input_tokens, output_tokens, tool_calls, fail_after, error
        )
        with self._lock:
            self._queue.append(reply)
        return self

    def queue_calls(self, *calls: FakeToolCall, text: str = "") -> FakeModel:
        """Answer the next unanswered call with native tool calls."""
        return self.queue(text, finish_reason="tool_calls", tool_calls=calls)

    def queue_error(self, error: Exception) -> FakeModel:
        """Fail the next unanswered call with error, as the provider would."""
        with self._lock:
            self._queue.append(error)
        return self

    @property
    def pending(self) -> int:
        """How many queued responses no call has consumed yet."""
        return len(self._queue)

    def complete(self, call: Call, response: ModelResponse) -> ModelResponse:
        """Answer from the queue, blocking for the configured latency."""
        reply = self._take(call)
        time.sleep(self.latency)
        return _filled(response, call.model, call.messages, reply)

    async def acomplete(self, call: Call, response: ModelResponse) -> ModelResponse:
        """Answer from the queue after the configured latency."""
        reply = self._take(call)
        await asyncio.sleep(self.latency)
        return _filled(response, call.model, call.messages, reply)

    def stream(self, call: Call) -> Iterator[GenericStreamingChunk]:
        """Answer from the queue as a stream, blocking between pieces."""
        reply = self._take(call)
        time.sleep(self.latency)
        for chunk in _chunks(reply, call.messages):
            yield chunk
            time.sleep(self.chunk_delay)

    async def astream(self, call: Call) -> AsyncIterator[GenericStreamingChunk]:
        """Answer from the queue as a stream, `chunk_delay` between pieces."""
        reply = self._take(call)
        await asyncio.sleep(self.latency)
        for chunk in _chunks(reply, call.messages):
            yield chunk
            await asyncio.sleep(self.chunk_delay)

    def _take(self, request: Call) -> FakeReply:
        params = request.optional_params
        call = FakeCall(
            model=f"{PROVIDER_FAKE}/{request.model}",
            messages=[dict(message) for message in request.messages],
            response_format=params.get("response_format"),
            max_tokens=params.get("max_tokens"),
            temperature=params.get("temperature"),
            api_base=request.api_base,
            timeout=request.seconds(),
            api_key=request.api_key if isinstance(request.api_key, str) else None,
            tools=params.get("tools"),
            tool_choice=params.get("tool_choice"),
        )
        with self._lock:
            self.calls.append(call)
            if self.calls_log is not None:
                with self.calls_log.open("a", encoding="utf-8") as log:
                    log.write(json.dumps(asdict(call)) + "\n")
            if not self._queue:
                last = call.messages[-1].get("content", "") if call.messages else ""
                raise FakeModelExhausted(
                    message=(
                        f"FakeModel has nothing queued for call #{len(self.calls)} to "
                        f"{call.model} (last message: {str(last)[:80]!r}); "
                        "queue an answer with fake.queue(...)"
                    ),
                    model=call.model,
                    llm_provider=PROVIDER_FAKE,
                )
            reply = self._queue.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply


def install_fake_model(fake: FakeModel) -> FakeModel:
    """Route `fake/...` models to fake (replacing any earlier fake); returns it."""
    install_custom_provider(PROVIDER_FAKE, fake)
    return fake


def read_calls_log(path: Path) -> list[FakeCall]:
    """The calls a fake in another process appended to its calls_log."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [FakeCall(**json.loads(line)) for line in lines if line.strip()]


_ERRORS: Final[Mapping[str, tuple[Callable[..., Exception], int]]] = {
    "AuthenticationError": (errors.AuthenticationError, 401),
    "PermissionDeniedError": (errors.PermissionDeniedError, 403),
    "BadRequestError": (errors.BadRequestError, 400),
    "ContextWindowExceededError": (errors.ContextWindowExceededError, 400),
    "ContentPolicyViolationError": (errors.ContentPolicyViolationError, 400),
    "NotFoundError": (errors.NotFoundError, 404),
    "UnprocessableEntityError": (errors.UnprocessableEntityError, 422),
    "RateLimitError": (errors.RateLimitError, 429),
    "InternalServerError": (errors.InternalServerError, 500),
    "BadGatewayError": (errors.BadGatewayError, 502),
    "ServiceUnavailableError": (errors.ServiceUnavailableError, 503),
    "Timeout": (errors.Timeout, 408),
    "APIConnectionError": (errors.APIConnectionError, 0),
}
PROVIDER_ERRORS: Final = tuple(_ERRORS)
"""The litellm exception kinds `provider_error` can build."""


def provider_error(
    kind: str,
    message: str = "injected by FakeModel",
    *,
    retry_after: float | str | None = None,
    model: str = "fake/queued",
) -> Exception:
    """A litellm exception of the named kind, as a provider's HTTP response would raise it.

    retry_after becomes the response's `retry-after` header (seconds or an HTTP date).
    """
    if kind not in _ERRORS:
        raise ValueError(f"unknown provider error {kind!r}; known: {', '.join(PROVIDER_ERRORS)}")
    cls, status = _ERRORS[kind]
    common: dict[str, Any] = {"message": message, "model": model, "llm_provider": PROVIDER_FAKE}
    if cls is errors.APIConnectionError:
        return cls(**common)
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    response = httpx.Response(status, headers=headers, request=httpx.Request("POST", _FAKE_URL))
    return cls(**common, response=response)


def _filled(
    model_response: ModelResponse, model: str, messages: list[Any], reply: FakeReply
) -> ModelResponse:
    choice = model_response.choices[0]
    if not isinstance(choice, Choices):
        raise TypeError(f"expected a non-streaming response from litellm, got {type(choice)}")
    choice.message.content = reply.text
    choice.finish_reason = map_finish_reason(reply.finish_reason)
    model_response.model = f"{PROVIDER_FAKE}/{model}"
    prompt_words = sum(len(str(m.get("content") or "").split()) for m in messages)
    prompt = reply.input_tokens if reply.input_tokens is not None else max(prompt_words, 1)
    completion = (
        reply.output_tokens if reply.output_tokens is not None else max(len(reply.text.split()), 1)
    )
    # ModelResponse declares no `usage` field; litellm reads the attribute set this way.
    setattr(  # noqa: B010
        model_response,
        "usage",
        litellm.Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
    )
    return model_response


_PIECE: Final = re.compile(r"\S+\s*|\s+")


def _usage(reply: FakeReply, messages: list[Any]) -> tuple[int, int]:
    prompt_words = sum(len(str(m.get("content") or "").split()) for m in messages)
    prompt = reply.input_tokens if reply.input_tokens is not None else max(prompt_words, 1)
    completion = (
        reply.output_tokens if reply.output_tokens is not None else max(len(reply.text.split()), 1)
    )
    return prompt, completion


def _chunks(reply: FakeReply, messages: list[Any]) -> Iterator[GenericStreamingChunk]:
    """The reply as a provider streams it: a word at a time, then its tool calls, then the
    finish with usage. A reply set to fail raises its error part way through the text.
    """
    sent = 0
    for piece in _PIECE.findall(reply.text):
        if reply.fail_after is not None and sent >= reply.fail_after:
            break
        sent += len(piece)
        yield {"text": piece, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
    if reply.fail_after is not None:
        raise reply.error or provider_error("APIConnectionError", "connection dropped mid-answer")
    for n, call in enumerate(reply.tool_calls):
        yield {
            "text": "",
            "tool_use": {
                "id": call.id or f"call_fake_{n}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
                "index": n,
            },
            "is_finished": False,
            "finish_reason": "",
            "usage": None,
            "index": 0,
        }
    prompt, completion = _usage(reply, messages)
    yield {
        "text": "",
        "is_finished": True,
        "finish_reason": map_finish_reason(reply.finish_reason),
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        "index": 0,
    }
