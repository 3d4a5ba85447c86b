"""write_file and publish_file: text into the workspace, or out into the published folder.

The activities are `activities.tools.files.FileActivities.write_file` and `.publish_file`;
they resolve the path on disk again before they write (symlinks included).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from pydantic import Field, field_validator

from steward.models import RiskClass, Strict, ToolSpec
from steward.tools.entry import Tool, at_most

MAX_FILE_CHARS = 1_000_000
"""Largest file content a tool call may carry: it travels in history (2 MB payload limit)."""


def relative_path_problem(path: str) -> str | None:
    """Why `path` cannot name a file inside a tool's directory, or None if it can.

    Only the text is judged here, so a workflow refuses a bad path before asking anyone to
    approve it; the activity still resolves symlinks on disk before it writes.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "control characters are not allowed in a path"
    if "\\" in path:
        return "use / between directories, not \\"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":" and path[0].isalpha()):
        return "absolute paths are refused: give a path relative to the tool's directory"
    parts = PurePosixPath(path).parts
    if ".." in parts:
        return "'..' is refused: the path must stay inside the tool's directory"
    if not parts or path.endswith("/"):
        return "the path names a directory, not a file"
    return None


class WriteFileArgs(Strict):
    """Arguments of write_file: a path inside the workspace and the text to put there."""

    path: str = Field(min_length=1, description="relative to the workspace, e.g. notes/summary.md")
    content: str

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        problem = relative_path_problem(at_most(value, 500))
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("content")
    @classmethod
    def _fits(cls, value: str) -> str:
        return at_most(value, MAX_FILE_CHARS)


class PublishFileArgs(WriteFileArgs):
    """Arguments of publish_file: a path inside the published directory and its text.

    The content is in the arguments (not read from the workspace) so an approver approves
    exactly the bytes that get published.
    """


WRITE_FILE = Tool(
    spec=ToolSpec(
        name="write_file",
        description="Write text to a file in the workspace (path relative to it, content).",
        risk=RiskClass.WRITE,
        scopes=["files:write"],
        retry_seconds=600,
    ),
    arguments=WriteFileArgs,
    provider="files",
    would=lambda args: f"written {len(args.content)} characters to {args.path} in the workspace",
)

PUBLISH_FILE = Tool(
    spec=ToolSpec(
        name="publish_file",
        description="Publish text as a file in the published directory (path, content).",
        risk=RiskClass.PUBLISH,
        scopes=["files:publish"],
        privileged=True,
        retry_seconds=600,
    ),
    arguments=PublishFileArgs,
    provider="files",
    would=lambda args: f"published {len(args.content)} characters as {args.path}",
)
