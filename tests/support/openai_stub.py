"""An OpenAI-compatible HTTP server on loopback, answering from a queue of scripted replies.

A request with `"stream": true` is answered with server-sent events, as OpenAI streams.

The fake litellm provider (`fake_model.py`) proves the activity's logic but skips the part
that breaks in production: litellm's OpenAI client speaking HTTP to a server and turning
the server's status codes and JSON error bodies into exceptions. This stub is that
server. It serves `POST /v1/chat/completions` on 127.0.0.1 (a free port), answers each
request with the next scripted reply (a completion with given usage, or one of the error
shapes real providers send, with their status codes and headers), and records every
request, headers included, so a test can check which key went out. A request with
nothing queued gets a 400 that says so: the test expected fewer calls, and retrying
cannot help.

It runs in a thread of its own (stdlib `ThreadingHTTPServer`), so it answers both async
tests, whose event loop is busy with the activity, and synchronous CLI tests, which run
their own loop inside the command.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

COMPLETIONS_PATH: Final = "/v1/chat/completions"
KEY_PLACEHOLDER: Final = "{api_key}"
"""In an error's body, replaced by the key the request carried (some servers echo it)."""


@dataclass(frozen=True)
class Completion:
    """A successful answer with the usage the server reports for it."""

    text: str
    prompt_tokens: int = 12
    completion_tokens: int = 4
    finish_reason: str = "stop"
    model: str | None = None
    """The `model` the response names; None echoes the request's, as most servers do."""
    delay: float = 0.0
    """Seconds to wait before answering, to exercise client timeouts."""


@dataclass(frozen=True)
class ErrorReply:
    """A failed answer exactly as it goes on the wire: status, headers and raw body."""

    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received. Header names are lower-cased."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]


def openai_error(
    status: int,
    message: str,
    *,
    error_type: str | None,
    code: str | None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ErrorReply:
    """An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

    extra adds provider-specific fields next to those four (Azure adds `innererror`).
    """
    error = {"message": message, "type": error_type, "param": param, "code": code}
    error |= extra or {}
    return ErrorReply(status, json.dumps({"error": error}), dict(headers or {}))


# Bodies copied from what the providers send (keys and ids replaced), so litellm's
# message-sniffing exception mapping sees the text it sees in production.
ERROR_SHAPES: Final[Mapping[str, ErrorReply]] = {
    "invalid_api_key": openai_error(
        401,
        "Incorrect API key provided: sk-proj-****************************wxyz. You can find "
        "your API key at https://platform.openai.com/account/api-keys.",
        error_type="invalid_request_error",
        code="invalid_api_key",
    ),
    "forbidden": openai_error(
        403,
        "Country, region, or territory not supported",
        error_type="request_forbidden",
        code="unsupported_country_region_territory",
    ),
    "model_not_found": openai_error(
        404,
        "The model `gpt-9-turbo` does not exist or you do not have access to it.",
        error_type="invalid_request_error",
        code="model_not_found",
    ),
    "context_length_exceeded": openai_error(
        400,
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 131072 tokens. Please reduce the length of the messages.",
        error_type="invalid_request_error",
        param="messages",
        code="context_length_exceeded",
    ),
    "content_policy_violation": openai_error(
        400,
        "Your request was rejected as a result of our safety system. Your prompt may "
        "contain text that is not allowed by our safety system.",
        error_type="invalid_request_error",
        code="content_policy_violation",
    ),
    # Azure OpenAI's shape: no type, the code says content_filter, plus innererror.
    "content_filter": openai_error(
        400,
        "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy. Please modify your prompt and retry.",
        error_type=None,
        param="prompt",
        code="content_filter",
        extra={
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {"violence": {"filtered": True, "severity": "high"}},
            },
        },
    ),
    "unprocessable_entity": openai_error(
        422,
        "Unprocessable Entity: messages[1].content must be a string or an array of parts",
        error_type="invalid_request_error",
        param="messages",
        code="invalid_value",
    ),
    "rate_limit_exceeded": openai_error(
        429,
        "Rate limit reached for gpt-4o-mini in organization org-stub on tokens per min "
        "(TPM): Limit 200000, Used 199500, Requested 1200. Please try again in 7s.",
        error_type="tokens",
        code="rate_limit_exceeded",
        headers={"retry-after": "7", "x-ratelimit-remaining-tokens": "500"},
    ),
    "server_error": openai_error(
        500,
        "The server had an error while processing your request. Sorry about that!",
        error_type="server_error",
        code=None,
    ),
    # A 502 comes from the proxy in front of the API, as HTML, not from the API itself.
    "bad_gateway": ErrorReply(
        502,
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>"
        "502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n"
        "</html>\r\n",
        content_type="text/html",
    ),
    "service_unavailable": openai_error(
        503,
        "The engine is currently overloaded, please try again later.",
        error_type="server_error",
        code=None,
        headers={"retry-after": "2"},
    ),
}


