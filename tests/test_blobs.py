"""The blob store: local files and S3 (against moto's server on loopback), encrypted at rest
with the codec's key ring, the offloader, and the tool-activity wrapper."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.blobs import (
    MAX_RESULT_BYTES,
    REUSED_BYTES,
    SEALED,
    BlobMissing,
    LocalBlobStore,
    Offloader,
    S3BlobStore,
    make_blob_store,
)
from steward.blobs import BlobRef, digest_of
from steward.codec import CodecError, KeyRing, MissingKey, key_line
from steward.config import BlobConfig, S3BlobConfig
from steward.models import Message, ToolCall, ToolInvocation, ToolResult

# Fake, but distinctive: a test below checks that none of them leaks into an error.
FAKE_KEY_ID = "AKIAFAKEKEYID4STEWARD"
FAKE_SECRET = "fake-secret-Zq8vN3wP7tK2"
FAKE_TOKEN = "fake-session-token-Hm4xR9"
CREDENTIALS = (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN)

BIG = "A passage long enough to be stored. " * 1000


KEYS = KeyRing.parse(key_line("blobs-a"), "the test ring")


@pytest.fixture
def local(tmp_path: Path) -> LocalBlobStore:
    """A local store encrypting with KEYS, as workers do by default."""
    return LocalBlobStore(tmp_path / "blobs", KEYS)


def blob_files(store: LocalBlobStore) -> list[Path]:
    return [path for path in store.root.rglob("*") if path.is_file()]


# --- LocalBlobStore -------------------------------------------------------------------


def test_local_put_is_idempotent_and_stores_one_file(local: LocalBlobStore) -> None:
    first = local.put(b"the same bytes")
    second = local.put(b"the same bytes")

    assert first == second == digest_of(b"the same bytes")
    assert blob_files(local) == [local.root / first[:2] / first]
    assert local.get(first) == b"the same bytes"


def test_local_get_refuses_a_tampered_blob(local: LocalBlobStore) -> None:
    digest = local.put(b"original")
    (local.root / digest[:2] / digest).write_bytes(b"tampered")

    with pytest.raises(BlobMissing, match="damaged"):
        local.get(digest)


def test_local_get_refuses_what_is_not_a_digest(local: LocalBlobStore) -> None:
    with pytest.raises(BlobMissing, match="not a blob digest"):
        local.get("../../etc/passwd")
    with pytest.raises(BlobMissing, match="not in"):
        local.get(digest_of(b"never stored"))


def test_local_concurrent_puts_of_the_same_data_agree(local: LocalBlobStore) -> None:
    data = BIG.encode()
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = set(pool.map(lambda _: local.put(data), range(32)))

    assert digests == {digest_of(data)}
    assert len(blob_files(local)) == 1  # no temporary file left behind
    assert local.get(digest_of(data)) == data


def test_local_blobs_are_encrypted_at_rest_and_still_stored_once(local: LocalBlobStore) -> None:
    data = BIG.encode()
    digest = local.put(data)
    assert local.put(data) == digest == digest_of(data)  # same address: dedup holds

    (path,) = blob_files(local)
    stored = path.read_bytes()
    assert path.name == digest
    assert stored.startswith(SEALED + b"blobs-a\n")
    assert b"A passage long enough" not in stored
    assert local.get(digest) == data


def test_blobs_stored_before_encryption_still_read(tmp_path: Path) -> None:
    plain = LocalBlobStore(tmp_path, None)  # STEWARD_CODEC=off, or an older Steward
    digest = plain.put(b"written in plaintext")
    assert (tmp_path / digest[:2] / digest).read_bytes() == b"written in plaintext"

    assert LocalBlobStore(tmp_path, KEYS).get(digest) == b"written in plaintext"


async def test_a_blob_whose_key_is_missing_fails_naming_the_key(local: LocalBlobStore) -> None:
    ref = await Offloader(local).put_text(BIG)
    other = LocalBlobStore(local.root, KeyRing.parse(key_line("blobs-b"), "the new ring"))

    with pytest.raises(MissingKey) as missing:
        other.get(ref.digest)
    assert missing.value.key_ids == ("blobs-a",)
    with pytest.raises(ApplicationError) as failure:
        await Offloader(other).messages([Message(role="user", content="", blob=ref)])
    assert failure.value.type == "BlobUnreadable" and failure.value.non_retryable
    assert "'blobs-a', which is not in the new ring" in failure.value.message
    with pytest.raises(MissingKey, match="encryption is off here"):
        LocalBlobStore(local.root, None).get(ref.digest)


def test_a_blob_moved_under_another_name_does_not_decrypt(local: LocalBlobStore) -> None:
    first, second = local.put(b"first text"), local.put(b"second text")
    (local.root / second[:2] / second).write_bytes((local.root / first[:2] / first).read_bytes())

    with pytest.raises(CodecError, match=f"blob {second}"):
        local.get(second)


def test_make_blob_store_picks_the_configured_store(tmp_path: Path) -> None:
    assert isinstance(make_blob_store(BlobConfig(path=str(tmp_path)), None), LocalBlobStore)
    s3 = make_blob_store(BlobConfig(s3=S3BlobConfig(bucket="steward-blobs")), None)
    assert isinstance(s3, S3BlobStore)
    assert s3.where() == "s3://steward-blobs/steward/blobs/"


# --- Offloader ------------------------------------------------------------------------


async def test_offloader_threshold(local: LocalBlobStore) -> None:
    offloader = Offloader(local, threshold=1024)
    assert offloader.large("é" * 513)  # bytes, not characters
    assert not offloader.large("e" * 1024)

    never = Offloader(local, threshold=None)
    assert not never.large(BIG)
    assert await never.tool_result(ToolResult(tool="t", ok=True, output=BIG)) == ToolResult(
        tool="t", ok=True, output=BIG
    )
    assert await never.store_reused([Message(role="user", content=BIG)], [0]) == {}
    assert blob_files(local) == []


async def test_offloader_put_text_and_messages(local: LocalBlobStore) -> None:
    offloader = Offloader(local)
    ref = await offloader.put_text(BIG)

    assert ref == BlobRef(
        digest=digest_of(BIG.encode()), size=len(BIG.encode()), preview=ref.preview
    )
    assert BIG.startswith(ref.preview) and ref.preview
    resolved = await offloader.messages(
        [Message(role="system", content="be brief"), Message(role="user", content="", blob=ref)]
    )
    assert resolved == [
        Message(role="system", content="be brief"),
        Message(role="user", content=BIG),
    ]


async def test_offloader_missing_blob_fails_for_good(local: LocalBlobStore) -> None:
    ref = BlobRef(digest=digest_of(b"elsewhere"), size=9)
    with pytest.raises(ApplicationError) as failure:
        await Offloader(local).messages([Message(role="user", content="", blob=ref)])
    assert failure.value.type == "BlobMissing"
    assert failure.value.non_retryable


async def test_offloader_stores_the_inline_messages_to_be_sent_again_over_1kb(
    local: LocalBlobStore,
) -> None:
    offloader = Offloader(local)
    already = await offloader.put_text(BIG + "(sent before)")
    medium = "m" * (REUSED_BYTES + 1)
    messages = [
        Message(role="system", content="short"),
        Message(role="user", content=BIG),
        Message(role="assistant", content="", blob=already),
        Message(role="user", content=medium),
        Message(role="user", content=medium + "not reused"),
    ]

    stored = await offloader.store_reused(messages, [0, 1, 2, 3, 99])

    assert list(stored) == [1, 3]
    assert stored[3].size == len(medium)
    assert stored[1].digest == digest_of(BIG.encode())
    assert local.get(stored[1].digest) == BIG.encode()


async def test_offloader_tool_result_keeps_a_placeholder_and_a_reference(
    local: LocalBlobStore,
) -> None:
    offloader = Offloader(local)
    small = ToolResult(tool="lookup", ok=True, output="short")
    assert await offloader.tool_result(small) is small

    stored = await offloader.tool_result(ToolResult(tool="lookup", ok=True, output=BIG))

    assert stored.output_blob is not None
    assert stored.output == stored.output_blob.placeholder()
    assert len(stored.output) < 300
    assert local.get(stored.output_blob.digest) == BIG.encode()


async def test_tool_activity_keeps_the_name_and_offloads(local: LocalBlobStore) -> None:
    @activity.defn(name="lookup_orders")
    async def lookup(invocation: ToolInvocation) -> ToolResult:
        """Look orders up."""
        return ToolResult(tool=invocation.call.tool, ok=True, output=BIG)

    wrapped = Offloader(local).tool_activity(lookup)
    definition = activity._Definition.must_from_callable(wrapped)
    invocation = ToolInvocation(
        call=ToolCall(id="call-1", tool="lookup_orders", arguments={}),
        idempotency_key="wf-1:call-1",
        agent="helpdesk",
        principal="dana",
    )

    result = await ActivityEnvironment().run(wrapped, invocation)

    assert definition.name == "lookup_orders"
    assert wrapped.__doc__ == "Look orders up."
    assert result.output_blob is not None
    assert local.get(result.output_blob.digest) == BIG.encode()


# --- S3 -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 on loopback, on a port the OS picks; stopped after the module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_config(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3BlobConfig:
    """A fresh bucket, with fake credentials in the environment only."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
    # Nothing from the machine's own AWS setup may take part.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"steward-{uuid.uuid4().hex[:12]}"
    raw_client(moto_endpoint).create_bucket(Bucket=bucket)
    return S3BlobConfig(
        bucket=bucket, prefix="blobs/", endpoint_url=moto_endpoint, region="us-east-1"
    )


