"""`steward codec-server` over HTTP, called exactly as the Temporal UI calls it: a CORS
preflight from the UI's origin, then POST /encode and /decode with JSON payloads and the
UI's headers; with and without a bearer token; and bad bodies, which get a 400.

Each test runs the real command as a process on a free loopback port.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.api.common.v1 import Payload
from typer.testing import CliRunner

from steward.cli import app
from steward.codec import EncryptionCodec, KeyRing, codec_from_environment, key_line
from tests.support.codec_server import UI_ORIGIN, codec_server

TICKET = "Hello, my order #48213 never arrived. Dana Whitfield"
UI_HEADERS = {"Origin": UI_ORIGIN, "Content-Type": "application/json", "X-Namespace": "default"}


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def plain_json(value: Any) -> dict[str, Any]:
    """A payload as the UI sends one to /encode: JSON, in protobuf JSON form."""
    return {"metadata": {"encoding": b64("json/plain")}, "data": b64(json.dumps(value))}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """One codec server for the tests that need no options of their own."""
    with codec_server() as running:
        yield running


def post(url: str, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=UI_HEADERS | headers, timeout=10)


def test_the_ui_preflights_then_encodes_and_decodes() -> None:
    with codec_server("--origin", UI_ORIGIN) as url:
        preflight = httpx.options(
            f"{url}/decode",
            headers={
                "Origin": UI_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "x-namespace" in allowed and "content-type" in allowed
        assert preflight.headers["access-control-allow-credentials"] == "true"

        signal = {"request_id": "support-reply-1:run-1", "approve": True, "reason": TICKET}
        encoded = post(url, "/encode", {"payloads": [plain_json(signal)]})
        assert encoded.status_code == 200, encoded.text
        assert encoded.headers["access-control-allow-origin"] == UI_ORIGIN
        (sealed,) = encoded.json()["payloads"]
        assert sealed["metadata"]["encoding"] == b64("binary/encrypted")
        assert sealed["metadata"]["encryption-key-id"] == b64("test-1")
        assert "Whitfield" not in base64.b64decode(sealed["data"]).decode(errors="replace")

        decoded = post(url, "/decode", {"payloads": [sealed, plain_json("not encrypted")]})
        assert decoded.status_code == 200, decoded.text
        assert decoded.json() == {"payloads": [plain_json(signal), plain_json("not encrypted")]}
        # the UI's payload is one the workers read: same ring, same format
        codec = codec_from_environment()
        assert codec is not None
        payload = Payload(
            metadata={k: base64.b64decode(v) for k, v in sealed["metadata"].items()},
            data=base64.b64decode(sealed["data"]),
        )
        assert json.loads(codec.decrypt(payload).data) == signal
        # a CLI endpoint templated with {namespace}, and an empty batch
        assert post(url, "/default/decode", {"payloads": [sealed]}).json() == {
            "payloads": [plain_json(signal)]
        }
        assert post(url, "/decode", {"payloads": []}).json() == {"payloads": []}


def test_an_origin_not_allowed_gets_no_cors_answer() -> None:
    with codec_server("--origin", UI_ORIGIN) as url:
        preflight = httpx.options(
            f"{url}/decode",
            headers={"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        # a browser on that page cannot read the answer: no CORS header on it
        answer = post(url, "/decode", {"payloads": []}, Origin="http://elsewhere.example")
        assert "access-control-allow-origin" not in answer.headers


def test_with_a_token_every_call_must_carry_it() -> None:
    env = {"CODEC_TOKEN": "t0ken-for-the-test"}
    with codec_server("--origin", UI_ORIGIN, "--token-env", "CODEC_TOKEN", env=env) as url:
        body = {"payloads": [plain_json(TICKET)]}
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "t0ken-for-the-test"},
        ):
            refused = post(url, "/encode", body, **headers)
            assert refused.status_code == 401, headers
            assert refused.json() == {
                "error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"
            }
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.headers["access-control-allow-origin"] == UI_ORIGIN  # readable by the UI
        # the preflight carries no token and needs none
        preflight = httpx.options(
            f"{url}/encode",
            headers={
                "Origin": UI_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200
        sealed = post(url, "/encode", body, Authorization="Bearer t0ken-for-the-test")
        assert sealed.status_code == 200
        opened = post(url, "/decode", sealed.json(), Authorization="Bearer t0ken-for-the-test")
        assert opened.json() == body


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", 'the body is not JSON: expected {"payloads": [...]}'),
        (b"\xff\xfe\x00", 'the body is not JSON: expected {"payloads": [...]}'),
        (b"[]", 'expected a JSON object {"payloads": [...]}'),
        (b"{}", 'expected a JSON object {"payloads": [...]}'),
        (b'{"payloads": {"data": "aGk="}}', 'expected a JSON object {"payloads": [...]}'),
        (b'{"payloads": [1]}', "payloads[0] is not an object"),
        (b'{"payloads": [{}, "x"]}', "payloads[1] is not an object"),
        (b'{"payloads": [{"data": "!!not base64!!"}]}', "payloads[0] is not a Temporal payload"),
        (b'{"payloads": [{"metadata": {"encoding": 5}}]}', "payloads[0] is not a Temporal payload"),
        (b'{"payloads": [{"metadata": ["x"]}]}', "payloads[0] is not a Temporal payload"),
        (b'{"payloads": [{"data": {"nested": 1}}]}', "payloads[0] is not a Temporal payload"),
    ],
)
def test_bad_bodies_get_a_400_with_a_short_error(url: str, body: bytes, error: str) -> None:
    for path in ("/encode", "/decode"):
        answer = httpx.post(f"{url}{path}", content=body, headers=UI_HEADERS, timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"].startswith(error)
        assert "Traceback" not in answer.text and len(answer.text) < 300
    # and the server is still there
    assert post(url, "/decode", {"payloads": []}).status_code == 200


def test_what_cannot_be_decrypted_or_is_too_big_is_refused_whole(url: str) -> None:
    other = EncryptionCodec(KeyRing.parse(key_line("someone-else"), "another ring"))
    sealed = other.encrypt(Payload(metadata={"encoding": b"json/plain"}, data=b'"secret"'))
    as_json = {
        "metadata": {k: b64(v) for k, v in sealed.metadata.items()},
        "data": b64(sealed.data),
    }
    missing = post(url, "/decode", {"payloads": [as_json]})
    assert missing.status_code == 422
    assert "'someone-else', which is not in STEWARD_CODEC_KEYS" in missing.json()["error"]
    huge = httpx.post(
        f"{url}/encode", content=b" " * (9 * 1024 * 1024), headers=UI_HEADERS, timeout=30
    )
    assert huge.status_code == 413
    assert httpx.get(f"{url}/decode").status_code == 405


def test_it_refuses_to_start_without_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    unset = runner.invoke(app, ["codec-server", "--token-env", "NO_SUCH_TOKEN"])
    assert unset.exit_code == 2 and "$NO_SUCH_TOKEN is not set" in unset.output

    monkeypatch.setenv("STEWARD_CODEC", "off")
    off = runner.invoke(app, ["codec-server"])
    assert off.exit_code == 2 and "encryption is off" in off.output

    monkeypatch.setenv("STEWARD_CODEC", "on")
    monkeypatch.setenv("STEWARD_CODEC_KEYS", "broken")
    broken = runner.invoke(app, ["codec-server"])
    assert broken.exit_code == 2 and "expected KEY_ID:BASE64_KEY" in broken.output
