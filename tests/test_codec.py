"""The payload codec and its key ring: encryption, pass-through, rotation, missing keys,
the ring's text format and where it is read from, and encrypted failure messages.

Everything here is the real codec and the real data converter; servers come in
tests/test_encrypted_at_rest.py and tests/test_codec_server.py.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import (
    HistoryEvent,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from temporalio.client import WorkflowHistory
from temporalio.exceptions import ApplicationError
from typer.testing import CliRunner

from steward import codec
from steward.cli import app
from steward.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecError,
    EncryptionCodec,
    KeyRing,
    KeyRingError,
    MissingKey,
)
from steward.decoding import decode_history
from steward.errors import BAD_INPUT, Refused
from steward.models import Message
from steward.plugin import ENCODED_MESSAGE, data_converter

SECRET = "Dana Whitfield, order #48213, card ending 4242"


def ring(*ids: str) -> KeyRing:
    return KeyRing.parse("\n".join(codec.key_line(key_id) for key_id in ids), "test ring")


async def test_payloads_are_encrypted_and_come_back_the_same() -> None:
    converter = data_converter(EncryptionCodec(ring("a")))
    message = Message(role="user", content=SECRET)

    (payload,) = await converter.encode([message])

    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID_METADATA] == b"a"
    assert SECRET.encode() not in payload.SerializeToString()
    assert b"Whitfield" not in payload.SerializeToString()
    assert await converter.decode([payload], [Message]) == [message]
    # the same value twice is two different ciphertexts (a fresh nonce each time)
    (again,) = await converter.encode([message])
    assert again.data != payload.data


async def test_plaintext_payloads_pass_through_decoding_unchanged() -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(SECRET).encode())
    the_codec = EncryptionCodec(ring("a"))

    assert await the_codec.decode([plain]) == [plain]
    assert await data_converter(the_codec).decode([plain], [str]) == [SECRET]
    # and one already encrypted is not encrypted twice
    (sealed,) = await the_codec.encode([plain])
    assert await the_codec.encode([sealed]) == [sealed]


async def test_rotation_old_payloads_decode_new_ones_use_the_newest_key() -> None:
    key_a, key_b = codec.key_line("2024-a"), codec.key_line("2025-b")
    before = EncryptionCodec(KeyRing.parse(key_a, "ring A"))
    (written_with_a,) = await before.encode([Payload(data=b"old run")])

    rotated = EncryptionCodec(KeyRing.parse(f"{key_a}\n{key_b}", "ring A+B"))
    assert rotated.ring.newest == "2025-b"
    (written_with_b,) = await rotated.encode([Payload(data=b"new run")])

    assert written_with_b.metadata[KEY_ID_METADATA] == b"2025-b"
    assert [p.data for p in await rotated.decode([written_with_a, written_with_b])] == [
        b"old run",
        b"new run",
    ]
    # a ring without the old key refuses its payloads, naming the key, never garbling them
    with pytest.raises(MissingKey) as missing:
        await EncryptionCodec(KeyRing.parse(key_b, "ring B")).decode([written_with_a])
    assert missing.value.key_ids == ("2024-a",)
    assert "'2024-a', which is not in ring B (it holds 2025-b)" in str(missing.value)
    # the old ring cannot read what the new key wrote
    with pytest.raises(MissingKey, match="'2025-b'"):
        await before.decode([written_with_b])


async def test_a_damaged_payload_or_a_wrong_key_under_the_same_id_is_refused() -> None:
    the_codec = EncryptionCodec(ring("a"))
    (sealed,) = await the_codec.encode([Payload(data=SECRET.encode())])
    damaged = Payload()
    damaged.CopyFrom(sealed)
    damaged.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])

    with pytest.raises(CodecError, match="key 'a' does not decrypt"):
        await the_codec.decode([damaged])
    with pytest.raises(CodecError, match="damaged, or encrypted with another key"):
        await EncryptionCodec(ring("a")).decode([sealed])  # another key, also called "a"


def test_the_ring_text_format() -> None:
    a, b = codec.key_line("a"), codec.key_line("b")
    text = f"# comment\n\n  {a}\n{b}  # not a comment: a second entry on the line?\n"
    with pytest.raises(KeyRingError, match="line 4: expected KEY_ID:BASE64_KEY"):
        KeyRing.parse(text, "file")
    assert KeyRing.parse(f"# keys\n{a}\n\n{b}\n", "file").ids == ("a", "b")
    assert KeyRing.parse(f"{a},{b}", "env").ids == ("a", "b")
    assert KeyRing.parse(f"{a} {b}", "env").newest == "b"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("justakey", "line 1: expected KEY_ID:BASE64_KEY"),
        ("bad id!:" + base64.b64encode(bytes(32)).decode(), "expected KEY_ID:BASE64_KEY"),
        ("-a:" + base64.b64encode(bytes(32)).decode(), "bad key id '-a'"),
        ("a:not base64!", "the key of 'a' is not valid base64"),
        ("a:" + base64.b64encode(bytes(16)).decode(), "is 16 bytes; expected 32 (AES-256)"),
        (
            "a:"
            + base64.b64encode(bytes(32)).decode()
            + "\na:"
            + base64.b64encode(bytes(32)).decode(),
            "key id 'a' appears twice",
        ),
    ],
)
def test_bad_ring_text_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(KeyRingError) as refused:
        KeyRing.parse(text, "STEWARD_CODEC_KEYS")
    assert problem in str(refused.value)
    assert str(refused.value).startswith("STEWARD_CODEC_KEYS")
    assert base64.b64encode(bytes(32)).decode() not in str(refused.value)  # no key in errors


def test_where_the_ring_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    for name in ("STEWARD_CODEC", "STEWARD_CODEC_KEYS", "STEWARD_CODEC_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(KeyRingError) as none:
        codec.codec_from_environment()
    assert "no payload encryption keys" in str(none.value)
    assert "steward dev up" in str(none.value) and "STEWARD_CODEC=off" in str(none.value)

    # the dev key file: made once, 0600, reused
    path, created = codec.ensure_dev_keys(tmp_path / "home")
    assert created and path == tmp_path / "home" / "codec-keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = codec.keyring_from_environment()
    assert first is not None and first.newest.startswith("dev-")
    assert codec.ensure_dev_keys(tmp_path / "home") == (path, False)
    again = codec.keyring_from_environment()
    assert again is not None and again.ids == first.ids

    # a file named by STEWARD_CODEC_KEYS_FILE wins over the dev file
    named = tmp_path / "ring.keys"
    named.write_text(codec.key_line("from-file") + "\n")
    monkeypatch.setenv("STEWARD_CODEC_KEYS_FILE", str(named))
    from_file = codec.keyring_from_environment()
    assert from_file is not None and from_file.ids == ("from-file",)
    assert codec.configured_elsewhere()

    # the ring's text in the environment, but not both
    monkeypatch.setenv("STEWARD_CODEC_KEYS", codec.key_line("from-env"))
    with pytest.raises(KeyRingError, match="both STEWARD_CODEC_KEYS and STEWARD_CODEC_KEYS_FILE"):
        codec.keyring_from_environment()
    monkeypatch.delenv("STEWARD_CODEC_KEYS_FILE")
    from_env = codec.keyring_from_environment()
    assert from_env is not None and from_env.ids == ("from-env",)

    monkeypatch.setenv("STEWARD_CODEC_KEYS_FILE", str(tmp_path / "absent.keys"))
    monkeypatch.delenv("STEWARD_CODEC_KEYS")
    with pytest.raises(KeyRingError, match="cannot read STEWARD_CODEC_KEYS_FILE"):
        codec.keyring_from_environment()

    # off only when asked for, by name
    monkeypatch.setenv("STEWARD_CODEC", "off")
    assert codec.codec_from_environment() is None
    monkeypatch.setenv("STEWARD_CODEC", "maybe")
    with pytest.raises(KeyRingError, match="STEWARD_CODEC='maybe': expected on or off"):
        codec.codec_from_environment()


def test_append_key_keeps_the_ring_valid(tmp_path: Path) -> None:
    path = tmp_path / "codec.keys"
    first, second = codec.key_line("one"), codec.key_line("two")
    codec.append_key(path, first)
    codec.append_key(path, second)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert codec.read_keyring(path, "file").ids == ("one", "two")
    with pytest.raises(KeyRingError, match="already holds a key 'two'"):
        codec.append_key(path, codec.key_line("two"))
    path.write_text("broken\n")
    with pytest.raises(KeyRingError, match="expected KEY_ID:BASE64_KEY"):
        codec.append_key(path, codec.key_line("three"))
    assert path.read_text() == "broken\n"  # nothing written over a ring it cannot read
    assert not list(tmp_path.glob(".*.tmp"))


async def test_failure_messages_travel_encrypted_and_read_back_whole() -> None:
    converter = data_converter(EncryptionCodec(ring("a")))
    failure = Failure()
    try:
        raise ApplicationError(f"provider refused: {SECRET}", type="ModelBadRequest")
    except ApplicationError as refused:
        await converter.encode_failure(refused, failure)

    stored = failure.SerializeToString()
    assert SECRET.encode() not in stored
    assert failure.message == ENCODED_MESSAGE and failure.stack_trace == ""
    assert failure.application_failure_info.type == "ModelBadRequest"  # the type stays
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING

    error = await converter.decode_failure(failure)
    assert isinstance(error, ApplicationError)
    assert error.message == f"provider refused: {SECRET}" and error.type == "ModelBadRequest"


async def test_a_refusal_stays_one_readable_line_without_its_trace() -> None:
    # Refusals name fields, ids and rules (never what a customer wrote) and must read as
    # one line wherever they show, the Temporal UI's update dialog included.
    converter = data_converter(EncryptionCodec(ring("a")))
    failure = Failure()
    try:
        raise Refused("bad ticket: ticket body is empty", BAD_INPUT)
    except Refused as refused:
        await converter.encode_failure(refused, failure)
    assert failure.message == "bad ticket: ticket body is empty"
    assert failure.stack_trace == "" and not failure.HasField("encoded_attributes")
    error = await converter.decode_failure(failure)
    assert isinstance(error, ApplicationError) and error.type == BAD_INPUT


async def test_an_ordinary_failure_keeps_its_stack_trace_encrypted() -> None:
    converter = data_converter(EncryptionCodec(ring("a")))
    failure = Failure()
    try:
        raise ValueError(f"provider said: {SECRET}")
    except ValueError as err:
        await converter.encode_failure(err, failure)
    assert failure.stack_trace == "" and SECRET.encode() not in failure.SerializeToString()

    history = WorkflowHistory(
        "wf",
        [
            HistoryEvent(
                event_id=1,
                event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
                workflow_execution_failed_event_attributes=WorkflowExecutionFailedEventAttributes(
                    failure=failure
                ),
            )
        ],
    )
    readable = await decode_history(history, converter.payload_codec)
    shown = readable.events[0].workflow_execution_failed_event_attributes.failure
    assert shown.message == f"provider said: {SECRET}"
    assert "test_codec.py" in shown.stack_trace
    assert not shown.HasField("encoded_attributes")
    assert history.events[0].workflow_execution_failed_event_attributes.failure == failure


async def test_decoding_a_history_names_every_missing_key() -> None:
    old, new = EncryptionCodec(ring("old")), EncryptionCodec(ring("new"))
    (a,) = await old.encode([Payload(data=b"a")])
    (b,) = await new.encode([Payload(data=b"b")])
    history = WorkflowHistory(
        "wf-1",
        [
            HistoryEvent(
                event_id=1,
                event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
                workflow_execution_started_event_attributes=WorkflowExecutionStartedEventAttributes(
                    input=Payloads(payloads=[a])
                ),
            ),
            HistoryEvent(
                event_id=2,
                event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
                workflow_execution_signaled_event_attributes=WorkflowExecutionSignaledEventAttributes(
                    input=Payloads(payloads=[b])
                ),
            ),
        ],
    )
    with pytest.raises(MissingKey) as missing:
        await decode_history(history, EncryptionCodec(ring("other")))
    assert missing.value.key_ids == ("new", "old")
    assert "the history of wf-1" in str(missing.value)
    with pytest.raises(MissingKey, match="payload encryption is off here"):
        await decode_history(history, None)


def test_keys_codec_new_prints_or_appends_a_key(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["keys", "codec-new"])
    assert printed.exit_code == 0, printed.output
    (line,) = printed.output.splitlines()
    assert KeyRing.parse(line, "printed").newest.startswith("k")

    ring_file = tmp_path / "secrets" / "codec.keys"
    ring_file.parent.mkdir()
    outputs = ""
    for key_id in ("2025-06", "2025-12"):
        added = runner.invoke(
            app, ["keys", "codec-new", "--id", key_id, "--append", str(ring_file)]
        )
        assert added.exit_code == 0, added.output
        assert f"added key {key_id} to {ring_file}" in added.output
        outputs += added.output
    assert codec.read_keyring(ring_file, "file").ids == ("2025-06", "2025-12")
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    for entry in ring_file.read_text().splitlines()[-2:]:
        assert entry.split(":")[1] not in outputs  # the key itself is never printed

    again = runner.invoke(app, ["keys", "codec-new", "--id", "2025-12", "--append", str(ring_file)])
    assert again.exit_code == 2 and "already holds a key '2025-12'" in again.output
    bad = runner.invoke(app, ["keys", "codec-new", "--id", "no spaces"])
    assert bad.exit_code == 2 and "bad key id 'no spaces'" in bad.output
