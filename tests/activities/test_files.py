"""write_file and publish_file: inside their directory only, atomic, once per call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tools.files import FileActivities
from steward.models import ToolCall, ToolInvocation, ToolResult

KEY = "wf-1.0123456789abcdef"


@pytest.fixture
def files(tmp_path: Path) -> FileActivities:
    return FileActivities(tmp_path / "workspace", tmp_path / "published", max_bytes=1_000)


def invocation(
    path: str, content: str = "hello", *, key: str = KEY, tool: str = "write_file"
) -> ToolInvocation:
    return ToolInvocation(
        call=ToolCall(id="call-1", tool=tool, arguments={"path": path, "content": content}),
        idempotency_key=key,
        agent="helpdesk",
        principal="dana",
    )


async def write(files: FileActivities, call: ToolInvocation) -> ToolResult:
    result: ToolResult = await ActivityEnvironment().run(files.write_file, call)
    return result


async def refusal(files: FileActivities, call: ToolInvocation) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await write(files, call)
    assert caught.value.non_retryable
    return caught.value


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


async def test_writes_the_file_atomically_and_leaves_a_receipt_outside_it(
    files: FileActivities, tmp_path: Path
) -> None:
    result = await write(files, invocation("notes/summary.md", "# Summary\nAll good.\n"))
    target = tmp_path / "workspace" / "notes" / "summary.md"
    assert target.read_text() == "# Summary\nAll good.\n"
    assert result.ok and result.output == "wrote 20 bytes to notes/summary.md in the workspace"
    # no temporary file left behind, and nothing but the file in the workspace
    assert tree(tmp_path / "workspace") == ["notes", "notes/summary.md"]
    assert files.receipt_path(tmp_path / "workspace", KEY).is_file()


async def test_the_same_call_again_writes_nothing(files: FileActivities, tmp_path: Path) -> None:
    await write(files, invocation("a.txt", "first"))
    target = tmp_path / "workspace" / "a.txt"
    inode = target.stat().st_ino
    target.write_text("edited by a person since")

    again = await write(files, invocation("a.txt", "first"))

    assert "already written by an earlier attempt" in again.output
    assert target.read_text() == "edited by a person since"  # not clobbered by the retry
    assert target.stat().st_ino == inode


async def test_another_call_replaces_the_file(files: FileActivities, tmp_path: Path) -> None:
    await write(files, invocation("a.txt", "first"))
    await write(files, invocation("a.txt", "second", key="wf-1.fedcba9876543210"))
    assert (tmp_path / "workspace" / "a.txt").read_text() == "second"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc/passwd", "absolute paths are refused"),
        ("../outside.txt", "'..' is refused"),
        ("notes/../../outside.txt", "'..' is refused"),
        ("notes/", "names a directory"),
        ("C:/Windows/x", "absolute paths are refused"),
        ("a\\..\\b", "not \\"),
        ("a\0b", "control characters"),
        ("a" * 501, "at most 500"),
    ],
)
async def test_paths_that_leave_the_directory_are_refused(
    files: FileActivities, tmp_path: Path, path: str, problem: str
) -> None:
    error = await refusal(files, invocation(path))
    assert error.type == "InvalidToolArguments"
    assert problem in error.message and "path" in error.message
    assert tree(tmp_path) == []  # refused before anything was created


async def test_a_symlink_out_of_the_directory_is_refused(
    files: FileActivities, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace" / "escape").symlink_to(outside)
    (tmp_path / "workspace" / "passwd").symlink_to(outside / "passwd")

    for path in ("escape/x.txt", "passwd"):
        error = await refusal(files, invocation(path, key=f"wf-1.{path[:6]}0000000000"))
        assert error.type == "PathOutsideDirectory"
        assert f"{path!r} resolves outside the directory" in error.message
    assert list(outside.iterdir()) == []


async def test_a_symlink_that_stays_inside_is_followed(
    files: FileActivities, tmp_path: Path
) -> None:
    (tmp_path / "workspace" / "real").mkdir(parents=True)
    (tmp_path / "workspace" / "alias").symlink_to(tmp_path / "workspace" / "real")
    await write(files, invocation("alias/x.txt", "via alias"))
    assert (tmp_path / "workspace" / "real" / "x.txt").read_text() == "via alias"


async def test_too_large_and_directory_targets_are_refused(
    files: FileActivities, tmp_path: Path
) -> None:
    large = await refusal(files, invocation("big.txt", "é" * 501))  # 1,002 bytes in UTF-8
    assert large.type == "FileTooLarge" and "1,002 bytes" in large.message
    (tmp_path / "workspace" / "dir").mkdir(parents=True)
    directory = await refusal(files, invocation("dir", key="wf-1.1111111111111111"))
    assert directory.type == "InvalidPath" and "is a directory" in directory.message
    (tmp_path / "workspace" / "file").write_text("x")
    parent = await refusal(files, invocation("file/child.txt", key="wf-1.2222222222222222"))
    assert parent.type == "InvalidPath" and "parent of this path is a file" in parent.message


async def test_publish_writes_only_to_the_published_directory(
    files: FileActivities, tmp_path: Path
) -> None:
    call = invocation("site/index.html", "<h1>Hi</h1>", tool="publish_file")
    result: ToolResult = await ActivityEnvironment().run(files.publish_file, call)
    assert (tmp_path / "published" / "site" / "index.html").read_text() == "<h1>Hi</h1>"
    assert result.output.endswith("in the published directory")
    assert not (tmp_path / "workspace").exists()
    # the receipt sits beside the published directory, never in what gets served
    assert tree(tmp_path / "published") == ["site", "site/index.html"]


async def test_a_failed_write_leaves_no_temporary_file(
    files: FileActivities, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="No space left"):
        await write(files, invocation("a.txt"))
    assert tree(tmp_path / "workspace") == []
    assert not files.receipt_path(tmp_path / "workspace", KEY).exists()


def test_arguments_schema_is_what_the_model_sees() -> None:
    from steward.tools import CATALOGUE

    schema: dict[str, Any] = CATALOGUE["write_file"].parameters()
    assert set(schema["required"]) == {"path", "content"}
    assert CATALOGUE["publish_file"].spec.privileged
    assert not CATALOGUE["write_file"].spec.privileged
