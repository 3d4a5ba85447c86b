"""The plain `temporal` CLI, as an attacker or a careless script reaches Steward's runs, or
as a person does with the codec server (`--codec-endpoint`) to read and send plaintext."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

TEMPORAL = Path(sys.executable).parent / "temporal"


async def temporal_cli(
    env: WorkflowEnvironment, *args: str, codec_endpoint: str | None = None
) -> tuple[int, str]:
    """Run `temporal ARGS` against the test server, through the codec server at
    `codec_endpoint` if given; (exit code, output).
    """
    address = env.client.service_client.config.target_host
    codec = ["--codec-endpoint", codec_endpoint] if codec_endpoint else []
    process = await asyncio.create_subprocess_exec(
        str(TEMPORAL),
        *args,
        *codec,
        "--address",
        address,
        "--namespace",
        "default",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()
