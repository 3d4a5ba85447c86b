"""The blob store: large text kept out of workflow history, by content address.

Activities are where large text appears (a tool's output, a model's answer) and where it
is needed in full (the messages sent to a model), so only activities touch the store.
`Offloader` stores what is over the threshold and hands back a `BlobRef`; the model call
reads references back into text. Blobs are named by the SHA-256 of their bytes, so the
same passage stored by ten turns is one file, and a write is idempotent: a retried
activity stores nothing new. Reads check the digest, so a damaged blob is an error, never
different text.

The default store is a local directory, which every worker on one machine shares; workers
on several machines need an S3-compatible store (`S3BlobStore`, see `make_blob_store`),
and only those import boto3.

Blobs hold the same customer text as history, so they are encrypted at rest with the same
key ring as payloads (`steward.codec`): a blob is stored as `steward-blob:aes256gcm:`, its
key id, a newline, and the AES-GCM nonce and ciphertext, with its digest as associated
data (so a blob moved under another name fails to decrypt). The name stays the SHA-256 of
the plaintext, so the same text is still stored once: a second put finds it and writes
nothing. A blob stored before encryption was on reads as it is. The name reveals only
that digest, which confirms a guess of the whole text and nothing more.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from temporalio import activity
from temporalio.exceptions import ApplicationError

from steward.blobs import OFFLOAD_BYTES, BlobRef, digest_of, preview_of
from steward.codec import CodecError, KeyRing, MissingKey
from steward.config import BlobConfig, S3BlobConfig
from steward.errors import (
    BLOB_MISSING,
    BLOB_STORE_REFUSED,
    BLOB_STORE_UNAVAILABLE,
    BLOB_UNREADABLE,
    PAYLOAD_TOO_LARGE,
    application_error,
)
from steward.models import Message, ModelToolCall, ToolInvocation, ToolResult

REUSED_BYTES = 1024
"""A message the workflow will send again is stored from this size (with offloading on)."""

MAX_RESULT_BYTES = 1_800_000
"""Largest tool output returned inline: Temporal rejects payloads over 2 MB."""


SEALED = b"steward-blob:aes256gcm:"
"""How an encrypted blob begins."""


class BlobMissing(Exception):
    """A referenced blob is not in the store (or its bytes do not match its digest)."""


def seal(data: bytes, digest: str, keys: KeyRing | None) -> bytes:
    """The bytes to store for `data` (named `digest`): encrypted when there are keys."""
    if keys is None:
        return data
    key_id, sealed = keys.encrypt(data, associated=digest.encode())
    return SEALED + key_id.encode() + b"\n" + sealed


def unseal(stored: bytes, digest: str, keys: KeyRing | None, where: str) -> bytes:
    """The text stored under `digest`, decrypted when it was encrypted, checked.

    CodecError (MissingKey) when it was encrypted with a key `keys` lacks; BlobMissing when
    what comes out is not what the digest names.
    """
    data = stored
    if stored.startswith(SEALED):
        key_id, _, sealed = stored[len(SEALED) :].partition(b"\n")
        name = key_id.decode(errors="replace")
        what = f"blob {digest} in {where}"
        if keys is None:
            raise MissingKey(
                f"{what} is encrypted (key {name!r}), but payload encryption is off here", [name]
            )
        data = keys.decrypt(name, sealed, associated=digest.encode(), what=what)
    if digest_of(data) != digest:
        raise BlobMissing(f"blob {digest} in {where} is damaged (digest mismatch)")
    return data


class BlobStore(Protocol):
    """Bytes by content address. Implementations are synchronous and thread-safe."""

    def put(self, data: bytes) -> str:
        """Store `data` (once) and return its digest."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes stored under `digest`, or BlobMissing."""
        ...

    def where(self) -> str:
        """Where the blobs are, for messages."""
        ...


def _checked(digest: str) -> str:
    """`digest` if it is a SHA-256 hex digest (so it is safe in a path or a key)."""
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise BlobMissing(f"{digest!r} is not a blob digest")
    return digest


class LocalBlobStore:
    """Blobs as files `ROOT/ab/abcdef...`, written atomically, encrypted with `keys`."""

    def __init__(self, root: Path, keys: KeyRing | None = None) -> None:
        self.root = root
        self.keys = keys

    def where(self) -> str:
        """The directory."""
        return str(self.root)

    def _path(self, digest: str) -> Path:
        return self.root / _checked(digest)[:2] / digest

    def put(self, data: bytes) -> str:
        """Write the blob unless it is already there; concurrent writers agree."""
        digest = digest_of(data)
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(seal(data, digest, self.keys))
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        """Read, decrypt and verify a blob."""
        try:
            stored = self._path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"blob {digest} is not in {self.root}") from None
        return unseal(stored, digest, self.keys, str(self.root))


S3_CONNECT_TIMEOUT_SECONDS = 5
"""How long to wait for a connection to the S3 endpoint before failing the attempt."""

S3_READ_TIMEOUT_SECONDS = 30
"""How long to wait for the S3 endpoint to send more bytes before failing the attempt."""

