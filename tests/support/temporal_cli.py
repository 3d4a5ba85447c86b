"""The plain `temporal` CLI, as an attacker or a careless script reaches Steward's runs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

TEMPORAL = Path(sys.executable).parent / "temporal"


async def temporal_cli(env: WorkflowEnvironment, *args: str) -> tuple[int, str]:
    """Run `temporal ARGS` against the test server; (exit code, output)."""
    address = env.client.service_client.config.target_host
    process = await asyncio.create_subprocess_exec(
        str(TEMPORAL),
        *args,
        "--address",
        address,
        "--namespace",
        "default",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()
