"""A real MCP server for tests: a notes store over stdio (default) or streamable HTTP.

`add_note` has a side effect (appends to the file named by NOTES_FILE) and honours an
idempotency key passed in the call's `_meta`, so the tests can prove a retried call
writes once. `delete_all_notes` exists to prove that tools steward.yaml does not list are
never exposed to an agent.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("notes")
IDEMPOTENCY_META = "io.steward/idempotency-key"


def _notes() -> Path:
    return Path(os.environ["NOTES_FILE"])


@server.tool()
def add_note(text: str, ctx: Context) -> str:
    """Append a note to the team's notes."""
    if not text.strip():
        raise ToolError("a note needs text")
    meta = ctx.request_context.meta or {}
    key = meta.get(IDEMPOTENCY_META)
    lines = _notes().read_text().splitlines() if _notes().exists() else []
    if key and any(json.loads(line).get("key") == key for line in lines):
        return f"note already added ({key})"
    with _notes().open("a") as out:
        out.write(json.dumps({"key": key, "text": text}) + "\n")
    return f"added note {len(lines) + 1}"


@server.tool()
def list_notes() -> str:
    """Return every note, one per line."""
    if not _notes().exists():
        return "(no notes)"
    return "\n".join(json.loads(line)["text"] for line in _notes().read_text().splitlines())


@server.tool()
def delete_all_notes() -> str:
    """Delete every note (never granted to an agent)."""
    _notes().unlink(missing_ok=True)
    return "deleted"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
