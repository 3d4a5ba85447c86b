"""The codec server: the Temporal UI and CLI show and send decrypted payloads through it.

History holds payloads encrypted (`steward.codec`), so the Temporal UI and the `temporal`
CLI see ciphertext unless they can ask for plaintext. Temporal's codec server protocol is
how they ask: `POST /decode` and `POST /encode`, each taking and answering
`{"payloads": [...]}`, payloads in protobuf JSON (metadata values and data in base64). The
UI calls /decode from the browser for each payload it shows, and /encode for the input of
a signal or update a person sends from it, so that input reaches history encrypted too;
the CLI does the same with `--codec-endpoint`. The endpoints are also served under a
namespace prefix (`/NAMESPACE/decode`), for a CLI endpoint templated with `{namespace}`:
one key ring serves every namespace.

A browser calls it cross-origin, after a CORS preflight (OPTIONS): only the origins
given (the UI's) are answered, with the headers the UI sends (`Content-Type`,
`X-Namespace`, `Authorization`). With a token, every encode and decode must carry
`Authorization: Bearer TOKEN` (the CLI's `--codec-auth`); preflights carry none and need
none. A body that is not that JSON gets a 400 and a short JSON error, a payload whose key
the ring lacks a 422 naming the key, a body over MAX_BODY_BYTES a 413.

Whoever can reach this server can decrypt with it: bind it to loopback, or set a token.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload

from steward.codec import CodecError, EncryptionCodec

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8081
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
"""Temporal's largest payload is 2 MB, base64 in JSON adds a third; a few fit."""
ALLOWED_HEADERS: Final = ("content-type", "x-namespace", "authorization")
"""What the Temporal UI sends with a codec request (Authorization when it passes a token)."""

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


class _Refusal(Exception):
    """A request answered with an error status and a short JSON body."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def build_app(
    codec: EncryptionCodec, *, origins: Sequence[str] = (), token: str | None = None
) -> Starlette:
    """The codec server's ASGI app: encode and decode with `codec`, for `origins`."""

    async def encode(request: Request) -> Response:
        return await _apply(request, codec.encode, token)

    async def decode(request: Request) -> Response:
        return await _apply(request, codec.decode, token)

    routes = [
        Route(path, handler, methods=["POST"])
        for prefix in ("", "/{namespace}")
        for path, handler in ((f"{prefix}/encode", encode), (f"{prefix}/decode", decode))
    ]
    cors = Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["POST"],
        allow_headers=list(ALLOWED_HEADERS),
        allow_credentials=True,  # the UI may send cookies ("include cross-origin credentials")
        max_age=600,
    )
    return Starlette(routes=routes, middleware=[cors])


def serve(
    codec: EncryptionCodec,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    origins: Sequence[str] = (),
    token: str | None = None,
) -> None:
    """Serve the codec server until interrupted (SIGINT or SIGTERM)."""
    app = build_app(codec, origins=origins, token=token)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, server_header=False
    )
    uvicorn.Server(config).run()


async def _apply(request: Request, transform: Transform, token: str | None) -> Response:
    try:
        _authorize(request, token)
        payloads = _payloads(await _body(request))
        try:
            done = await transform(payloads)
        except CodecError as err:
            raise _Refusal(422, str(err)) from None
    except _Refusal as refusal:
        headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
        return JSONResponse({"error": refusal.error}, status_code=refusal.status, headers=headers)
    return JSONResponse({"payloads": [json_format.MessageToDict(p) for p in done]})


def _authorize(request: Request, token: str | None) -> None:
    if token is None:
        return
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        raise _Refusal(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _Refusal(413, f"the body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Refusal(413, f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _payloads(raw: bytes) -> list[Payload]:
    """The payloads of a protocol body; _Refusal(400) naming what is wrong, never echoing it."""
    try:
        body: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Refusal(400, 'the body is not JSON: expected {"payloads": [...]}') from None
    if not isinstance(body, dict) or not isinstance(body.get("payloads"), list):
        raise _Refusal(400, 'expected a JSON object {"payloads": [...]}')
    payloads = []
    for index, item in enumerate(body["payloads"]):
        if not isinstance(item, dict):
            raise _Refusal(400, f"payloads[{index}] is not an object")
        try:
            payloads.append(json_format.ParseDict(item, Payload(), ignore_unknown_fields=True))
        except json_format.ParseError:
            raise _Refusal(
                400,
                f"payloads[{index}] is not a Temporal payload in protobuf JSON "
                "(metadata values and data in base64)",
            ) from None
    return payloads