_ABSENT_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
"""S3 error codes for an object that is not there (a HEAD answers a bare 404)."""

_TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "RequestTimeout", "InternalError", "ServiceUnavailable"}
)
"""S3 error codes worth another attempt, though some come with a 4xx status."""


class S3BlobStore:
    """Blobs as objects `PREFIX/ab/abcdef...` in an S3-compatible bucket.

    Credentials come from the worker's environment through boto3's usual chain, never from
    the config, and no error raised here carries them. Objects are encrypted with `keys`.
    """

    def __init__(self, config: S3BlobConfig, keys: KeyRing | None = None) -> None:
        self.config = config
        self.keys = keys
        self._client: Any = None
        self._client_lock = threading.Lock()

    def where(self) -> str:
        """The bucket and prefix, and the endpoint when it is not AWS."""
        place = f"s3://{self.config.bucket}/{self.config.prefix}"
        if self.config.endpoint_url:
            # A URL may carry user:password@; the host and path are enough to find the store.
            url = urlsplit(self.config.endpoint_url)
            place += f" at {url.scheme}://{url.netloc.rpartition('@')[2]}"
        return place

    def _s3(self) -> Any:
        """The client, built on first use: boto3 clients are thread-safe, sessions are not."""
        import boto3
        from botocore.config import Config

        with self._client_lock:
            if self._client is None:
                config = Config(
                    # Temporal owns retries: one attempt per activity attempt.
                    retries={"mode": "standard", "total_max_attempts": 1},
                    connect_timeout=S3_CONNECT_TIMEOUT_SECONDS,
                    read_timeout=S3_READ_TIMEOUT_SECONDS,
                    # Reads check the SHA-256 themselves; the SDK's default CRC headers are
                    # refused by some S3-compatible stores.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    # Stores other than AWS rarely serve bucket-named hosts.
                    s3={"addressing_style": "path" if self.config.endpoint_url else "auto"},
                )
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.config.endpoint_url,
                    region_name=self.config.region,
                    config=config,
                )
            return self._client

    def _key(self, digest: str) -> str:
        return f"{self.config.prefix}{_checked(digest)[:2]}/{digest}"

    def _failure(self, action: str, key: str, err: Exception) -> ApplicationError:
        """A failure naming the object and the S3 error code, never the provider's text.

        Permanent failures (refused, no such bucket, no credentials) are non-retryable;
        throttling, 5xx and lost connections are left to the activity's retry policy.
        """
        from botocore.exceptions import ClientError, NoCredentialsError

        if isinstance(err, ClientError):
            code = str(err.response.get("Error", {}).get("Code", "unknown"))
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            detail = f"{code} (HTTP {status})"
            permanent = (
                isinstance(status, int)
                and 400 <= status < 500
                and status not in (408, 429)
                and code not in _TRANSIENT_CODES
            )
        else:
            detail = type(err).__name__
            permanent = isinstance(err, NoCredentialsError)
        return application_error(
            BLOB_STORE_REFUSED if permanent else BLOB_STORE_UNAVAILABLE,
            f"could not {action} {key} in {self.where()}: {detail}",
        )

    def put(self, data: bytes) -> str:
        """Upload the blob unless an object is already under its key."""
        from botocore.exceptions import BotoCoreError, ClientError

        digest = digest_of(data)
        key = self._key(digest)
        bucket = self.config.bucket
        try:
            self._s3().head_object(Bucket=bucket, Key=key)
            return digest
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            # Without s3:ListBucket a missing object answers 403, not 404: the upload decides.
            if code not in _ABSENT_CODES and code not in ("403", "AccessDenied"):
                raise self._failure("check", key, err) from None
        except BotoCoreError as err:
            raise self._failure("check", key, err) from None
        try:
            self._s3().put_object(
                Bucket=bucket,
                Key=key,
                Body=seal(data, digest, self.keys),
                ContentType="application/octet-stream",
            )
        except (ClientError, BotoCoreError) as err:
            raise self._failure("write", key, err) from None
        return digest

    def get(self, digest: str) -> bytes:
        """Download, decrypt and verify a blob."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(digest)
        bucket = self.config.bucket
        try:
            stored: bytes = self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _ABSENT_CODES:
                raise BlobMissing(f"blob {digest} is not in s3://{bucket}/{key}") from None
            raise self._failure("read", key, err) from None
        except BotoCoreError as err:
            raise self._failure("read", key, err) from None
        return unseal(stored, digest, self.keys, f"s3://{bucket}/{key}")


class Offloader:
    """Stores text over the threshold; reads references back. `threshold=None`: never stores."""

    def __init__(self, store: BlobStore, threshold: int | None = OFFLOAD_BYTES) -> None:
        self.store = store
        self.threshold = threshold

    def large(self, text: str) -> bool:
        """Whether `text` should live in the store rather than in history."""
        return self.threshold is not None and len(text.encode()) > self.threshold

    async def put_text(self, text: str) -> BlobRef:
        """Store `text` and return its reference."""
        data = text.encode()
        digest = await asyncio.to_thread(self.store.put, data)
        return BlobRef(digest=digest, size=len(data), preview=preview_of(text))

    async def text(self, ref: BlobRef) -> str:
        """The text a reference stands for; a missing blob fails the activity for good."""
        try:
            data = await asyncio.to_thread(self.store.get, ref.digest)
        except BlobMissing as err:
            raise application_error(
                BLOB_MISSING, f"{err}: the blob store must be shared by every worker"
            ) from None
        except CodecError as err:
            # Every worker must hold the key ring's keys; this one lacks one (or the blob
            # was damaged). Another attempt on this worker would fail alike.
            raise application_error(BLOB_UNREADABLE, str(err)) from None
        return data.decode()

    async def messages(self, messages: Sequence[Message]) -> list[Message]:
        """Messages as the model gets them: each reference replaced by its text."""
        resolved = []
        for message in messages:
            if message.blob is not None:
                content = message.content + await self.text(message.blob)
                message = message.model_copy(update={"content": content, "blob": None})
            if any(call.arguments_blob is not None for call in message.tool_calls):
                calls = [
                    call.model_copy(
                        update={
                            "arguments": await self.text(call.arguments_blob),
                            "arguments_blob": None,
                        }
                    )
                    if call.arguments_blob is not None
                    else call
                    for call in message.tool_calls
                ]
                message = message.model_copy(update={"tool_calls": calls})
            resolved.append(message)
        return resolved

    async def store_reused_calls(
        self, messages: Sequence[Message], reused: Sequence[int]
    ) -> dict[int, list[ModelToolCall]]:
        """Like `store_reused`, for the arguments of tool calls made natively: those over
        REUSED_BYTES are stored, and the caller resends the calls returned here.
        """
        if self.threshold is None:
            return {}
        stored: dict[int, list[ModelToolCall]] = {}
        for index in sorted(set(reused)):
            if not 0 <= index < len(messages):
                continue
            calls = messages[index].tool_calls
            if not any(len(call.arguments.encode()) > REUSED_BYTES for call in calls):
                continue
            stored[index] = [
                call.model_copy(
                    update={"arguments": "", "arguments_blob": await self.put_text(call.arguments)}
                )
                if len(call.arguments.encode()) > REUSED_BYTES
                else call
                for call in calls
            ]
        return stored

    async def store_reused(
        self, messages: Sequence[Message], reused: Sequence[int]
    ) -> dict[int, BlobRef]:
        """Store the messages the caller will send again, when over REUSED_BYTES; it then
        resends each as its reference (with empty `content`).

        A window of medium-sized messages resent every turn would otherwise put the same
        text in history again and again; stored once, each costs a reference per turn.
        """
        if self.threshold is None:
            return {}
        stored = {}
        for index in sorted(set(reused)):
            if 0 <= index < len(messages):
                message = messages[index]
                if message.blob is None and len(message.content.encode()) > REUSED_BYTES:
                    stored[index] = await self.put_text(message.content)
        return stored

    async def tool_result(self, result: ToolResult) -> ToolResult:
        """The result with a large output replaced by its reference and placeholder.

        With offloading off, an output too large for a Temporal payload fails the call for
        good, naming the tool, instead of being rejected by the server on every retry.
        """
        if not self.large(result.output):
            size = len(result.output.encode())
            if size > MAX_RESULT_BYTES:
                raise application_error(
                    PAYLOAD_TOO_LARGE,
                    f"{result.tool} returned {size:,} bytes, more than a Temporal payload "
                    f"holds ({MAX_RESULT_BYTES:,}); set blobs.threshold_bytes to store it",
                )
            return result
        ref = await self.put_text(result.output)
        return result.model_copy(update={"output": ref.placeholder(), "output_blob": ref})

    def tool_activity(
        self, tool: Callable[[ToolInvocation], Awaitable[ToolResult]]
    ) -> Callable[[ToolInvocation], Awaitable[ToolResult]]:
        """The same tool activity (same name), its large outputs stored instead of returned.

        Wrapped where the worker registers tools, so every tool, MCP's included, gets it
        without each one knowing about blobs.
        """
        definition = activity._Definition.must_from_callable(tool)
        if definition.name is None:
            raise TypeError(f"{tool!r} is a dynamic activity: there is no name to keep")

        async def offloading(invocation: ToolInvocation) -> ToolResult:
            return await self.tool_result(await tool(invocation))

        # Not functools.wraps: it would copy the wrapped function's activity definition.
        offloading.__name__ = offloading.__qualname__ = definition.name
        offloading.__doc__ = tool.__doc__
        return activity.defn(name=definition.name)(offloading)


def make_blob_store(config: BlobConfig, keys: KeyRing | None) -> BlobStore:
    """The store steward.yaml's `blobs:` names (a local directory unless `s3` is set),
    encrypting with `keys` (None: blobs stored as they are, `STEWARD_CODEC=off`).
    """
    if config.s3 is not None:
        return S3BlobStore(config.s3, keys)
    return LocalBlobStore(Path(config.path), keys)


def make_offloader(config: BlobConfig, keys: KeyRing | None) -> Offloader:
    """An offloader over the configured store and threshold, encrypting with `keys`."""
    return Offloader(make_blob_store(config, keys), config.threshold_bytes)