class OpenAIStub:
    """The server. Queue replies with `reply`/`fail`, read `requests` afterwards."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Completion | ErrorReply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the stub listens on (it must be started)."""
        if self._server is None:
            raise RuntimeError("OpenAIStub is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What a deployment's api_base should be to reach the stub."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pending(self) -> int:
        """How many queued replies no request has consumed yet."""
        return len(self._queue)

    def reply(
        self,
        text: str,
        *,
        prompt_tokens: int = 12,
        completion_tokens: int = 4,
        finish_reason: str = "stop",
        model: str | None = None,
        delay: float = 0.0,
    ) -> OpenAIStub:
        """Answer the next request with text and the given usage (see `Completion`)."""
        return self._append(
            Completion(text, prompt_tokens, completion_tokens, finish_reason, model, delay)
        )

    def fail(
        self, shape: str | ErrorReply, *, headers: Mapping[str, str] | None = None
    ) -> OpenAIStub:
        """Fail the next request with a named `ERROR_SHAPES` entry or a custom error."""
        error = ERROR_SHAPES[shape] if isinstance(shape, str) else shape
        if headers is not None:
            error = replace(error, headers=dict(headers))
        return self._append(error)

    def _append(self, item: Completion | ErrorReply) -> OpenAIStub:
        with self._lock:
            self._queue.append(item)
        return self

    def start(self) -> OpenAIStub:
        """Listen on a free loopback port and serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: stop() waits up to one interval for the loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def _take(self, request: RecordedRequest) -> Completion | ErrorReply:
        """Record a request and pick its reply (called from the server's threads)."""
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
            if request.path != COMPLETIONS_PATH:
                return openai_error(
                    404,
                    f"OpenAIStub serves only POST {COMPLETIONS_PATH}, not {request.path}",
                    error_type="invalid_request_error",
                    code="unknown_url",
                )
            if self._queue:
                return self._queue.popleft()
        return openai_error(
            400,
            f"OpenAIStub has nothing queued for request #{number}; queue a reply with "
            "stub.reply(...) or stub.fail(...)",
            error_type="invalid_request_error",
            code="stub_exhausted",
        )


@contextmanager
def running_stub() -> Iterator[OpenAIStub]:
    """A started stub, stopped on exit; what the test fixtures yield."""
    stub = OpenAIStub().start()
    try:
        yield stub
    finally:
        stub.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out hangs up before a delayed answer is written: that is what
        # the delay is for, not a fault in the stub.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as real servers do, so pooled client connections are exercised.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"unparsed": raw.decode("utf-8", "replace")}
            request = RecordedRequest(
                method="POST",
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            item = stub._take(request)
            if isinstance(item, Completion):
                time.sleep(item.delay)
                if body.get("stream"):
                    self._stream(_completion_chunks(item, body))
                    return
                payload = json.dumps(_completion_body(item, body)).encode()
                self._write(HTTPStatus.OK, payload, "application/json", {})
                return
            key = request.headers.get("authorization", "").removeprefix("Bearer ")
            text = item.body.replace(KEY_PLACEHOLDER, key)
            self._write(item.status, text.encode(), item.content_type, item.headers)

        def _stream(self, chunks: list[dict[str, Any]]) -> None:
            """Server-sent events, as OpenAI streams a completion: one chunk per event,
            then `[DONE]` (the connection closes after it).
            """
            self.send_response(HTTPStatus.OK)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _write(
            self, status: int, payload: bytes, content_type: str, headers: Mapping[str, str]
        ) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            # Tests read `stub.requests`; a stderr line per request would only be noise.
            return

    return Handler


def _completion_body(item: Completion, request: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-stub-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": item.model or request.get("model", "stub"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": item.text, "refusal": None},
                "logprobs": None,
                "finish_reason": item.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": item.prompt_tokens,
            "completion_tokens": item.completion_tokens,
            "total_tokens": item.prompt_tokens + item.completion_tokens,
        },
        "system_fingerprint": None,
    }


def _completion_chunks(item: Completion, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The completion as OpenAI streams it: the role, the text a word at a time, the finish,
    and (when asked for with `stream_options.include_usage`) a last chunk with the usage.
    """
    common = {
        "id": f"chatcmpl-stub-{time.monotonic_ns()}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": item.model or request.get("model", "stub"),
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**common, "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in re.findall(r"\S+\s*|\s+", item.text)]
    chunks.append(chunk({}, item.finish_reason))
    if (request.get("stream_options") or {}).get("include_usage"):
        usage = {
            "prompt_tokens": item.prompt_tokens,
            "completion_tokens": item.completion_tokens,
            "total_tokens": item.prompt_tokens + item.completion_tokens,
        }
        chunks.append({**common, "choices": [], "usage": usage})
    return chunks
