"""The write_file and publish_file tools: text written inside one configured directory each.

write_file puts drafts in the workspace; publish_file puts finished text in the published
directory (risk `publish`, on the privileged worker). A path is relative to its directory.
Its text is judged before anything else (no absolute path, no `..`: see
`steward.tools.files.relative_path_problem`), then resolved on disk, and refused if it ends up
outside the directory, which is how a symlink pointing out is caught. Every refusal is a
non-retryable error that names the problem.

Writes are atomic (a temporary file in the same directory, then a rename), so a reader
never sees half a file. Each call leaves a receipt, named by its idempotency key, in a
hidden directory beside the target directory (never inside it: the published directory
may be served as is). A retry that finds its receipt writes nothing again, so it cannot
overwrite what someone changed after the first attempt. A crash between the rename and
the receipt makes the retry write the same bytes to the same path once more, which leaves
the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.tools.arguments import parse_arguments
from steward.errors import (
    FILE_TOO_LARGE,
    INVALID_PATH,
    PATH_OUTSIDE_DIRECTORY,
    PERMISSION_DENIED,
    ErrorType,
    application_error,
)
from steward.models import ToolInvocation, ToolResult
from steward.tools.files import PublishFileArgs, WriteFileArgs


class FileActivities:
    """File tools over a workspace directory and a published directory."""

    def __init__(self, workspace: Path, published: Path, *, max_bytes: int) -> None:
        self.workspace = workspace
        self.published = published
        self.max_bytes = max_bytes

    @activity.defn(name="write_file")
    async def write_file(self, invocation: ToolInvocation) -> ToolResult:
        """Write text to a path in the workspace, once per call."""
        args = parse_arguments(WriteFileArgs, invocation)
        return await asyncio.to_thread(
            self._write, "write_file", self.workspace, "the workspace", args, invocation
        )

    @activity.defn(name="publish_file")
    async def publish_file(self, invocation: ToolInvocation) -> ToolResult:
        """Write text to a path in the published directory, once per call."""
        args = parse_arguments(PublishFileArgs, invocation)
        return await asyncio.to_thread(
            self._write, "publish_file", self.published, "the published directory", args, invocation
        )

    def receipt_path(self, root: Path, idempotency_key: str) -> Path:
        """Where the receipt of the call with this key is kept, for a directory."""
        receipts = root.resolve().with_name(f".{root.resolve().name}.receipts")
        return receipts / f"{idempotency_key.replace(':', '_')}.json"

    def _write(
        self, tool: str, root: Path, label: str, args: WriteFileArgs, invocation: ToolInvocation
    ) -> ToolResult:
        data = args.content.encode("utf-8")
        if len(data) > self.max_bytes:
            raise _refused(
                tool,
                f"content is {len(data):,} bytes; files.max_bytes allows {self.max_bytes:,}",
                FILE_TOO_LARGE,
            )
        receipt = self.receipt_path(root, invocation.idempotency_key)
        if receipt.exists():
            return _wrote(tool, label, args.path, len(data), already=True)
        target = _inside(root, args.path, tool)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace_atomically(target, data)
        except (NotADirectoryError, FileExistsError):
            raise _refused(
                tool, f"{args.path!r}: a parent of this path is a file", INVALID_PATH
            ) from None
        except PermissionError:
            raise _refused(
                tool, f"{args.path!r}: the worker may not write there", PERMISSION_DENIED
            ) from None
        receipt.parent.mkdir(parents=True, exist_ok=True)
        _replace_atomically(
            receipt,
            json.dumps(
                {
                    "tool": tool,
                    "path": args.path,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "agent": invocation.agent,
                    "principal": invocation.principal,
                }
            ).encode(),
        )
        return _wrote(tool, label, args.path, len(data), already=False)


def _inside(root: Path, relative: str, tool: str) -> Path:
    """The real path `relative` names under `root`, or a refusal if it leaves `root`."""
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        # Already refused with the arguments; checked again because the filesystem is
        # what must never be escaped.
        raise _refused(tool, f"{relative!r} is not a path inside the directory", INVALID_PATH)
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        raise _refused(
            tool,
            f"{relative!r} resolves outside the directory (through a symlink); refused",
            PATH_OUTSIDE_DIRECTORY,
        )
    if target.is_dir():
        raise _refused(tool, f"{relative!r} is a directory, not a file", INVALID_PATH)
    return target


def _replace_atomically(target: Path, data: bytes) -> None:
    """Put `data` at `target` in one step: write a temporary file beside it, then rename."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".steward-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _refused(tool: str, problem: str, kind: ErrorType) -> ApplicationError:
    return application_error(kind, f"{tool}: {problem}")


def _wrote(tool: str, label: str, path: str, size: int, *, already: bool) -> ToolResult:
    note = " (already written by an earlier attempt)" if already else ""
    return ToolResult(tool=tool, ok=True, output=f"wrote {size:,} bytes to {path} in {label}{note}")
