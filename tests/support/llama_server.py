"""Run llama-cpp-python's OpenAI-compatible server (`llama_cpp.server`) so Steward can call it.

Two things stop the stock `python -m llama_cpp.server` from serving Steward's requests,
and this launcher fixes both, then runs the server's own FastAPI app with uvicorn. It
takes the same arguments: `python -m tests.support.llama_server --model GGUF --port N ...`.

- It crashes. llama.cpp puts the weights in ggml's AMX buffer on CPUs that have AMX, and
  the first prompt longer than one token segfaults (measured: exit 139 on the first chat
  request). The model is loaded without extra buffer types, as `activities.local_model`
  does in-process (its `_without_weight_repacking`, repeated here because importing that
  module imports litellm, which would add seconds to every server start).
- It refuses OpenAI's structured-output form. Its request model allows only
  `response_format: {"type": "json_object", "schema": ...}` and answers OpenAI's
  `{"type": "json_schema", "json_schema": {"schema": ...}}`, which litellm sends, with a
  validation error dressed as HTTP 500 (upstream: abetlen/llama-cpp-python#1677, open).
  A small ASGI middleware rewrites the one into the other, as `activities.local_model`
  does for the in-process model.
- It refuses an assistant message that made tool calls with `"content": null`, which is
  how OpenAI's format (and litellm) sends one; the middleware sends `""` instead.

Native tool calling needs `--chat_format chatml-function-calling` (SmolLM2's own template
knows no tools: given `tools` with `tool_choice: auto` it ignores them). Even then the
server cannot stream an automatic tool choice ("Automatic streaming tool choice is not
supported"), so its deployment sets `stream: false`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CHAT_PATH = "/v1/chat/completions"


class OpenAIJsonSchema:
    """ASGI middleware: OpenAI's request forms -> the ones llama-cpp-python's server takes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = translated(b"".join(chunks))
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body, only a disconnect can come
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


def translated(body: bytes) -> bytes:
    """The request body as llama-cpp-python's server takes it (see the module)."""
    try:
        request = json.loads(body)
    except ValueError:
        return body  # the server's own validation reports it
    if not isinstance(request, dict):
        return body
    request = _fixed(request)
    response_format: Any = request.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return json.dumps(request).encode()
    schema = (response_format.get("json_schema") or {}).get("schema")
    request["response_format"] = {"type": "json_object", "schema": schema or {}}
    return json.dumps(request).encode()


def _fixed(request: dict[str, Any]) -> dict[str, Any]:
    for message in request.get("messages") or ():
        if (
            isinstance(message, dict)
            and message.get("tool_calls")
            and message.get("content") is None
        ):
            message["content"] = ""
    return request


@contextmanager
def _without_extra_buffers() -> Iterator[None]:
    import llama_cpp.llama_cpp as low_level

    original = low_level.llama_model_default_params

    def params_without_extra_buffers() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = params_without_extra_buffers
    try:
        yield
    finally:
        low_level.llama_model_default_params = original


def main(argv: Sequence[str] | None = None) -> None:
    """Parse llama_cpp.server's arguments, load the model safely, serve until terminated."""
    from llama_cpp.server.app import create_app
    from llama_cpp.server.cli import add_args_from_model
    from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

    parser = argparse.ArgumentParser(description=__doc__)
    add_args_from_model(parser, Settings)
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    # What llama_cpp.server.cli.parse_model_from_args does; its annotations are wrong.
    server = ServerSettings(**{k: v for k, v in given.items() if k in ServerSettings.model_fields})
    model = ModelSettings(**{k: v for k, v in given.items() if k in ModelSettings.model_fields})
    # create_app loads the model; the patch is needed only while it does.
    with _without_extra_buffers():
        app = create_app(server_settings=server, model_settings=[model])
    uvicorn.run(OpenAIJsonSchema(app), host=server.host, port=server.port, log_level="warning")


if __name__ == "__main__":
    main()