def raw_client(endpoint: str) -> Any:
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")


def keys(config: S3BlobConfig) -> list[str]:
    assert config.endpoint_url is not None
    listing = raw_client(config.endpoint_url).list_objects_v2(Bucket=config.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_s3_round_trip_and_dedup(s3_config: S3BlobConfig) -> None:
    store = S3BlobStore(s3_config)
    data = BIG.encode()
    uploads: list[str] = []
    store._s3().meta.events.register(
        "before-call.s3.PutObject", lambda params, **_: uploads.append(params["url_path"])
    )

    digest = store.put(data)
    assert store.put(data) == digest == digest_of(data)
    assert len(uploads) == 1  # the second put found the object and sent nothing

    assert store.get(digest) == data
    assert keys(s3_config) == [f"blobs/{digest[:2]}/{digest}"]
    assert store.where() == f"s3://{s3_config.bucket}/blobs/ at {s3_config.endpoint_url}"


def test_s3_blobs_are_encrypted_at_rest(s3_config: S3BlobConfig) -> None:
    store = S3BlobStore(s3_config, KEYS)
    data = BIG.encode()
    digest = store.put(data)
    assert store.put(data) == digest  # found by its address, not uploaded again

    assert s3_config.endpoint_url is not None
    stored = (
        raw_client(s3_config.endpoint_url)
        .get_object(Bucket=s3_config.bucket, Key=f"blobs/{digest[:2]}/{digest}")["Body"]
        .read()
    )
    assert stored.startswith(SEALED) and b"A passage long enough" not in stored
    assert keys(s3_config) == [f"blobs/{digest[:2]}/{digest}"]
    assert store.get(digest) == data


def test_s3_concurrent_puts_share_one_client(s3_config: S3BlobConfig) -> None:
    store = S3BlobStore(s3_config)
    payloads = [f"blob {n}".encode() for n in range(4)] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = list(pool.map(store.put, payloads))

    assert digests == [digest_of(data) for data in payloads]
    assert len(keys(s3_config)) == 4


def test_s3_missing_blob(s3_config: S3BlobConfig) -> None:
    store = S3BlobStore(s3_config)
    digest = digest_of(b"never stored")

    with pytest.raises(BlobMissing) as missing:
        store.get(digest)

    message = str(missing.value)
    assert f"s3://{s3_config.bucket}/blobs/{digest[:2]}/{digest}" in message
    with pytest.raises(BlobMissing, match="not a blob digest"):
        store.get("../" + digest[3:])


def test_s3_damaged_blob(s3_config: S3BlobConfig) -> None:
    store = S3BlobStore(s3_config)
    digest = store.put(b"original")
    assert s3_config.endpoint_url is not None
    raw_client(s3_config.endpoint_url).put_object(
        Bucket=s3_config.bucket, Key=f"blobs/{digest[:2]}/{digest}", Body=b"other bytes"
    )

    with pytest.raises(BlobMissing, match="damaged"):
        store.get(digest)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def failures(store: S3BlobStore) -> list[ApplicationError]:
    with pytest.raises(ApplicationError) as put:
        store.put(b"x")
    with pytest.raises(ApplicationError) as get:
        store.get(digest_of(b"x"))
    return [put.value, get.value]


def test_s3_errors_name_the_object_never_the_credentials(s3_config: S3BlobConfig) -> None:
    no_bucket = failures(S3BlobStore(s3_config.model_copy(update={"bucket": "steward-absent"})))
    unreachable = failures(
        S3BlobStore(
            s3_config.model_copy(update={"endpoint_url": f"http://127.0.0.1:{closed_port()}"})
        )
    )
    with pytest.raises(BlobMissing) as missing:
        S3BlobStore(s3_config).get(digest_of(b"absent"))

    for error in no_bucket:
        assert error.non_retryable and error.type == "BlobStoreRefused"
        assert "s3://steward-absent/blobs/" in str(error) and "NoSuchBucket" in str(error)
    for error in unreachable:
        assert not error.non_retryable and error.type == "BlobStoreUnavailable"
    for shown in [*no_bucket, *unreachable, missing.value]:
        text = f"{shown!s} {shown!r} {shown.__cause__!r} {shown.__context__!r}"
        assert not any(secret in text for secret in CREDENTIALS), text


async def test_an_output_too_large_for_a_payload_fails_for_good_when_offloading_is_off(
    tmp_path: Path,
) -> None:
    offloader = Offloader(LocalBlobStore(tmp_path), threshold=None)
    huge = ToolResult(tool="mcp.dump", ok=True, output="x" * (MAX_RESULT_BYTES + 1))
    with pytest.raises(ApplicationError) as raised:
        await offloader.tool_result(huge)
    assert raised.value.type == "PayloadTooLarge" and raised.value.non_retryable
    assert "mcp.dump" in raised.value.message
    assert not list(tmp_path.rglob("*"))
